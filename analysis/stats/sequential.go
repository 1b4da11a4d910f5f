package stats

import (
	"math"
)

// Counts are bad events among all events of one version in a window.
type Counts struct {
	Bad, Total int64
}

// Rate is Bad/Total, NaN without events.
func (c Counts) Rate() float64 {
	if c.Total <= 0 {
		return math.NaN()
	}
	return float64(c.Bad) / float64(c.Total)
}

// Decision of a sequential comparison.
type Decision int

// The decisions.
const (
	// Undecided: not enough evidence either way yet.
	Undecided Decision = iota
	// Worse: the candidate's bad-event rate exceeds stable's.
	Worse
	// NotWorse: the candidate's rate exceeds stable's by less than MaxIncrease.
	NotWorse
)

// stableShare is the part of alpha spent on stable's confidence bound in the
// NotWorse decision; stable usually has many more events, so a small share
// costs little width there and leaves most of alpha to the candidate.
const stableShare = 0.1

// SequentialResult is the evidence of one look.
type SequentialResult struct {
	Decision Decision
	// PValue is 1/E for the "candidate no worse than stable" null at this
	// look, capped at 1. The running minimum over looks is an always-valid
	// p-value.
	PValue float64
	// Lower and Upper bound candidate-minus-stable rate, time-uniformly at
	// level alpha each.
	Lower, Upper float64
	// SamplesNeeded is an estimate of the further candidate events needed
	// for a decision if the observed rates hold; -1 when no decision is in
	// sight (the difference sits right at MaxIncrease) or already decided.
	SamplesNeeded int64
}

// Sequential compares candidate and stable counts gathered since a point
// where the traffic split last changed (so every event had the same chance
// of going to the candidate). It may be called after every round; see the
// package documentation for the error bounds.
//
//   - Worse when the conditional test rejects "candidate rate <= stable rate"
//     at level alpha.
//   - NotWorse when the candidate's upper bound is below stable's lower bound
//     plus maxIncrease (alpha split 0.9/0.1 between them).
//   - Undecided otherwise.
func Sequential(cand, stable Counts, maxIncrease, alpha float64) SequentialResult {
	return sequential(cand, stable, maxIncrease, alpha, true)
}

// SequentialDecision is Sequential without the SamplesNeeded projection,
// which costs a search; simulations use it.
func SequentialDecision(cand, stable Counts, maxIncrease, alpha float64) SequentialResult {
	return sequential(cand, stable, maxIncrease, alpha, false)
}

func sequential(cand, stable Counts, maxIncrease, alpha float64, project bool) SequentialResult {
	c := fcounts{float64(max(cand.Bad, 0)), float64(max(cand.Total, 0))}
	s := fcounts{float64(max(stable.Bad, 0)), float64(max(stable.Total, 0))}
	c.bad, s.bad = math.Min(c.bad, c.total), math.Min(s.bad, s.total)
	r := decide(c, s, maxIncrease, alpha)
	if r.Decision == Undecided && project {
		r.SamplesNeeded = samplesNeeded(c, s, maxIncrease, alpha)
	} else {
		r.SamplesNeeded = -1
	}
	return r
}

type fcounts struct{ bad, total float64 }

func decide(c, s fcounts, maxIncrease, alpha float64) SequentialResult {
	logE := conditionalEvidence(c, s)
	r := SequentialResult{PValue: math.Min(1, math.Exp(-logE))}
	ac, as := alpha*(1-stableShare), alpha*stableShare
	r.Lower = lowerBound(c.bad, c.total, ac) - upperBound(s.bad, s.total, as)
	r.Upper = upperBound(c.bad, c.total, ac) - lowerBound(s.bad, s.total, as)
	switch {
	case logE >= math.Log(1/alpha):
		r.Decision = Worse
	case r.Upper < maxIncrease:
		r.Decision = NotWorse
	}
	return r
}

// LogEvidenceWorse is log E against "candidate rate <= stable rate" from
// counts gathered under one traffic split; Sequential decides Worse when it
// reaches log(1/alpha).
func LogEvidenceWorse(cand, stable Counts) float64 {
	return conditionalEvidence(fcounts{float64(cand.Bad), float64(cand.Total)}, fcounts{float64(stable.Bad), float64(stable.Total)})
}

// conditionalEvidence is log E against "candidate rate <= stable rate".
// Given the total number of bad events, each one is the candidate's with
// probability a = its share of events when the rates are equal (exactly: the
// candidate's count is hypergeometric, which Hoeffding's convex-order
// theorem bounds by Binomial(bad, a) for the convex likelihood ratios used
// here). A candidate with rate ratio ρ takes a share ρa/(ρa+1-a). E averages
// the likelihood ratios over ρ on the same grid as LogEvidenceAbove.
func conditionalEvidence(c, s fcounts) float64 {
	n := c.total + s.total
	bad := c.bad + s.bad
	if c.total <= 0 || s.total <= 0 || bad <= 0 {
		return 0
	}
	a := c.total / n
	terms := make([]float64, len(upRatios))
	for i, rho := range upRatios {
		p := rho * a / (rho*a + 1 - a)
		terms[i] = logLR(c.bad, bad, p, a)
	}
	return logSumExp(terms) - math.Log(float64(len(upRatios)))
}

// samplesNeeded projects the observed rates forward, stable growing in its
// current proportion to the candidate, and finds the fewest further
// candidate events that would decide. A candidate with no events yet is
// assumed to behave like stable.
func samplesNeeded(c, s fcounts, maxIncrease, alpha float64) int64 {
	ps := 0.0
	if s.total > 0 {
		ps = s.bad / s.total
	}
	pc := ps
	if c.total > 0 {
		pc = c.bad / c.total
	}
	ratio := 1.0
	if c.total > 0 && s.total > 0 {
		ratio = s.total / c.total
	}
	decides := func(m float64) bool {
		cc := fcounts{c.bad + pc*m, c.total + m}
		ss := fcounts{s.bad + ps*ratio*m, s.total + ratio*m}
		return decide(cc, ss, maxIncrease, alpha).Decision != Undecided
	}
	const limit = 1e9
	hi := math.Max(16, c.total/4)
	for !decides(hi) {
		hi *= 2
		if hi > limit {
			return -1
		}
	}
	lo := hi / 2
	if hi == 16 {
		lo = 0
	}
	for hi-lo > math.Max(1, lo/50) {
		m := (lo + hi) / 2
		if decides(m) {
			hi = m
		} else {
			lo = m
		}
	}
	return int64(math.Ceil(hi))
}

// StepAlpha spends alpha over the steps of a rollout: step k (from 0) gets
// alpha·6/(π²(k+1)²), and the steps together never spend more than alpha.
// Each step tests only its own window, where the traffic split is fixed.
func StepAlpha(alpha float64, step int32) float64 {
	if step < 0 {
		step = 0
	}
	k := float64(step) + 1
	return alpha * 6 / (math.Pi * math.Pi * k * k)
}
