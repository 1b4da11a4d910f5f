package judge

import (
	"fmt"
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/analysis/stats"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// DefaultConfidence applies when a sequential judge leaves confidence unset.
const DefaultConfidence = 0.99

// CountsInput are a sequential metric's counts: the rollout's completed
// steps and the current step from its start to this look, with the
// previous round's result for the same metric in the same step (nil on the
// first round).
type CountsInput struct {
	// Steps are the completed steps, oldest first
	// (status.analysis.evidence).
	Steps []stats.Segment
	// Candidate and Stable are the current step's counts.
	Candidate, Stable stats.Counts
	// Step is the current step's index, recorded with its counts.
	Step int32
	// Window is how long the current step's counts cover; it gives the
	// candidate's request rate for the evidence's ETA (0: no ETA).
	Window     time.Duration
	MinSamples int64
	Previous   *v1alpha1.MetricResult
	// NoEstimate skips the SamplesNeeded search (simulations).
	NoEstimate bool
}

// Sequential runs the always-valid comparison of bad-event rates over the
// whole rollout (see package stats): one 1-confidence for every look of
// every step. Fail: the candidate's rate is above stable's. Pass: the
// candidate's rate is less than maxIncrease above stable's. Otherwise
// Inconclusive, with SamplesNeeded and how long they take at the current
// rate. Value, Baseline and the sample counts are over the whole rollout;
// Evidence holds the current step's counts.
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
	cur := stats.Segment{Candidate: in.Candidate, Stable: in.Stable}
	segs := append(append([]stats.Segment(nil), in.Steps...), cur)
	cand, stable := stats.Pooled(segs)
	r := v1alpha1.MetricResult{
		Threshold:        desc,
		Value:            ptr(cand.Rate()),
		Baseline:         ptr(stable.Rate()),
		CandidateSamples: cand.Total,
		BaselineSamples:  stable.Total,
		Evidence: &v1alpha1.StepEvidence{Step: in.Step,
			Candidate: v1alpha1.EventCounts{Bad: in.Candidate.Bad, Total: in.Candidate.Total},
			Stable:    v1alpha1.EventCounts{Bad: in.Stable.Bad, Total: in.Stable.Total},
			Window:    metav1.Duration{Duration: in.Window}},
	}
	if stable.Total <= 0 {
		r.Verdict = v1alpha1.VerdictInconclusive
		r.Message = "stable served no requests in the rollout so far: nothing to compare with"
		return r
	}
	alpha := 1 - conf
	decide := stats.Sequential
	if in.NoEstimate {
		decide = stats.SequentialDecision
	}
	s := decide(segs, j.MaxIncrease, alpha)
	// The running minimum of 1/E is an always-valid p-value, and the
	// running intersection of the bounds is a confidence sequence.
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
	steps := ""
	if n := len(in.Steps); n > 0 {
		steps = fmt.Sprintf(" over %d steps", n+1)
	}
	if g := gate(cand.Total, stable.Total, in.MinSamples); g != nil {
		// Never Fail or Pass below minSamples; the bounds still show,
		// and say how fast the exposure budget may move.
		r.Verdict, r.SamplesNeeded = g.Verdict, g.SamplesNeeded
		msg := g.Message
		if s.Decision == stats.Undecided && s.SamplesNeeded > *g.SamplesNeeded {
			need := s.SamplesNeeded
			r.SamplesNeeded = &need
			msg += fmt.Sprintf("; a verdict needs about %d more at the observed rates", need)
		}
		r.Message = msg + eta(in, *r.SamplesNeeded, &r)
		return r
	}
	switch {
	case p <= alpha || s.Decision == stats.Worse:
		r.Verdict = v1alpha1.VerdictFail
		r.Message = fmt.Sprintf("candidate rate %s is above stable %s%s (always-valid p=%s <= %s; increase in [%s, %s])",
			num(cand.Rate()), num(stable.Rate()), steps, num(p), num(alpha), num(lo), num(hi))
	case hi < j.MaxIncrease:
		r.Verdict = v1alpha1.VerdictPass
		r.Message = fmt.Sprintf("candidate rate %s vs stable %s%s: increase at most %s, below %s", num(cand.Rate()), num(stable.Rate()), steps, num(hi), num(j.MaxIncrease))
	default:
		r.Verdict = v1alpha1.VerdictInconclusive
		msg := fmt.Sprintf("not enough evidence yet%s: increase in [%s, %s], p=%s", steps, num(lo), num(hi), num(p))
		if s.SamplesNeeded > 0 {
			need := s.SamplesNeeded
			r.SamplesNeeded = &need
			msg += fmt.Sprintf("; about %d more candidate requests needed at the observed rates", need) + eta(in, need, &r)
		} else if !in.NoEstimate {
			msg += "; the difference sits near maxIncrease, no decision in sight"
		}
		r.Message = msg
	}
	return r
}

// eta sets r.EvidenceETA from the candidate's request rate in the current
// step and says it in words ("" when the rate is unknown).
func eta(in CountsInput, need int64, r *v1alpha1.MetricResult) string {
	if in.Window <= 0 || in.Candidate.Total <= 0 || need <= 0 {
		if in.Window >= time.Second && in.Candidate.Total <= 0 {
			return "; the candidate served no requests in this step yet"
		}
		return ""
	}
	rate := float64(in.Candidate.Total) / in.Window.Seconds()
	d := time.Duration(float64(need) / rate * float64(time.Second))
	if d > 0 {
		d = max(d.Round(time.Second), time.Second)
		r.EvidenceETA = &metav1.Duration{Duration: d}
	}
	return fmt.Sprintf(", about %s at the candidate's current %s requests/s", d, num(rate))
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
