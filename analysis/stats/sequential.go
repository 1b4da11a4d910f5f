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

// Add sums two counts.
func (c Counts) Add(o Counts) Counts {
	return Counts{Bad: c.Bad + o.Bad, Total: c.Total + o.Total}
}

// Segment is what both versions saw during one stretch of a rollout with
// one traffic split: one step, from its start to its end (or to the latest
// look, for the current step).
type Segment struct {
	Candidate, Stable Counts
}

// Pooled sums the segments per version: each version's counts over every
// request it served in the rollout.
func Pooled(segs []Segment) (cand, stable Counts) {
	for _, s := range segs {
		cand, stable = cand.Add(s.Candidate), stable.Add(s.Stable)
	}
	return cand, stable
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
	// Lower and Upper bound candidate-minus-stable rate, time-uniformly: the
	// bounds fail at any look of the rollout with probability at most alpha
	// together.
	Lower, Upper float64
	// SamplesNeeded is an estimate of the further candidate events needed
	// for a decision if the observed rates hold; -1 when no decision is in
	// sight (the difference sits right at MaxIncrease) or already decided.
	SamplesNeeded int64
}

// Sequential compares candidate and stable over a whole rollout: segs are
// its steps so far, oldest first, the current step last (its counts from the
// step's start to this look). It may be called at every look; one alpha
// covers the whole rollout, however many looks and steps (see the package
// documentation).
//
//   - Worse when the rollout-wide conditional test rejects "candidate rate
//     <= stable rate" at level alpha.
//   - NotWorse when the candidate's upper bound is below stable's lower bound
//     plus maxIncrease, both over every request of the rollout (alpha split
//     0.9/0.1 between them).
//   - Undecided otherwise.
func Sequential(segs []Segment, maxIncrease, alpha float64) SequentialResult {
	return sequential(segs, maxIncrease, alpha, true)
}

// SequentialDecision is Sequential without the SamplesNeeded projection,
// which costs a search; simulations use it.
func SequentialDecision(segs []Segment, maxIncrease, alpha float64) SequentialResult {
	return sequential(segs, maxIncrease, alpha, false)
}

func sequential(segs []Segment, maxIncrease, alpha float64, project bool) SequentialResult {
	if len(segs) == 0 {
		segs = []Segment{{}}
	}
	var w WorseTest
	for _, s := range segs[:len(segs)-1] {
		w.Add(s)
	}
	cur := clean(segs[len(segs)-1])
	pc, ps := Pooled(segs[:len(segs)-1])
	closed := [2]fcounts{toF(pc), toF(ps)}
	r := decide(&w, closed, cur, maxIncrease, alpha)
	if r.Decision == Undecided && project {
		r.SamplesNeeded = samplesNeeded(&w, closed, cur, maxIncrease, alpha)
	} else {
		r.SamplesNeeded = -1
	}
	return r
}

type fcounts struct{ bad, total float64 }

func toF(c Counts) fcounts {
	t := float64(max(c.Total, 0))
	return fcounts{math.Min(float64(max(c.Bad, 0)), t), t}
}

// fseg is a segment in floating point (projections add fractional counts).
type fseg struct{ c, s fcounts }

func clean(s Segment) fseg { return fseg{toF(s.Candidate), toF(s.Stable)} }

// decide judges the closed steps (in w and their pooled counts) with the
// current step cur.
func decide(w *WorseTest, closed [2]fcounts, cur fseg, maxIncrease, alpha float64) SequentialResult {
	logE := w.logEvidence(cur)
	r := SequentialResult{PValue: math.Min(1, math.Exp(-logE))}
	c := fcounts{closed[0].bad + cur.c.bad, closed[0].total + cur.c.total}
	s := fcounts{closed[1].bad + cur.s.bad, closed[1].total + cur.s.total}
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

// samplesNeeded projects the observed rates forward, stable growing in the
// current step's proportion to the candidate, and finds the fewest further
// candidate events that would decide. A candidate with no events yet is
// assumed to behave like stable.
func samplesNeeded(w *WorseTest, closed [2]fcounts, cur fseg, maxIncrease, alpha float64) int64 {
	c := fcounts{closed[0].bad + cur.c.bad, closed[0].total + cur.c.total}
	s := fcounts{closed[1].bad + cur.s.bad, closed[1].total + cur.s.total}
	ps := 0.0
	if s.total > 0 {
		ps = s.bad / s.total
	}
	pc := ps
	if c.total > 0 {
		pc = c.bad / c.total
	}
	ratio := 1.0
	switch {
	case cur.c.total > 0 && cur.s.total > 0:
		ratio = cur.s.total / cur.c.total
	case c.total > 0 && s.total > 0:
		ratio = s.total / c.total
	}
	decides := func(m float64) bool {
		next := fseg{
			c: fcounts{cur.c.bad + pc*m, cur.c.total + m},
			s: fcounts{cur.s.bad + ps*ratio*m, cur.s.total + ratio*m},
		}
		return decide(w, closed, next, maxIncrease, alpha).Decision != Undecided
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
