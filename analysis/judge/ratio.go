package judge

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/fulcrum-ml/fulcrum/analysis/stats"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// DefaultMaxPValue applies when a sampleRatio judge leaves maxPValue unset.
const DefaultMaxPValue = 0.001

// SampleRatio checks the observed requests per subset against the weights
// set on the mesh. Fail when p < maxPValue: the mesh is not applying the
// weights. Inconclusive until every weighted subset expects five requests.
func SampleRatio(j v1alpha1.SampleRatioJudge, observed map[string]float64, weights map[string]int32, candidate string, minSamples int64) v1alpha1.MetricResult {
	maxP := j.MaxPValue
	if maxP == 0 {
		maxP = DefaultMaxPValue
	}
	desc := fmt.Sprintf("p >= %s", num(maxP))
	for _, sub := range sortedKeys(observed) {
		if why := nonFiniteCount("subset "+sub, observed[sub]); why != "" {
			return v1alpha1.MetricResult{Verdict: v1alpha1.VerdictInconclusive, Threshold: desc, Message: why}
		}
	}
	var stable string
	for sub := range weights {
		if sub != candidate && weights[sub] > 0 {
			stable = sub
		}
	}
	cs := int64(math.Round(observed[candidate]))
	ss := int64(math.Round(observed[stable]))
	if g := gate(cs, ss, minSamples); g != nil {
		g.Threshold = desc
		return *g
	}
	res, err := stats.SampleRatio(observed, weights)
	r := v1alpha1.MetricResult{Threshold: desc, CandidateSamples: cs, BaselineSamples: ss}
	if err != nil {
		r.Verdict, r.Message = v1alpha1.VerdictError, "sample ratio: "+err.Error()
		return r
	}
	if res.Total > 0 {
		r.Value = ptr(observed[candidate] / res.Total)
		var wsum int32
		for _, w := range weights {
			wsum += max(w, 0)
		}
		r.Baseline = ptr(float64(weights[candidate]) / float64(wsum))
	}
	if res.Total == 0 || res.MinExpected < 5 {
		r.Verdict = v1alpha1.VerdictInconclusive
		r.Message = fmt.Sprintf("too few requests (%s) for a chi-square test: every subset with weight needs 5 expected", num(res.Total))
		return r
	}
	p := res.PValue
	r.PValue = &p
	if p < maxP {
		r.Verdict = v1alpha1.VerdictFail
		r.Message = fmt.Sprintf("the mesh is not applying the weights: observed split %s against weights %s (chi-square %s, p=%s)",
			split(observed), weightText(weights), num(res.Statistic), num(p))
		return r
	}
	r.Verdict = v1alpha1.VerdictPass
	r.Message = fmt.Sprintf("observed split %s matches weights %s (p=%s)", split(observed), weightText(weights), num(p))
	return r
}

func sortedKeys(observed map[string]float64) []string {
	keys := make([]string, 0, len(observed))
	for k := range observed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func split(observed map[string]float64) string {
	keys := sortedKeys(observed)
	var tot float64
	for _, v := range observed {
		tot += v
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.1f%%", k, 100*observed[k]/tot)
	}
	return strings.Join(parts, " ")
}

func weightText(weights map[string]int32) string {
	keys := make([]string, 0, len(weights))
	for k := range weights {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d%%", k, weights[k])
	}
	return strings.Join(parts, " ")
}

// Default drift settings, as the CRD defaults them.
const (
	DefaultMaxPSI          = 0.2
	DefaultDriftConfidence = 0.99
)

// Drift compares per-bucket counts of model scores. Fail when the
// difference is significant (chi-square p < 1-confidence) and material
// (PSI > maxPSI). Pass when PSI plus the noise floor at these sample sizes
// stays within maxPSI. Otherwise Inconclusive, with the samples the noise
// floor needs.
func Drift(j v1alpha1.DriftJudge, cand, stable []float64, minSamples int64) v1alpha1.MetricResult {
	maxPSI, conf := j.MaxPSI, j.Confidence
	if maxPSI == 0 {
		maxPSI = DefaultMaxPSI
	}
	if conf == 0 {
		conf = DefaultDriftConfidence
	}
	desc := fmt.Sprintf("PSI <= %s (chi-square at %s%%)", num(maxPSI), num(100*conf))
	for _, why := range []string{nonFiniteCount("the candidate's histogram", cand...), nonFiniteCount("stable's histogram", stable...)} {
		if why != "" {
			return v1alpha1.MetricResult{Verdict: v1alpha1.VerdictInconclusive, Threshold: desc, Message: why}
		}
	}
	var nc, ns float64
	for i := range cand {
		nc += cand[i]
	}
	for i := range stable {
		ns += stable[i]
	}
	if g := gate(int64(math.Round(nc)), int64(math.Round(ns)), minSamples); g != nil {
		g.Threshold = desc
		return *g
	}
	r := v1alpha1.MetricResult{Threshold: desc, CandidateSamples: int64(math.Round(nc)), BaselineSamples: int64(math.Round(ns))}
	d, err := stats.Drift(cand, stable, 1-conf)
	if err != nil {
		r.Verdict, r.Message = v1alpha1.VerdictInconclusive, "drift: "+err.Error()
		return r
	}
	r.Value = ptr(d.PSI)
	p := d.PValue
	r.PValue = &p
	upper := d.PSI + d.NoiseFloor
	r.Upper = ptr(upper)
	switch {
	case p < 1-conf && d.PSI > maxPSI:
		r.Verdict = v1alpha1.VerdictFail
		r.Message = fmt.Sprintf("score distribution drifted: PSI %s > %s, chi-square p=%s", num(d.PSI), num(maxPSI), num(p))
	case upper <= maxPSI:
		r.Verdict = v1alpha1.VerdictPass
		r.Message = fmt.Sprintf("PSI %s plus noise %s within %s", num(d.PSI), num(d.NoiseFloor), num(maxPSI))
	default:
		r.Verdict = v1alpha1.VerdictInconclusive
		msg := fmt.Sprintf("PSI %s (noise floor %s at these sizes) is not yet clearly within %s", num(d.PSI), num(d.NoiseFloor), num(maxPSI))
		if room := maxPSI - d.PSI; room > 0 && d.NoiseFloor > 0 && !math.IsInf(d.NoiseFloor, 1) {
			// The floor scales with 1/nc + 1/ns; keep the split, grow both.
			factor := d.NoiseFloor / room
			need := int64(math.Ceil(nc * (factor - 1)))
			if need > 0 {
				r.SamplesNeeded = &need
				msg += fmt.Sprintf("; about %d more candidate samples needed", need)
			}
		}
		r.Message = msg
	}
	return r
}
