package stats

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// ChiSquareSF is P(X >= x) for X ~ χ² with k degrees of freedom.
func ChiSquareSF(x, k float64) float64 {
	if k <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if math.IsInf(x, 1) {
		return 0
	}
	return distuv.ChiSquared{K: k}.Survival(x)
}

// ChiSquareQuantile is the x with P(X <= x) = p for X ~ χ²(k).
func ChiSquareQuantile(p, k float64) float64 {
	return distuv.ChiSquared{K: k}.Quantile(p)
}

// SRMResult is a sample-ratio-mismatch test.
type SRMResult struct {
	Statistic, PValue float64
	DF                int
	Total             float64
	// MinExpected is the smallest expected count of a subset with weight.
	MinExpected float64
}

// SampleRatio tests observed request counts per subset against the weights
// the mesh was told to apply (Pearson's goodness-of-fit chi-square). A subset
// with weight 0 that served requests makes the statistic infinite. Subsets
// with weight 0 and no requests are left out.
func SampleRatio(observed map[string]float64, weights map[string]int32) (SRMResult, error) {
	var wsum float64
	for _, w := range weights {
		if w > 0 {
			wsum += float64(w)
		}
	}
	if wsum == 0 {
		return SRMResult{}, fmt.Errorf("no subset has a positive weight")
	}
	var total float64
	for sub, o := range observed {
		if o < 0 || math.IsNaN(o) {
			return SRMResult{}, fmt.Errorf("subset %s: observed count %v is not a count", sub, o)
		}
		total += o
	}
	r := SRMResult{Total: total, MinExpected: math.Inf(1)}
	if total == 0 {
		return r, nil
	}
	cells := 0
	for sub, w := range weights {
		if w <= 0 {
			continue
		}
		cells++
		e := total * float64(w) / wsum
		o := observed[sub]
		r.MinExpected = math.Min(r.MinExpected, e)
		r.Statistic += (o - e) * (o - e) / e
	}
	for sub, o := range observed {
		if weights[sub] <= 0 && o > 0 {
			r.Statistic = math.Inf(1)
		}
	}
	r.DF = cells - 1
	if r.DF < 1 {
		// One subset with weight: any traffic elsewhere is the only mismatch.
		if math.IsInf(r.Statistic, 1) {
			r.PValue = 0
		} else {
			r.PValue = 1
		}
		return r, nil
	}
	r.PValue = ChiSquareSF(r.Statistic, float64(r.DF))
	return r, nil
}

// DriftResult compares two histograms.
type DriftResult struct {
	// PSI is the population stability index of candidate against stable.
	PSI float64
	// Statistic and PValue are the chi-square test of homogeneity on the
	// (merged) buckets, with DF degrees of freedom.
	Statistic, PValue float64
	DF                int
	// NoiseFloor is the PSI that sampling noise alone reaches with
	// probability alpha at these sample sizes: χ²(DF, 1-α)·(1/nc + 1/ns).
	NoiseFloor  float64
	CandTotal   float64
	StableTotal float64
}

// Drift compares per-bucket counts (not cumulative) of candidate and stable.
// Neighbouring buckets are merged until each merged bucket expects at least
// five events on both sides, as the chi-square approximation needs. PSI uses
// the merged buckets with half an event added to each cell so empty buckets
// stay finite.
//
// PSI is a symmetrised Kullback–Leibler divergence; for two samples from
// one distribution it is close to the chi-square statistic times
// (1/nc + 1/ns), which is how NoiseFloor ties the PSI bound to sample size.
func Drift(cand, stable []float64, alpha float64) (DriftResult, error) {
	if len(cand) != len(stable) {
		return DriftResult{}, fmt.Errorf("candidate has %d buckets and stable %d: both must use the same bucket bounds", len(cand), len(stable))
	}
	var nc, ns float64
	for i := range cand {
		if cand[i] < 0 || stable[i] < 0 {
			return DriftResult{}, fmt.Errorf("bucket %d has a negative count (is the histogram cumulative? pass per-bucket counts)", i)
		}
		nc += cand[i]
		ns += stable[i]
	}
	r := DriftResult{CandTotal: nc, StableTotal: ns}
	if nc == 0 || ns == 0 {
		return r, fmt.Errorf("no events in the %s histogram", map[bool]string{true: "candidate", false: "stable"}[nc == 0])
	}
	// Merge buckets left to right until both expected counts reach 5.
	var mc, ms []float64
	var ac, as float64
	for i := range cand {
		ac += cand[i]
		as += stable[i]
		tot := ac + as
		if tot*nc/(nc+ns) >= 5 && tot*ns/(nc+ns) >= 5 {
			mc, ms = append(mc, ac), append(ms, as)
			ac, as = 0, 0
		}
	}
	if ac+as > 0 {
		if len(mc) == 0 {
			mc, ms = append(mc, ac), append(ms, as)
		} else {
			mc[len(mc)-1] += ac
			ms[len(ms)-1] += as
		}
	}
	k := len(mc)
	for i := 0; i < k; i++ {
		pc := (mc[i] + 0.5) / (nc + 0.5*float64(k))
		ps := (ms[i] + 0.5) / (ns + 0.5*float64(k))
		r.PSI += (pc - ps) * math.Log(pc/ps)
		tot := mc[i] + ms[i]
		ec, es := tot*nc/(nc+ns), tot*ns/(nc+ns)
		r.Statistic += (mc[i]-ec)*(mc[i]-ec)/ec + (ms[i]-es)*(ms[i]-es)/es
	}
	r.DF = k - 1
	if r.DF < 1 {
		// Too few events to keep two buckets apart: no information about
		// the shape yet, so no bound on the PSI either.
		r.PValue = 1
		r.NoiseFloor = math.Inf(1)
		return r, nil
	}
	r.PValue = ChiSquareSF(r.Statistic, float64(r.DF))
	r.NoiseFloor = ChiSquareQuantile(1-alpha, float64(r.DF)) * (1/nc + 1/ns)
	return r, nil
}
