package rollout

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/analysis"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
)

// retryWhileWaiting is how soon a held rollout looks again even without a
// pod event (watches normally wake it first).
const retryWhileWaiting = 30 * time.Second

// retryWhileFailed is the same for broken references.
const retryWhileFailed = time.Minute

func (x *decider) finish(desired map[string]int32) Decision {
	switch x.st.Phase {
	case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseFailed:
		// Failed keeps the stage: once the references are fixed the
		// rollout goes on where it was, in shadow, never past it.
	default:
		// The shadow stage ends with the rollout; the reconciler removes
		// the mirror the previous status recorded.
		x.st.Shadow = nil
	}
	x.closeExperiment()
	if !x.warmHeld {
		// The gate's status lives exactly as long as it holds.
		x.st.Warmup = nil
	}
	if desired != nil {
		x.settleWeights(desired)
	}
	x.settleScaling(desired)
	x.settleGates()
	x.conditions()
	x.st.Message = v1alpha1.CutText(x.message(), v1alpha1.MaxStatusMessage)
	if x.st.Phase == v1alpha1.PhaseProgressing && !hasMetrics(x.r) {
		if x.st.Analysis == nil || x.st.Analysis.Ran {
			x.st.Analysis = &v1alpha1.AnalysisStatus{Ran: false}
		}
	}
	x.d.RequeueAfter = minPositive(minPositive(x.requeue(), x.scalingRequeue()), x.gatesRequeue())
	x.d.Status = *x.st
	return x.d
}

// settleWeights completes the desired weights with zeros for every subset
// that had traffic or is still listed on a managed route, detects weights
// written by someone else, and records the result in status.
func (x *decider) settleWeights(desired map[string]int32) {
	for s, w := range x.applied {
		if _, ok := desired[s]; !ok && w > 0 {
			desired[s] = 0
		}
	}
	for _, rw := range x.o.RouteWeights {
		for s := range rw {
			if _, ok := desired[s]; !ok {
				desired[s] = 0
			}
		}
	}
	if len(x.applied) > 0 {
		for _, route := range sortedRoutes(x.o.RouteWeights) {
			rw := x.o.RouteWeights[route]
			if !router.WeightsEqual(rw, x.applied) && !router.WeightsEqual(rw, desired) {
				x.drift = append(x.drift, route)
				x.event(EventTypeWarning, ReasonWeightDriftReverted, fmt.Sprintf(
					"route %s had %s, set by someone else; put back %s (Fulcrum owns the weights of managed routes)",
					route, formatWeights(rw), formatWeights(desired)))
			}
		}
	}
	x.d.Weights = x.orderedWeights(desired)
	x.st.Weights = x.orderedWeights(desired)
	x.st.CandidateWeight = desired[x.st.Candidate]
}

func (x *decider) conditions() {
	gen := x.r.Generation
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&x.st.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: v1alpha1.CutText(msg, v1alpha1.MaxConditionText),
			ObservedGeneration: gen, LastTransitionTime: x.now,
		})
	}
	if x.o.Problem != "" {
		reason := CondReasonInvalidRef
		if x.o.Conflict != "" {
			reason = CondReasonRouteConflict
		}
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, reason, x.o.Problem)
		return
	}
	set(v1alpha1.ConditionReady, metav1.ConditionTrue, CondReasonReconciled, "references resolved; weights are managed")
	x.routeCondition(set)
	switch {
	case x.stableDown != "":
		set(v1alpha1.ConditionSubsetsReady, metav1.ConditionFalse, CondReasonStableNotReady, x.stableDown)
	case len(x.restored) > 0:
		set(v1alpha1.ConditionSubsetsReady, metav1.ConditionFalse, CondReasonSubsetGone, strings.Join(x.restored, "; ")+": its weight went to stable")
	case x.warmHeld:
		set(v1alpha1.ConditionSubsetsReady, metav1.ConditionFalse, CondReasonNotWarm, x.waiting)
	case x.waiting != "":
		set(v1alpha1.ConditionSubsetsReady, metav1.ConditionFalse, CondReasonPodsNotReady, x.waiting)
	default:
		set(v1alpha1.ConditionSubsetsReady, metav1.ConditionTrue, CondReasonPodsReady, "every subset with traffic has enough Ready pods")
	}
	switch a := x.st.Analysis; {
	case !hasMetrics(x.r):
		set(v1alpha1.ConditionAnalysis, metav1.ConditionUnknown, CondReasonNoMetrics, "no metrics configured: steps advance on minStepDuration alone and no analysis runs")
	case a != nil && len(a.RecentRounds) > 0:
		last := a.RecentRounds[len(a.RecentRounds)-1]
		status := metav1.ConditionFalse
		if last.Verdict == v1alpha1.VerdictPass {
			status = metav1.ConditionTrue
		}
		set(v1alpha1.ConditionAnalysis, status, string(last.Verdict), fmt.Sprintf("step %d: %s", last.Step+1, roundSummary(last)))
	case x.st.Phase == v1alpha1.PhaseProgressing:
		set(v1alpha1.ConditionAnalysis, metav1.ConditionUnknown, CondReasonNoRoundYet, "no analysis round at this step yet")
	default:
		set(v1alpha1.ConditionAnalysis, metav1.ConditionUnknown, CondReasonNotProgressing, "analysis runs only while progressing")
	}
}

// message is one line, free of relative times so that it does not change
// (and cause a status write) on every reconcile.
func (x *decider) message() string {
	st := x.st
	switch {
	case x.o.Problem != "":
		return x.o.Problem
	case x.pending != "":
		return x.pending
	}
	var m string
	steps := steps(x.r)
	es := st.Experiment
	switch {
	case x.running() && st.Phase == v1alpha1.PhaseProgressing:
		m = "experiment: " + formatWeightList(st.Weights)
		if es.Reason != "" {
			m += "; " + es.Reason
		}
	case x.running():
		m = fmt.Sprintf("experiment paused with %s (%s); resume or stop it (roll back)", formatWeightList(st.Weights), x.lastReason(HistoryPaused))
	case es != nil && es.Outcome != "" && keptSplit(st) && st.Phase != v1alpha1.PhaseFailed:
		// keptSplit: the latest entry is the experiment's end.
		m = fmt.Sprintf("experiment ended %s: %s", es.Outcome, es.Reason)
		if st.Phase == v1alpha1.PhaseManualSplit {
			m += "; the split is kept until a person acts"
		}
	case st.Phase == v1alpha1.PhaseProgressing:
		i := x.step()
		m = fmt.Sprintf("step %d of %d: %s at %d%%", i+1, len(steps), st.Candidate, steps[i])
		if !hasMetrics(x.r) {
			m += fmt.Sprintf("; no analysis configured, each step lasts %s", minStep(x.r))
		}
	case st.Phase == v1alpha1.PhasePaused:
		m = fmt.Sprintf("paused at step %d of %d with %s at %d%% (%s); resume, promote or roll back", x.step()+1, len(steps), st.Candidate, st.CandidateWeight, x.lastReason(HistoryPaused))
	case st.Phase == v1alpha1.PhaseManualSplit:
		m = fmt.Sprintf("weights pinned by hand: %s; resume or roll back to leave the manual split", formatWeightList(st.Weights))
	case st.Phase == v1alpha1.PhasePromoted:
		m = fmt.Sprintf("%s promoted: it serves 100%%", st.Candidate)
	case st.Phase == v1alpha1.PhaseRolledBack:
		m = fmt.Sprintf("rolled back %s (%s): %s serves 100%%; a Start intent or a new candidate starts again", st.Candidate, x.lastReason(HistoryRolledBack), x.r.Spec.Stable)
	default:
		m = fmt.Sprintf("%s serves 100%%", x.r.Spec.Stable)
	}
	if x.waiting != "" {
		m += "; holding: " + x.waiting
	}
	if x.gateWait != "" && st.Phase == v1alpha1.PhaseProgressing {
		m += "; " + x.gateWait
	}
	if issue := x.routeIssue(); issue != "" {
		m += "; " + issue
	}
	if sc := x.scalingMessage(); sc != "" {
		m += "; " + sc
	}
	return m
}

func (x *decider) lastReason(typ string) string {
	for i := len(x.st.History) - 1; i >= 0; i-- {
		if h := x.st.History[i]; h.Type == typ {
			if h.Reason == "" {
				return "by " + h.Actor
			}
			return h.Reason
		}
	}
	return "no reason recorded"
}

func (x *decider) requeue() time.Duration {
	switch {
	case x.o.Problem != "":
		return retryWhileFailed
	case x.warmHeld:
		return warmupRecheck
	case x.running() && x.st.Experiment.StartedAt != nil && x.waiting == "":
		// The reward is read, and the decision taken, once an interval.
		return interval(x.r)
	case x.waiting != "" || x.pending != "" || x.stableDown != "":
		return retryWhileWaiting
	case x.gateWait != "" && !hasMetrics(x.r):
		// Nothing but the gate can end the step: gatesRequeue says when
		// to look at it.
		return 0
	case x.st.Phase != v1alpha1.PhaseProgressing || x.st.StepStartedAt == nil:
		return 0
	}
	now := x.o.Now
	least := minStep(x.r)
	if x.st.Shadow != nil {
		least = shadowMinDuration(x.r)
	}
	next := x.st.StepStartedAt.Add(least)
	r, ok := nextRoundAt(&v1alpha1.ModelRollout{Spec: x.r.Spec, Status: *x.st})
	if ok && (!next.After(now) || r.Before(next) || analysis.EvidenceDriven(x.r.Spec.Analysis)) {
		// Rounds drive an evidence-driven rollout's steps: nothing happens
		// between them.
		next = r
	}
	if d := next.Sub(now); d > 0 {
		return d
	}
	return time.Second
}

func (x *decider) orderedWeights(m map[string]int32) []v1alpha1.SubsetWeight {
	var order []string
	seen := map[string]bool{}
	stable := x.r.Spec.Stable
	if x.d.Promote {
		stable = x.st.Candidate // spec.stable after this round's spec update
	}
	for _, s := range []string{stable, x.st.Candidate} {
		if _, ok := m[s]; ok && !seen[s] {
			order, seen[s] = append(order, s), true
		}
	}
	for _, s := range sortedSubsets(m) {
		if !seen[s] {
			order = append(order, s)
		}
	}
	out := make([]v1alpha1.SubsetWeight, 0, len(order))
	for _, s := range order {
		out = append(out, v1alpha1.SubsetWeight{Subset: s, Weight: m[s]})
	}
	return out
}

func roundSummary(r v1alpha1.AnalysisRound) string {
	var parts []string
	for _, m := range r.Metrics {
		p := fmt.Sprintf("%s %s", m.Name, m.Verdict)
		if m.Message != "" {
			p += " (" + m.Message + ")"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return string(r.Verdict)
	}
	return string(r.Verdict) + ": " + strings.Join(parts, "; ")
}

func steps(r *v1alpha1.ModelRollout) []int32 {
	if c := r.Spec.Strategy.Canary; c != nil && len(c.Steps) > 0 {
		return c.Steps
	}
	return DefaultSteps
}

// minStepSpec is spec.strategy.canary.minStepDuration, 0 when unset.
func minStepSpec(r *v1alpha1.ModelRollout) time.Duration {
	if c := r.Spec.Strategy.Canary; c != nil {
		return c.MinStepDuration.Duration
	}
	return 0
}

// minStep is the least time a step lasts (analysis.StepDwell).
func minStep(r *v1alpha1.ModelRollout) time.Duration {
	return analysis.StepDwell(r.Spec.Analysis, minStepSpec(r))
}

func hasMetrics(r *v1alpha1.ModelRollout) bool {
	return r.Spec.Analysis != nil && len(r.Spec.Analysis.Metrics) > 0
}

func interval(r *v1alpha1.ModelRollout) time.Duration {
	if a := r.Spec.Analysis; a != nil && a.Interval.Duration > 0 {
		return a.Interval.Duration
	}
	return DefaultInterval
}

// analysisSpec returns the analysis settings with zero limits defaulted.
func analysisSpec(r *v1alpha1.ModelRollout) v1alpha1.Analysis {
	var a v1alpha1.Analysis
	if r.Spec.Analysis != nil {
		a = *r.Spec.Analysis
	}
	if a.FailureLimit <= 0 {
		a.FailureLimit = 2
	}
	if a.InconclusiveLimit <= 0 {
		a.InconclusiveLimit = 10
	}
	return a
}

func toMap(ws []v1alpha1.SubsetWeight) map[string]int32 {
	m := make(map[string]int32, len(ws))
	for _, w := range ws {
		m[w.Subset] = w.Weight
	}
	return m
}

func copyMap(m map[string]int32) map[string]int32 {
	out := make(map[string]int32, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedSubsets(m map[string]int32) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedRoutes(m map[string]map[string]int32) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func formatWeights(m map[string]int32) string {
	var parts []string
	for _, s := range sortedSubsets(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", s, m[s]))
	}
	return strings.Join(parts, " ")
}

func formatWeightList(ws []v1alpha1.SubsetWeight) string {
	var parts []string
	for _, w := range ws {
		parts = append(parts, fmt.Sprintf("%s=%d", w.Subset, w.Weight))
	}
	return strings.Join(parts, " ")
}

// DesiredSubsets lists the subsets a rollout may send traffic to now: the
// reconciler checks they exist in the DestinationRule and counts their pods.
func DesiredSubsets(r *v1alpha1.ModelRollout) []string {
	return r.VersionsInPlay()
}

// notAVersion says that s is not one of the rollout's versions (a subset of
// its DestinationRule, or a Service of its namespace for a Gateway API
// route), with the fix when one is given; without one, that it is no
// longer one.
func notAVersion(r *v1alpha1.ModelRollout, s, fix string) string {
	msg := fmt.Sprintf("subset %s is not in DestinationRule %s", s, r.Spec.DestinationRule)
	if fix == "" {
		msg = fmt.Sprintf("subset %s is no longer in DestinationRule %s", s, r.Spec.DestinationRule)
	}
	if r.Spec.GatewayRouted() {
		msg = fmt.Sprintf("version %s has no Service in namespace %s", s, r.Namespace)
	}
	if fix != "" {
		msg += ": " + fix
	}
	return msg
}
