package rollout

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/analysis"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// A rollout whose analysis has a sequential metric follows the evidence
// (analysis.EvidenceDriven): rounds come every look period, aligned on the
// clock, a step ends on a Pass after the minimum dwell (or earlier within
// the exposure budget), and each sequential metric's counts in a completed
// step are kept in status.analysis.evidence, so that one always-valid test
// covers the whole rollout. Other rollouts keep spec.analysis.interval and
// minStepDuration.

// AnalysisDue reports whether the reconciler should run an analysis round now:
// the rollout progresses, the step's weights are on the mesh, it has metrics,
// and the next look is due (see nextRoundAt).
func AnalysisDue(r *v1alpha1.ModelRollout, now time.Time) bool {
	next, ok := nextRoundAt(r)
	return ok && !now.Before(next)
}

// nextRoundAt is when the next round is due. An evidence-driven rollout
// looks every look period on the clock's boundaries (where the engine's
// batched windows end): one look period after its step's evidence starts,
// then at the first boundary after each round, so two rounds never fall in
// one boundary's bucket. Others look one interval after the step started
// or the last round ran.
func nextRoundAt(r *v1alpha1.ModelRollout) (time.Time, bool) {
	st := r.Status
	if st.Phase != v1alpha1.PhaseProgressing || st.StepStartedAt == nil || !hasMetrics(r) {
		return time.Time{}, false
	}
	var last *time.Time
	if st.Analysis != nil && st.Analysis.LastRoundAt != nil && !st.Analysis.LastRoundAt.Before(st.StepStartedAt) {
		last = &st.Analysis.LastRoundAt.Time
	}
	if !analysis.EvidenceDriven(r.Spec.Analysis) {
		from := st.StepStartedAt.Time
		if last != nil && last.After(from) {
			from = *last
		}
		return from.Add(interval(r)), true
	}
	look := analysis.LookPeriod(r.Spec.Analysis)
	next := analysis.EvidenceStart(st.StepStartedAt.Time, look).Add(look)
	if last != nil {
		if b := last.Truncate(look).Add(look); b.After(next) {
			next = b
		}
	}
	return next, true
}

// stepAge is how long the current step had lasted at t, for the rules that
// advance it: from its evidence start when it follows the evidence (so a
// step advanced by a look just after a boundary has lasted a whole look
// period at the next one), else from its start.
func (x *decider) stepAge(t time.Time) time.Duration {
	start := x.st.StepStartedAt.Time
	if spec := x.r.Spec.Analysis; analysis.EvidenceDriven(spec) {
		start = analysis.EvidenceStart(start, analysis.LookPeriod(spec))
	}
	return t.Sub(start)
}

// stepDone says whether step i may end now, and records why in x.advance.
// Without metrics a step lasts minStepDuration. With metrics the latest
// round of the step decides (analysis.Advance); when the rollout follows
// the evidence that round must have run in this reconcile, so the step's
// evidence ends where the step does.
func (x *decider) stepDone(i int32) bool {
	if !hasMetrics(x.r) {
		return x.now.Sub(x.st.StepStartedAt.Time) >= minStep(x.r)
	}
	a := x.st.Analysis
	if a == nil || len(a.RecentRounds) == 0 {
		return false
	}
	last := a.RecentRounds[len(a.RecentRounds)-1]
	if last.Step != i || last.Time.Before(x.st.StepStartedAt) {
		return false
	}
	spec := analysisSpec(x.r)
	if analysis.EvidenceDriven(&spec) && x.o.Round == nil {
		return false
	}
	all := steps(x.r)
	kind, why := analysis.Advance(analysis.StepInput{
		Round: last, Spec: &spec, Age: x.stepAge(last.Time.Time), MinStepDuration: minStepSpec(x.r),
		NextWeight: all[min(int(i)+1, len(all)-1)], NextIsLast: int(i)+2 >= len(all),
	})
	x.advance = advanceReason(i, kind, why)
	return kind != ""
}

// advanceReason is the history reason of a step that ends.
func advanceReason(i int32, kind, why string) string {
	switch kind {
	case analysis.AdvanceEvidence:
		return fmt.Sprintf("step %d passed analysis", i+1)
	case analysis.AdvanceLowTraffic:
		return fmt.Sprintf("step %d had %s", i+1, why)
	case analysis.AdvanceBudget:
		return fmt.Sprintf("step %d: %s", i+1, why)
	}
	return ""
}

// countsTowardLimits says whether a round counts toward failureLimit and
// inconclusiveLimit: the first round of a step, then at most one round per
// analysis interval. An evidence-driven rollout looks more often than its
// interval, and a fixed-sample judge would err more often if every look
// counted.
func (x *decider) countsTowardLimits(rd v1alpha1.AnalysisRound) bool {
	a := x.st.Analysis
	if a == nil || a.LastRoundAt == nil || x.st.StepStartedAt == nil || a.LastRoundAt.Before(x.st.StepStartedAt) {
		return true
	}
	iv, start := interval(x.r), x.st.StepStartedAt.Time
	return rd.Time.Sub(start)/iv > a.LastRoundAt.Sub(start)/iv
}

// sequentialFail reports a sequential metric that failed: its test is
// always valid, so one Fail is final and rolls back at once, whatever
// failureLimit says (which guards fixed-sample judges against noise).
func (x *decider) sequentialFail(rd v1alpha1.AnalysisRound) bool {
	spec := analysisSpec(x.r)
	for _, m := range rd.Metrics {
		if m.Verdict != v1alpha1.VerdictFail {
			continue
		}
		for _, sm := range spec.Metrics {
			if sm.Name == m.Name && sm.Sequential != nil {
				return true
			}
		}
	}
	return false
}

// nextStepAnalysis is the analysis status a new step starts with: empty but
// for the evidence of the completed steps, to which it adds the step that
// just ended (each sequential metric's counts at its latest round of that
// step). A new rollout (start) begins with no evidence at all.
func (x *decider) nextStepAnalysis() *v1alpha1.AnalysisStatus {
	next := &v1alpha1.AnalysisStatus{}
	a := x.st.Analysis
	if a == nil {
		return next
	}
	next.Evidence = append(next.Evidence, a.Evidence...)
	for i := range next.Evidence {
		next.Evidence[i].Steps = append([]v1alpha1.StepEvidence(nil), next.Evidence[i].Steps...)
	}
	done := map[string]bool{}
	for r := len(a.RecentRounds) - 1; r >= 0; r-- {
		for _, m := range a.RecentRounds[r].Metrics {
			if m.Evidence == nil || done[m.Name] {
				continue
			}
			done[m.Name] = true
			next.Evidence = addStepEvidence(next.Evidence, m.Name, *m.Evidence)
		}
	}
	return next
}

// maxEvidenceMetrics is the CRD's bound on status.analysis.evidence, the
// spec's bound on metrics.
const maxEvidenceMetrics = 32

// addStepEvidence appends one metric's completed step, keeping at most
// v1alpha1.MaxEvidenceSteps steps per metric: beyond that (a step restarted
// after many manual splits) the two oldest steps with the same index are
// pooled, or else the two oldest.
func addStepEvidence(ev []v1alpha1.MetricEvidence, metric string, s v1alpha1.StepEvidence) []v1alpha1.MetricEvidence {
	i := 0
	for i < len(ev) && ev[i].Metric != metric {
		i++
	}
	if i == len(ev) {
		if len(ev) >= maxEvidenceMetrics {
			return ev
		}
		ev = append(ev, v1alpha1.MetricEvidence{Metric: metric})
	}
	steps := append(ev[i].Steps, s)
	if len(steps) > v1alpha1.MaxEvidenceSteps {
		a, b := 0, 1
		seen := map[int32]int{}
		for j, st := range steps {
			if k, ok := seen[st.Step]; ok {
				a, b = k, j
				break
			}
			seen[st.Step] = j
		}
		steps[a] = poolSteps(steps[a], steps[b])
		steps = append(steps[:b], steps[b+1:]...)
	}
	ev[i].Steps = steps
	return ev
}

func poolSteps(a, b v1alpha1.StepEvidence) v1alpha1.StepEvidence {
	return v1alpha1.StepEvidence{Step: a.Step,
		Candidate: v1alpha1.EventCounts{Bad: a.Candidate.Bad + b.Candidate.Bad, Total: a.Candidate.Total + b.Candidate.Total},
		Stable:    v1alpha1.EventCounts{Bad: a.Stable.Bad + b.Stable.Bad, Total: a.Stable.Total + b.Stable.Total},
		Window:    metav1.Duration{Duration: a.Window.Duration + b.Window.Duration},
	}
}

// CompletedEvidence is what the sequential metrics counted in the
// rollout's completed steps, for the analysis request.
func CompletedEvidence(r *v1alpha1.ModelRollout) []v1alpha1.MetricEvidence {
	if a := r.Status.Analysis; a != nil {
		return a.Evidence
	}
	return nil
}
