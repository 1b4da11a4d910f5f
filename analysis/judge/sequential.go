package judge

import (
	"fmt"
	"math"

	"github.com/fulcrum-ml/fulcrum/analysis/stats"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// DefaultConfidence applies when a sequential judge leaves confidence unset.
const DefaultConfidence = 0.99

// CountsInput are bad events and totals of both versions since the step
// started, with the step index and the previous round's result for the
// same metric in the same step (nil on the first round).
type CountsInput struct {
	Candidate, Stable stats.Counts
	MinSamples        int64
	Step              int32
	Previous          *v1alpha1.MetricResult
	// NoEstimate skips the SamplesNeeded search (simulations).
	NoEstimate bool
}

// Sequential runs the always-valid comparison of bad-event rates (see
// package stats). Fail: the candidate's rate is above stable's at the
// step's share of 1-confidence. Pass: the candidate's rate is less than
// maxIncrease above stable's. Otherwise Inconclusive, with SamplesNeeded.
func Sequential(j v1alpha1.SequentialJudge, in CountsInput) v1alpha1.MetricResult {
	conf := j.Confidence
	if conf == 0 {
		conf = DefaultConfidence
	}
	desc := fmt.Sprintf("increase < %s at %s%% confidence", num(j.MaxIncrease), num(100*conf))
	if conf <= 0.5 || conf >= 1 || j.MaxIncrease < 0 || j.MaxIncrease >= 1 {
		return v1alpha1.MetricResult{Verdict: v1alpha1.VerdictError, Threshold: desc,
			Message: "sequential judge needs confidence in (0.5, 1) and maxIncrease in [0, 1), for example {maxIncrease: 0.005, confidence: 0.99}"}
	}
	if g := gate(in.Candidate.Total, in.Stable.Total, in.MinSamples); g != nil {
		g.Threshold = desc
		g.Value, g.Baseline = ptr(in.Candidate.Rate()), ptr(in.Stable.Rate())
		return *g
	}
	r := v1alpha1.MetricResult{
		Threshold:        desc,
		Value:            ptr(in.Candidate.Rate()),
		Baseline:         ptr(in.Stable.Rate()),
		CandidateSamples: in.Candidate.Total,
		BaselineSamples:  in.Stable.Total,
	}
	if in.Stable.Total <= 0 {
		r.Verdict = v1alpha1.VerdictInconclusive
		r.Message = "stable served no requests in the window: nothing to compare with"
		return r
	}
	alpha := stats.StepAlpha(1-conf, in.Step)
	decide := stats.Sequential
	if in.NoEstimate {
		decide = stats.SequentialDecision
	}
	s := decide(in.Candidate, in.Stable, j.MaxIncrease, alpha)
	// The running minimum of 1/E over the step is an always-valid p-value,
	// and the running intersection of the bounds is a confidence sequence.
	p, lo, hi := s.PValue, s.Lower, s.Upper
	if prev := in.Previous; prev != nil {
		if prev.PValue != nil {
			p = math.Min(p, *prev.PValue)
		}
		if prev.Lower != nil {
			lo = math.Max(lo, *prev.Lower)
		}
		if prev.Upper != nil {
			hi = math.Min(hi, *prev.Upper)
		}
	}
	r.PValue, r.Lower, r.Upper = &p, &lo, &hi
	switch {
	case p <= alpha || s.Decision == stats.Worse:
		r.Verdict = v1alpha1.VerdictFail
		r.Message = fmt.Sprintf("candidate rate %s is above stable %s (always-valid p=%s <= %s; increase in [%s, %s])",
			num(in.Candidate.Rate()), num(in.Stable.Rate()), num(p), num(alpha), num(lo), num(hi))
	case hi < j.MaxIncrease:
		r.Verdict = v1alpha1.VerdictPass
		r.Message = fmt.Sprintf("candidate rate %s vs stable %s: increase at most %s, below %s", num(in.Candidate.Rate()), num(in.Stable.Rate()), num(hi), num(j.MaxIncrease))
	default:
		r.Verdict = v1alpha1.VerdictInconclusive
		msg := fmt.Sprintf("not enough evidence yet: increase in [%s, %s], p=%s", num(lo), num(hi), num(p))
		if s.SamplesNeeded > 0 {
			need := s.SamplesNeeded
			r.SamplesNeeded = &need
			msg += fmt.Sprintf("; about %d more candidate requests needed at the observed rates", need)
		} else {
			msg += "; the difference sits near maxIncrease, no decision in sight"
		}
		r.Message = msg
	}
	return r
}

// SlowCounts turns cumulative histogram buckets (upper bound → count, with
// +Inf) into bad events: requests above the largest bucket bound that does
// not exceed slo. When no bound equals slo, requests between that bound and
// slo count as slow too: the test then errs towards seeing more slowness on
// both sides alike. ok is false without a +Inf bucket or a bound <= slo.
func SlowCounts(buckets map[float64]float64, slo float64) (c stats.Counts, bound float64, ok bool) {
	total, hasInf := buckets[math.Inf(1)]
	if !hasInf {
		return c, 0, false
	}
	bound = math.Inf(-1)
	for le := range buckets {
		if le <= slo && le > bound {
			bound = le
		}
	}
	if math.IsInf(bound, -1) {
		return c, 0, false
	}
	fast := buckets[bound]
	c.Total = int64(math.Round(total))
	c.Bad = int64(math.Round(total - fast))
	if c.Bad < 0 {
		c.Bad = 0
	}
	return c, bound, true
}
