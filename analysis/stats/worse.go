package stats

import "math"

// WorseTest is the always-valid test of "the candidate's bad-event rate is at
// most stable's" over a whole rollout. Each completed step is added once
// (Add); a look combines them with the current step (LogEvidence). It holds,
// per rate ratio ρ of the mixing grid, the log of the product over steps of
// each step's conditional likelihood ratio; E is the average over ρ of
// those products. Keeping the products per ρ, rather than multiplying
// per-step averages, lets evidence for one common ratio add up across steps
// (see the package documentation for why E is a supermartingale).
type WorseTest struct {
	logL [gridPoints]float64
}

// Add folds a completed step into the test.
func (w *WorseTest) Add(s Segment) {
	w.add(clean(s))
}

func (w *WorseTest) add(s fseg) {
	a, x, b, ok := split(s)
	if !ok {
		return
	}
	for i := range up.ratios {
		w.logL[i] += stepLogLR(i, a, x, b)
	}
}

// LogEvidence is log E at a look whose current step has seen cur.
func (w *WorseTest) LogEvidence(cur Segment) float64 {
	return w.logEvidence(clean(cur))
}

func (w *WorseTest) logEvidence(cur fseg) float64 {
	var terms [gridPoints]float64
	a, x, b, ok := split(cur)
	for i := range up.ratios {
		terms[i] = w.logL[i]
		if ok {
			terms[i] += stepLogLR(i, a, x, b)
		}
	}
	return logSumExp(terms[:]) - math.Log(gridPoints)
}

// split returns the candidate's share a of a step's events, its bad events
// x and all bad events b; ok is false when the step says nothing (a version
// without events, or no bad event).
func split(s fseg) (a, x, b float64, ok bool) {
	n := s.c.total + s.s.total
	b = s.c.bad + s.s.bad
	if s.c.total <= 0 || s.s.total <= 0 || b <= 0 {
		return 0, 0, 0, false
	}
	return s.c.total / n, s.c.bad, b, true
}

// stepLogLR is one step's log conditional likelihood ratio for the rate
// ratio ρ = up.ratios[i]: given b bad events, each is the candidate's with
// probability a when the rates are equal and π = ρa/(ρa+1-a) when the
// candidate's is ρ times stable's. Since π/a = ρ/(ρa+1-a) and
// (1-π)/(1-a) = 1/(ρa+1-a), the log ratio of x of b is
// x·log ρ - b·log(1 + a(ρ-1)).
func stepLogLR(i int, a, x, b float64) float64 {
	return x*up.logs[i] - b*math.Log1p(a*(up.ratios[i]-1))
}

// LogEvidenceWorse is log E against "candidate rate <= stable rate" from a
// rollout's steps (the last one may be the current step); Sequential decides
// Worse when it reaches log(1/alpha).
func LogEvidenceWorse(segs ...Segment) float64 {
	if len(segs) == 0 {
		return 0
	}
	var w WorseTest
	for _, s := range segs[:len(segs)-1] {
		w.Add(s)
	}
	return w.LogEvidence(segs[len(segs)-1])
}
