package rollout

import (
	"fmt"
	"math"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// decider carries one evaluation. Every method reads r (never modified) and
// o, and writes st and d.
type decider struct {
	r   *v1alpha1.ModelRollout
	o   Observed
	st  *v1alpha1.ModelRolloutStatus
	d   Decision
	now metav1.Time

	applied    map[string]int32 // weights the controller wrote last (status)
	waiting    string           // why traffic is held for pods, if it is
	pending    string           // why the current intent is not applied yet
	drift      []string         // routes found with foreign weights
	stableDown string           // why the stable subset cannot take traffic, if so
	restored   []string         // subsets drained to stable this round, and why
	advance    string           // why the current step may end (stepDone)
	warmHeld   bool             // the warm-up gate holds the candidate this round
	gateWait   string           // what a gate of spec.gates holds the rollout for, if one does
}

// Decide evaluates a rollout against what was observed. It never modifies r.
func Decide(r *v1alpha1.ModelRollout, o Observed) Decision {
	x := &decider{r: r, o: o, st: r.Status.DeepCopy(), now: metav1.NewTime(o.Now)}
	x.st.ObservedGeneration = r.Generation
	x.applied = toMap(r.Status.Weights)
	if x.o.Problem == "" {
		x.o.Problem = x.o.Conflict
	}
	if x.o.Problem == "" {
		x.o.Problem = x.adoptionProblem()
	}
	if x.o.Problem == "" {
		x.o.Problem = experimentProblem(x.r)
	}
	if x.o.Problem != "" {
		x.fail()
		return x.finish(nil)
	}
	x.recover()
	x.adopt()
	x.completePromotion()
	x.judgeRound()
	x.applySpecAndIntent()
	x.protect()
	return x.finish(x.run())
}

// fail records a configuration problem; nothing is written to the mesh.
func (x *decider) fail() {
	if x.st.Phase != v1alpha1.PhaseFailed {
		x.history(HistoryFailed, x.st.Phase, v1alpha1.PhaseFailed, ActorController, x.o.Problem, "", nil)
		x.event(EventTypeWarning, ReasonFailed, x.o.Problem)
		x.st.Phase = v1alpha1.PhaseFailed
	}
}

// recover leaves Failed once the references are fixed, back to the phase the
// rollout had before it failed.
func (x *decider) recover() {
	if x.st.Phase != v1alpha1.PhaseFailed {
		return
	}
	to := v1alpha1.PhaseStable
	for i := len(x.st.History) - 1; i >= 0; i-- {
		if h := x.st.History[i]; h.Type == HistoryFailed {
			if h.From != "" && h.From != v1alpha1.PhaseFailed {
				to = h.From
			}
			break
		}
	}
	x.history(HistoryRecovered, v1alpha1.PhaseFailed, to, ActorController, "references fixed", "", nil)
	x.event(EventTypeNormal, ReasonRecovered, fmt.Sprintf("references fixed; back to %s", to))
	x.st.Phase = to
}

// completePromotion finishes a promotion whose spec update landed but whose
// status update did not (the controller stopped in between). A promotion
// already recorded since the rollout started is complete: what came after
// it (a split of the promoted version and the old one, say) is a person's
// intent, which this must never undo.
func (x *decider) completePromotion() {
	c := x.st.Candidate
	if c == "" || x.r.Spec.Stable != c || x.r.Spec.Candidate != "" || x.promotionRecorded() {
		return
	}
	switch x.st.Phase {
	case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseManualSplit:
		x.promote(ActorController, "spec.stable already names the candidate", "", false)
	}
}

// promotionRecorded reports whether history has a Promoted entry since the
// latest start.
func (x *decider) promotionRecorded() bool {
	for i := len(x.st.History) - 1; i >= 0; i-- {
		switch x.st.History[i].Type {
		case HistoryPromoted:
			return true
		case HistoryStarted, HistoryAdopted:
			return false
		}
	}
	return false
}

// judgeRound applies an analysis round to the current step.
func (x *decider) judgeRound() {
	round := x.o.Round
	if round == nil || x.st.Phase != v1alpha1.PhaseProgressing || x.st.StepStartedAt == nil {
		return
	}
	rd := boundRound(*round.DeepCopy())
	rd.Step = x.step()
	if rd.Time.IsZero() {
		rd.Time = x.now
	}
	counted := x.countsTowardLimits(rd)
	a := x.analysis()
	a.Ran = true
	a.Rounds++
	a.LastRoundAt = &x.now
	a.RecentRounds = append(a.RecentRounds, rd)
	if n := len(a.RecentRounds); n > MaxRecentRounds {
		a.RecentRounds = a.RecentRounds[n-MaxRecentRounds:]
	}
	spec := analysisSpec(x.r)
	why := roundSummary(rd)
	// Rounds count toward the limits at most once per interval
	// (countsTowardLimits); a sequential Fail is final (sequentialFail).
	switch {
	case rd.Verdict == v1alpha1.VerdictFail && x.sequentialFail(rd):
		a.ConsecutiveFailures++
		x.rollback(ActorController, "an always-valid sequential test failed: "+why, "")
		return
	case !counted:
	case rd.Verdict == v1alpha1.VerdictPass:
		a.ConsecutiveFailures, a.ConsecutiveInconclusive = 0, 0
	case rd.Verdict == v1alpha1.VerdictFail:
		a.ConsecutiveFailures++
		x.event(EventTypeWarning, ReasonAnalysisFailed, fmt.Sprintf("round failed (%d of %d): %s", a.ConsecutiveFailures, spec.FailureLimit, why))
	case rd.Verdict == v1alpha1.VerdictInconclusive:
		a.ConsecutiveInconclusive++
	case rd.Verdict == v1alpha1.VerdictError:
		x.event(EventTypeWarning, ReasonAnalysisError, "metrics unavailable: "+why)
		if x.r.Spec.OnMetricsUnavailable == v1alpha1.MetricsUnavailableRollback {
			a.ConsecutiveFailures++
		}
	}
	switch {
	case a.ConsecutiveFailures >= spec.FailureLimit:
		x.rollback(ActorController, fmt.Sprintf("analysis failed %d consecutive rounds: %s", a.ConsecutiveFailures, why), "")
	case a.ConsecutiveInconclusive >= spec.InconclusiveLimit:
		x.pause(ActorController, fmt.Sprintf("%d consecutive inconclusive rounds (not enough evidence yet): %s; a person should look", a.ConsecutiveInconclusive, why), "")
	}
}

// run computes the weights the phase wants on the mesh.
func (x *decider) run() map[string]int32 {
	switch x.st.Phase {
	case v1alpha1.PhaseProgressing:
		return x.progress(true)
	case v1alpha1.PhasePaused, v1alpha1.PhaseManualSplit:
		if len(x.applied) == 0 {
			return map[string]int32{x.r.Spec.Stable: 100}
		}
		return copyMap(x.applied)
	case v1alpha1.PhasePromoted:
		if x.d.Promote {
			return map[string]int32{x.st.Candidate: 100}
		}
		return x.idle(v1alpha1.PhasePromoted)
	case v1alpha1.PhaseRolledBack:
		return x.idle(v1alpha1.PhaseRolledBack)
	default:
		x.st.Phase = v1alpha1.PhaseStable
		return x.idle(v1alpha1.PhaseStable)
	}
}

// idle keeps the stable subset at 100%. A stable edited in the spec with no
// rollout moves traffic at once, but only to Ready pods.
func (x *decider) idle(phase v1alpha1.Phase) map[string]int32 {
	stable := x.r.Spec.Stable
	want := map[string]int32{stable: 100}
	if len(x.applied) > 0 && x.applied[stable] != 100 && phase != v1alpha1.PhaseRolledBack && x.d.Outcome == "" {
		if msg := x.gate(want); msg != "" {
			x.waiting = msg
			return copyMap(x.applied)
		}
		x.history(HistoryStableChanged, phase, v1alpha1.PhaseStable, ActorSpec, "spec.stable set to "+stable, "", want)
		x.event(EventTypeNormal, ReasonStableChanged, fmt.Sprintf("spec.stable is %s: it now serves 100%%", stable))
		x.st.Phase = v1alpha1.PhaseStable
	}
	return want
}

// progress applies the current step's weights (once its subsets are Ready)
// and advances when the step has lasted minStepDuration and analysis passed.
func (x *decider) progress(mayAdvance bool) map[string]int32 {
	if x.st.Shadow != nil {
		return x.shadow(mayAdvance)
	}
	if x.running() {
		return x.experiment()
	}
	steps := steps(x.r)
	i := x.step()
	target := x.stepWeights(steps[i])
	if x.stableDown != "" {
		// Nothing moves while stable cannot take traffic back: a step
		// would pour more onto the candidate with no way to undo it.
		x.waiting = x.stableDown
		return x.hold()
	}
	if x.st.StepStartedAt == nil {
		if msg := x.gate(target); msg != "" {
			x.waiting = msg
			return x.hold()
		}
		if msg := x.holdAt(entryPoints(i, steps[i])...); msg != "" || x.st.Phase != v1alpha1.PhaseProgressing {
			if x.st.Phase != v1alpha1.PhaseProgressing {
				return x.run() // a gate failed: rolled back or paused
			}
			return x.hold()
		}
		if msg := x.warm(steps[i]); msg != "" {
			if x.st.Phase != v1alpha1.PhaseProgressing {
				return x.run() // not warm in time: rolled back
			}
			x.waiting = msg
			return x.hold()
		}
		if steps[i] == 100 {
			x.promote(ActorController, "reached the last step (100%)", "", true)
			return map[string]int32{x.st.Candidate: 100}
		}
		x.st.StepStartedAt = &x.now
		x.st.Analysis = x.nextStepAnalysis()
		return target
	}
	if !mayAdvance || !x.stepDone(i) {
		return target
	}
	next := i + 1
	if next < int32(len(steps)) && steps[next] < 100 {
		// EachStep gates run before the step ends, while its analysis
		// still watches the candidate at the current weight.
		if msg := x.holdAt(eachStep(next)); msg != "" || x.st.Phase != v1alpha1.PhaseProgressing {
			if x.st.Phase != v1alpha1.PhaseProgressing {
				return x.run()
			}
			return target
		}
	}
	if next >= int32(len(steps)) || steps[next] == 100 {
		all := map[string]int32{x.st.Candidate: 100}
		if msg := x.gate(all); msg != "" {
			x.waiting = msg
			return target
		}
		if msg := x.holdAt(v1alpha1.GatePoint{At: v1alpha1.GatePrePromote}); msg != "" || x.st.Phase != v1alpha1.PhaseProgressing {
			if x.st.Phase != v1alpha1.PhaseProgressing {
				return x.run()
			}
			return target
		}
		if msg := x.warm(100); msg != "" {
			if x.st.Phase != v1alpha1.PhaseProgressing {
				return x.run()
			}
			x.waiting = msg
			return target
		}
		x.promote(ActorController, x.passReason(i), "", true)
		return all
	}
	x.st.Step = &next
	x.st.StepStartedAt = nil
	nw := x.stepWeights(steps[next])
	x.history(HistoryStepAdvanced, v1alpha1.PhaseProgressing, v1alpha1.PhaseProgressing, ActorController, x.passReason(i), "", nw)
	x.event(EventTypeNormal, ReasonStepAdvanced, fmt.Sprintf("step %d of %d: %s at %d%% (%s)", next+1, len(steps), x.st.Candidate, steps[next], x.passReason(i)))
	return x.progress(false)
}

func (x *decider) passReason(i int32) string {
	if !hasMetrics(x.r) {
		return fmt.Sprintf("step %d lasted %s; no analysis configured", i+1, minStep(x.r))
	}
	if x.advance != "" {
		return x.advance
	}
	return fmt.Sprintf("step %d passed analysis", i+1)
}

// hold keeps the weights on the mesh while a new step waits for Ready pods;
// a subset that is neither stable nor the candidate (a replaced candidate)
// still drops to 0, because taking traffic away is always safe.
func (x *decider) hold() map[string]int32 {
	stable, cand := x.r.Spec.Stable, x.st.Candidate
	out := map[string]int32{stable: 100}
	if len(x.applied) == 0 {
		return out
	}
	out[stable] = 100 - x.applied[cand]
	if x.applied[cand] > 0 {
		out[cand] = x.applied[cand]
	}
	return out
}

// gate returns why want cannot be applied yet: a subset whose weight would
// rise has fewer Ready pods than spec.readiness.minReadyPods.
func (x *decider) gate(want map[string]int32) string {
	min := x.r.Spec.Readiness.MinReadyPods
	if min <= 0 {
		min = 1
	}
	for _, s := range sortedSubsets(want) {
		if want[s] <= x.currentWeight(s) {
			continue
		}
		if x.o.Subsets != nil && !x.o.Subsets[s] {
			return notAVersion(x.r, s, "add it before it gets traffic")
		}
		if n := x.o.ReadyPods[s]; n < min {
			return fmt.Sprintf("subset %s has %d Ready pod(s), needs %d before it gets traffic (spec.readiness.minReadyPods)", s, n, min)
		}
		if msg := x.capacity(s, want[s]); msg != "" {
			return msg
		}
	}
	return ""
}

// capacity returns why subset s cannot take weight w yet: its share of the
// model's traffic would exceed what its Ready pods carry
// (spec.readiness.requestsPerPod), or the traffic cannot be read.
func (x *decider) capacity(s string, w int32) string {
	per, source, problem := x.perPod()
	if problem != "" {
		return fmt.Sprintf("subset %s stays at %d%%: %s", s, x.currentWeight(s), problem)
	}
	if per == nil || *per <= 0 {
		return ""
	}
	if x.o.TrafficProblem != "" {
		return fmt.Sprintf("subset %s stays at %d%%: %s", s, x.currentWeight(s), x.o.TrafficProblem)
	}
	if x.o.TrafficRate == nil {
		return fmt.Sprintf("subset %s stays at %d%%: the model's traffic was not read, so its capacity (spec.readiness.requestsPerPod) cannot be checked", s, x.currentWeight(s))
	}
	share := *x.o.TrafficRate * float64(w) / 100
	ready := x.o.ReadyPods[s]
	if share <= float64(ready)**per {
		return ""
	}
	need := int32(math.Ceil(share / *per))
	return fmt.Sprintf("subset %s at %d%% would serve about %.0f requests/s (%d%% of %.0f); its %d Ready pod(s) carry %.0f at %g each (%s): waiting for %d Ready pods",
		s, w, share, w, *x.o.TrafficRate, ready, float64(ready)**per, *per, source, need) + x.scaleAhead(s, w, share, *per, need, ready)
}

// perPod is one pod's capacity in requests/s and where it comes from:
// spec.readiness.requestsPerPod, or what requestsPerPodQuery measured (a
// problem when it could not be). Nil: no capacity check.
func (x *decider) perPod() (per *float64, source, problem string) {
	rd := x.r.Spec.Readiness
	switch {
	case rd.RequestsPerPod != nil:
		return rd.RequestsPerPod, "spec.readiness.requestsPerPod", ""
	case rd.RequestsPerPodQuery == "":
		return nil, "", ""
	case x.o.CapacityProblem != "":
		return nil, "", x.o.CapacityProblem
	case x.o.RequestsPerPod == nil:
		return nil, "", "one pod's capacity (spec.readiness.requestsPerPodQuery) was not measured, so it cannot be checked"
	}
	return x.o.RequestsPerPod, "measured by spec.readiness.requestsPerPodQuery", ""
}

// currentWeight is the least weight a subset has on any managed route now,
// or the recorded weight when the routes were not read.
func (x *decider) currentWeight(s string) int32 {
	if len(x.o.RouteWeights) == 0 {
		return x.applied[s]
	}
	first, least := true, int32(0)
	for _, w := range x.o.RouteWeights {
		if first || w[s] < least {
			least, first = w[s], false
		}
	}
	return least
}

func (x *decider) stepWeights(w int32) map[string]int32 {
	return map[string]int32{x.r.Spec.Stable: 100 - w, x.st.Candidate: w}
}

func (x *decider) step() int32 {
	n := int32(len(steps(x.r)))
	if x.st.Step == nil || *x.st.Step < 0 {
		return 0
	}
	if *x.st.Step >= n {
		return n - 1
	}
	return *x.st.Step
}

func (x *decider) analysis() *v1alpha1.AnalysisStatus {
	if x.st.Analysis == nil {
		x.st.Analysis = &v1alpha1.AnalysisStatus{}
	}
	return x.st.Analysis
}

// boundRound cuts a round's free text and metric count to the CRD's limits,
// so that a round full of long provider errors still fits in a status write.
func boundRound(rd v1alpha1.AnalysisRound) v1alpha1.AnalysisRound {
	if len(rd.Metrics) > maxRoundMetrics {
		rd.Metrics = rd.Metrics[:maxRoundMetrics]
	}
	for i := range rd.Metrics {
		m := &rd.Metrics[i]
		m.Name = v1alpha1.CutText(m.Name, 63)
		m.Message = v1alpha1.CutText(m.Message, v1alpha1.MaxMetricMessage)
		m.Threshold = v1alpha1.CutText(m.Threshold, v1alpha1.MaxThreshold)
	}
	return rd
}
