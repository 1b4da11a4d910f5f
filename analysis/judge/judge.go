// Package judge turns measured numbers into a verdict with its evidence.
// Every judge is a pure function: numbers in, v1alpha1.MetricResult out
// (without the metric's name, which the caller sets). Missing values, NaN
// and ±Inf are never Pass or Fail: they come out Inconclusive with a message
// saying what was missing or why the number cannot be judged (Inf − Inf is
// NaN, and every comparison with NaN is false).
package judge

import (
	"fmt"
	"math"
	"strconv"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Values are one metric's readings for candidate and stable. NaN means the
// provider returned no series for that version.
type Values struct {
	Candidate, Stable float64
	// CandidateSamples and StableSamples count requests in the window; -1
	// when the template has no sample query.
	CandidateSamples, StableSamples int64
	// MinSamples is spec.analysis.minSamples.
	MinSamples int64
}

// gate returns a non-nil Inconclusive result when the candidate has fewer
// than minSamples samples.
func gate(candSamples, stableSamples, minSamples int64) *v1alpha1.MetricResult {
	if candSamples < 0 || candSamples >= minSamples {
		return nil
	}
	need := minSamples - candSamples
	return &v1alpha1.MetricResult{
		Verdict:          v1alpha1.VerdictInconclusive,
		CandidateSamples: candSamples,
		BaselineSamples:  max(stableSamples, 0),
		SamplesNeeded:    &need,
		Message:          fmt.Sprintf("candidate served %d of the %d requests minSamples asks for; waiting for %d more", candSamples, minSamples, need),
	}
}

func ptr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// infinite says why an infinite reading of side ("candidate", "stable")
// cannot be judged; "" when v is not infinite.
func infinite(side string, v float64) string {
	if !math.IsInf(v, 0) {
		return ""
	}
	return fmt.Sprintf("%s's value is %s (a quantile above the histogram's largest finite bucket, or a division by zero): it cannot be judged; add a larger bucket or make the query return a finite number", side, num(v))
}

// nonFiniteCount names the first NaN or infinite count in counts; "" when
// every count is finite.
func nonFiniteCount(side string, counts ...float64) string {
	for _, c := range counts {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return fmt.Sprintf("%s has a count of %s: counts must be finite numbers; check the query", side, num(c))
		}
	}
	return ""
}

func withSamples(r v1alpha1.MetricResult, v Values) v1alpha1.MetricResult {
	r.CandidateSamples = max(v.CandidateSamples, 0)
	r.BaselineSamples = max(v.StableSamples, 0)
	return r
}

// Threshold passes when min <= candidate <= max.
func Threshold(j v1alpha1.ThresholdJudge, v Values) v1alpha1.MetricResult {
	desc := thresholdText(j)
	if g := gate(v.CandidateSamples, v.StableSamples, v.MinSamples); g != nil {
		g.Threshold = desc
		g.Value = ptr(v.Candidate)
		return *g
	}
	r := withSamples(v1alpha1.MetricResult{Threshold: desc, Value: ptr(v.Candidate), Baseline: ptr(v.Stable)}, v)
	if math.IsNaN(v.Candidate) {
		r.Verdict = v1alpha1.VerdictInconclusive
		r.Message = "no value for the candidate in the window (no series, or 0/0)"
		return r
	}
	if why := infinite("the candidate", v.Candidate); why != "" {
		r.Verdict, r.Message = v1alpha1.VerdictInconclusive, why
		return r
	}
	switch {
	case j.Min != nil && v.Candidate < *j.Min:
		r.Verdict = v1alpha1.VerdictFail
		r.Message = fmt.Sprintf("candidate %s is below the minimum %s", num(v.Candidate), num(*j.Min))
	case j.Max != nil && v.Candidate > *j.Max:
		r.Verdict = v1alpha1.VerdictFail
		r.Message = fmt.Sprintf("candidate %s is above the maximum %s", num(v.Candidate), num(*j.Max))
	default:
		r.Verdict = v1alpha1.VerdictPass
		r.Message = fmt.Sprintf("candidate %s is within %s", num(v.Candidate), desc)
	}
	return r
}

func thresholdText(j v1alpha1.ThresholdJudge) string {
	switch {
	case j.Min != nil && j.Max != nil:
		return fmt.Sprintf("%s..%s", num(*j.Min), num(*j.Max))
	case j.Min != nil:
		return ">= " + num(*j.Min)
	case j.Max != nil:
		return "<= " + num(*j.Max)
	}
	return ""
}

// Relative passes when the candidate is no worse than stable by more than
// maxRatio (candidate/stable) or maxIncrease (candidate-stable). Larger is
// worse.
func Relative(j v1alpha1.RelativeJudge, v Values) v1alpha1.MetricResult {
	var desc string
	switch {
	case j.MaxRatio != nil:
		desc = "candidate/stable <= " + num(*j.MaxRatio)
	case j.MaxIncrease != nil:
		desc = "candidate-stable <= " + num(*j.MaxIncrease)
	default:
		return v1alpha1.MetricResult{Verdict: v1alpha1.VerdictError, Message: "relative judge sets neither maxRatio nor maxIncrease; set one"}
	}
	if g := gate(v.CandidateSamples, v.StableSamples, v.MinSamples); g != nil {
		g.Threshold = desc
		return *g
	}
	r := withSamples(v1alpha1.MetricResult{Threshold: desc, Value: ptr(v.Candidate), Baseline: ptr(v.Stable)}, v)
	switch {
	case math.IsNaN(v.Candidate):
		r.Verdict, r.Message = v1alpha1.VerdictInconclusive, "no value for the candidate in the window"
		return r
	case math.IsNaN(v.Stable):
		r.Verdict, r.Message = v1alpha1.VerdictInconclusive, "no value for stable in the window: nothing to compare with"
		return r
	}
	for _, why := range []string{infinite("the candidate", v.Candidate), infinite("stable", v.Stable)} {
		if why != "" {
			r.Verdict, r.Message = v1alpha1.VerdictInconclusive, why
			return r
		}
	}
	if j.MaxIncrease != nil {
		d := v.Candidate - v.Stable
		if d > *j.MaxIncrease {
			r.Verdict = v1alpha1.VerdictFail
			r.Message = fmt.Sprintf("candidate %s exceeds stable %s by %s, more than %s", num(v.Candidate), num(v.Stable), num(d), num(*j.MaxIncrease))
		} else {
			r.Verdict = v1alpha1.VerdictPass
			r.Message = fmt.Sprintf("candidate %s vs stable %s: difference %s within %s", num(v.Candidate), num(v.Stable), num(d), num(*j.MaxIncrease))
		}
		return r
	}
	switch {
	case v.Stable == 0 && v.Candidate == 0:
		r.Verdict, r.Message = v1alpha1.VerdictPass, "candidate and stable are both 0"
	case v.Stable == 0:
		// A positive candidate against a measured zero is an unbounded
		// ratio: say so rather than divide.
		r.Verdict = v1alpha1.VerdictFail
		r.Message = fmt.Sprintf("candidate %s against stable 0: ratio unbounded, above %s", num(v.Candidate), num(*j.MaxRatio))
	default:
		ratio := v.Candidate / v.Stable
		if ratio > *j.MaxRatio {
			r.Verdict = v1alpha1.VerdictFail
			r.Message = fmt.Sprintf("candidate %s is %s× stable %s, above %s×", num(v.Candidate), num(ratio), num(v.Stable), num(*j.MaxRatio))
		} else {
			r.Verdict = v1alpha1.VerdictPass
			r.Message = fmt.Sprintf("candidate %s is %s× stable %s, within %s×", num(v.Candidate), num(ratio), num(v.Stable), num(*j.MaxRatio))
		}
	}
	return r
}
