package analysis

import (
	"fmt"
	"math"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// MinDwell is the least time a rollout with a sequential metric spends at
// a step when spec.strategy.canary.minStepDuration is unset, however early
// its evidence is in: Istio pushes a weight change to every Envoy within a
// second or two, so by then the mesh has converged, and the step has had at
// least one look at its own traffic (rounds come every LookPeriod, at most
// 5s).
const MinDwell = 5 * time.Second

// DefaultMinStepDuration is a step's least duration when minStepDuration is
// unset and the rollout's steps do not follow the evidence (no metrics, or
// only fixed-sample judges), and how long a fixed-sample metric short of
// minSamples holds a step before the low-traffic rule may advance it.
const DefaultMinStepDuration = time.Minute

// StepDwell is the least time a step lasts: minStepDuration when the spec
// sets it (a person asked for it, and it is honoured whatever the evidence
// says), else MinDwell for a rollout that follows the evidence and
// DefaultMinStepDuration for others.
func StepDwell(spec *v1alpha1.Analysis, minStepDuration time.Duration) time.Duration {
	switch {
	case minStepDuration > 0:
		return minStepDuration
	case EvidenceDriven(spec):
		return MinDwell
	}
	return DefaultMinStepDuration
}

// DefaultExposureBudget applies when a sequential judge leaves
// exposureBudget unset: expected extra bad events per look at the next
// step, were the candidate as bad as its evidence allows.
const DefaultExposureBudget = 25.0

// defaultInterval is the CRD's default analysis interval, for specs that
// bypassed defaulting.
const defaultInterval = 30 * time.Second

// EvidenceDriven reports whether a rollout's steps follow the evidence: its
// analysis has a sequential (always-valid) metric. Such a rollout is looked
// at every LookPeriod and leaves a step on a Pass after MinDwell; others
// keep spec.analysis.interval and minStepDuration, because their
// fixed-sample judges would err more often the more often they look.
func EvidenceDriven(spec *v1alpha1.Analysis) bool {
	if spec == nil {
		return false
	}
	for _, m := range spec.Metrics {
		if m.Sequential != nil {
			return true
		}
	}
	return false
}

// LookPeriod is how often the controller runs a round for a rollout. An
// always-valid test may look as often as it likes, so an evidence-driven
// rollout is looked at as often as the data refresh: every
// DefaultBatchQuantum (the batching quantum, itself above a typical
// Prometheus scrape interval), or every interval when that is shorter. The
// engine caps a rollout's quantum at this period, so two rounds never read
// one cached answer. Other rollouts look every interval.
func LookPeriod(spec *v1alpha1.Analysis) time.Duration {
	iv := defaultInterval
	if spec != nil && spec.Interval.Duration > 0 {
		iv = spec.Interval.Duration
	}
	if !EvidenceDriven(spec) {
		return iv
	}
	return min(iv, DefaultBatchQuantum)
}

// Why a step may advance.
const (
	// AdvanceEvidence: the round passed (every metric has its evidence).
	AdvanceEvidence = "evidence"
	// AdvanceBudget: a sequential metric lacks evidence, but the exposure
	// budget allows the next step's weight.
	AdvanceBudget = "budget"
	// AdvanceLowTraffic: a metric lacks samples after minStepDuration
	// (traffic, not doubt, is missing).
	AdvanceLowTraffic = "lowTraffic"
)

// StepInput is what Advance needs to know about the current step.
type StepInput struct {
	// Round is the latest round, judged at this step.
	Round v1alpha1.AnalysisRound
	// Spec is the rollout's analysis (never nil).
	Spec *v1alpha1.Analysis
	// Age is how long the step had lasted when the round ran.
	Age time.Duration
	// MinStepDuration is spec.strategy.canary.minStepDuration, 0 when
	// unset (see StepDwell).
	MinStepDuration time.Duration
	// NextWeight is the candidate's weight at the next step, in percent;
	// NextIsLast is true when the next step promotes (100%).
	NextWeight int32
	NextIsLast bool
}

// Advance says whether the controller may move to the next step after a
// round, how (AdvanceEvidence, AdvanceBudget, AdvanceLowTraffic; "" to
// hold) and why, in words for history.
//
//   - A Pass advances once the step has lasted StepDwell: minStepDuration
//     when set, else MinDwell (evidence-driven rollouts) or
//     DefaultMinStepDuration (others). It is the only way onto the last
//     step: promotion always needs a Pass.
//   - Nothing else advances when a metric failed or errored.
//   - A sequential metric that is Inconclusive lets the step advance after
//     StepDwell when its exposure budget allows the next weight: the
//     request rate of the step × the next weight × one LookPeriod × the
//     upper confidence bound on the increase (1 without any) is at most
//     exposureBudget extra bad events, and the candidate's observed rate
//     is within maxIncrease of stable's (no budget is spent on a candidate
//     the evidence leans against).
//   - Any other Inconclusive metric lets it advance after minStepDuration
//     (DefaultMinStepDuration when unset) when it saw fewer than minSamples candidate requests: at low traffic
//     more weight is what brings evidence (at high traffic this never
//     fires).
//
// Every rule keeps the sequential judges' guarantees: they hold for any
// data-dependent choice of steps (see package stats).
func Advance(in StepInput) (kind, why string) {
	r := in.Round
	if in.Age < StepDwell(in.Spec, in.MinStepDuration) {
		return "", ""
	}
	if r.Verdict == v1alpha1.VerdictPass {
		return AdvanceEvidence, "analysis passed"
	}
	if in.NextIsLast || r.Verdict != v1alpha1.VerdictInconclusive {
		return "", ""
	}
	judges := map[string]*v1alpha1.SequentialJudge{}
	for _, m := range in.Spec.Metrics {
		judges[m.Name] = m.Sequential
	}
	kind, why = AdvanceBudget, ""
	for _, m := range r.Metrics {
		switch m.Verdict {
		case v1alpha1.VerdictPass:
			continue
		case v1alpha1.VerdictFail, v1alpha1.VerdictError:
			return "", ""
		}
		if j := judges[m.Name]; j != nil {
			ok, w := withinBudget(*j, m, in.NextWeight, LookPeriod(in.Spec))
			if !ok {
				return "", ""
			}
			why = joinWhy(why, m.Name+": "+w)
			continue
		}
		if in.Age < lowTrafficAfter(in.MinStepDuration) || m.CandidateSamples >= in.Spec.MinSamples {
			return "", ""
		}
		kind = AdvanceLowTraffic
		why = joinWhy(why, fmt.Sprintf("%s: %d candidate requests, fewer than minSamples %d", m.Name, m.CandidateSamples, in.Spec.MinSamples))
	}
	if kind == AdvanceLowTraffic {
		return kind, "too little traffic for a verdict and nothing failed; moving on to gather evidence sooner (" + why + ")"
	}
	return kind, "the exposure budget allows the next weight before the evidence is in (" + why + ")"
}

// lowTrafficAfter is how long a step with a fixed-sample metric short of
// minSamples lasts before the low-traffic rule may advance it.
func lowTrafficAfter(minStepDuration time.Duration) time.Duration {
	if minStepDuration > 0 {
		return minStepDuration
	}
	return DefaultMinStepDuration
}

// withinBudget checks one Inconclusive sequential metric against its
// exposure budget at the next weight.
func withinBudget(j v1alpha1.SequentialJudge, m v1alpha1.MetricResult, next int32, look time.Duration) (bool, string) {
	budget := DefaultExposureBudget
	if j.ExposureBudget != nil {
		budget = *j.ExposureBudget
	}
	ev := m.Evidence
	if budget <= 0 || ev == nil || ev.Window.Duration <= 0 {
		return false, ""
	}
	rate := float64(ev.Candidate.Total+ev.Stable.Total) / ev.Window.Seconds()
	if rate <= 0 {
		return false, "" // no traffic: nothing says how much the next step would serve
	}
	if m.Value != nil && m.Baseline != nil && *m.Value-*m.Baseline > j.MaxIncrease {
		return false, "" // the evidence leans toward a regression: no more exposure
	}
	u := 1.0
	if m.Upper != nil && !math.IsNaN(*m.Upper) {
		u = math.Max(0, math.Min(1, *m.Upper))
	}
	extra := rate * float64(next) / 100 * look.Seconds() * u
	if extra > budget {
		return false, ""
	}
	return true, fmt.Sprintf("%.3g extra bad events per look at %d%% if the increase were %.3g, within the budget of %g", extra, next, u, budget)
}

func joinWhy(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
