package rollout

import (
	"fmt"
	"strings"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// applySpecAndIntent applies, in order: a Start intent (it covers a new
// candidate), else a candidate set or cleared in the spec, then any other new
// intent. An intent is applied once: status.observedIntent records its id.
func (x *decider) applySpecAndIntent() {
	in := x.r.Spec.Intent
	fresh := in != nil && in.ID != x.st.ObservedIntent
	if fresh && in.Action == v1alpha1.IntentStart {
		x.applyIntent(in)
		return
	}
	x.applySpecCandidate()
	if fresh {
		x.applyIntent(in)
	}
}

func (x *decider) applySpecCandidate() {
	want, have := x.r.Spec.Candidate, x.st.Candidate
	switch {
	case want != "" && want != have:
		x.start(ActorSpec, "spec.candidate set to "+want, "")
	case want == "" && have != "" && x.r.Spec.Stable != have && active(x.st.Phase):
		x.rollback(ActorSpec, "spec.candidate was cleared", "")
	}
}

func (x *decider) applyIntent(in *v1alpha1.Intent) {
	actor := actorOf(in)
	reason := in.Reason
	ignore := func(why string) {
		x.st.ObservedIntent = in.ID
		x.history(HistoryIntentIgnored, x.st.Phase, x.st.Phase, actor, fmt.Sprintf("%s ignored: %s", in.Action, why), in.ID, nil)
		x.event(EventTypeWarning, ReasonIntentIgnored, fmt.Sprintf("%s by %s ignored: %s", in.Action, actor, why))
	}
	x.recordSuperseded(in)
	// The phase/action table the admin API answers with (api/v1alpha1
	// lifecycle.go) decides here too, so what was accepted is what applies.
	state := v1alpha1.ActionState{Phase: x.st.Phase, Candidate: x.r.Spec.Candidate, StableServesAll: x.stableServesAll(),
		PendingApproval: v1alpha1.PendingApproval(x.st)}
	if why := v1alpha1.ActionAllowed(in.Action, state); why != "" {
		if in.Action == v1alpha1.IntentRollback && in.Supersedes != nil {
			// A rollback that cancelled a pending start: the superseded
			// entry says it all.
			x.st.ObservedIntent = in.ID
			return
		}
		ignore(why)
		return
	}
	switch in.Action {
	case v1alpha1.IntentStart:
		if x.r.Spec.Candidate == "" {
			ignore("spec.candidate is empty: set it to the subset to roll out")
			return
		}
		x.st.ObservedIntent = in.ID
		x.start(actor, reason, in.ID)
	case v1alpha1.IntentPause:
		x.st.ObservedIntent = in.ID
		x.pause(actor, reason, in.ID)
	case v1alpha1.IntentResume:
		x.resume(in, actor, ignore)
	case v1alpha1.IntentPromote:
		if x.st.Candidate != x.r.Spec.Candidate {
			ignore("no candidate to promote: set spec.candidate")
			return
		}
		all := map[string]int32{x.st.Candidate: 100}
		if msg := x.gate(all); msg != "" {
			x.waiting, x.pending = msg, fmt.Sprintf("Promote by %s waits: %s", actor, msg)
			return
		}
		x.st.ObservedIntent = in.ID
		x.promote(actor, reason, in.ID, true)
	case v1alpha1.IntentRollback:
		x.st.ObservedIntent = in.ID
		x.rollback(actor, reason, in.ID)
	case v1alpha1.IntentSplit:
		x.split(in, actor, ignore)
	case v1alpha1.IntentApprove:
		x.approve(in, actor, ignore)
	}
}

func (x *decider) resume(in *v1alpha1.Intent, actor string, ignore func(string)) {
	switch x.st.Phase {
	case v1alpha1.PhasePaused:
		x.st.ObservedIntent = in.ID
		x.analysis().ConsecutiveInconclusive = 0
		x.transition(HistoryResumed, v1alpha1.PhaseProgressing, actor, in.Reason, in.ID, nil)
		x.event(EventTypeNormal, ReasonResumed, fmt.Sprintf("%s resumed the rollout of %s%s", actor, x.st.Candidate, because(in.Reason)))
	case v1alpha1.PhaseManualSplit:
		x.st.ObservedIntent = in.ID
		if x.st.Candidate != "" && x.r.Spec.Candidate == x.st.Candidate {
			// Back to the recorded step; its weights are applied again
			// (through the readiness gate) and its clock restarts.
			x.st.StepStartedAt = nil
			x.transition(HistoryResumed, v1alpha1.PhaseProgressing, actor, in.Reason, in.ID, nil)
			x.event(EventTypeNormal, ReasonResumed, fmt.Sprintf("%s resumed the rollout of %s at step %d%s", actor, x.st.Candidate, x.step()+1, because(in.Reason)))
			return
		}
		x.transition(HistoryResumed, v1alpha1.PhaseStable, actor, in.Reason, in.ID, map[string]int32{x.r.Spec.Stable: 100})
		x.event(EventTypeNormal, ReasonResumed, fmt.Sprintf("%s ended the manual split: %s serves 100%%%s", actor, x.r.Spec.Stable, because(in.Reason)))
	default:
		ignore(fmt.Sprintf("only a paused rollout or a manual split can resume (phase is %s)", x.st.Phase))
	}
}

func (x *decider) split(in *v1alpha1.Intent, actor string, ignore func(string)) {
	want := toMap(in.Weights)
	var sum int32
	for _, s := range sortedSubsets(want) {
		if !x.o.Subsets[s] {
			ignore(notAVersion(x.r, s, "add it first"))
			return
		}
		sum += want[s]
	}
	if sum != 100 {
		ignore(fmt.Sprintf("weights sum to %d, not 100", sum))
		return
	}
	if msg := x.gate(want); msg != "" {
		x.waiting, x.pending = msg, fmt.Sprintf("Split by %s waits: %s", actor, msg)
		return
	}
	x.st.ObservedIntent = in.ID
	x.applied = want // pinned: ManualSplit holds what is applied
	x.transition(HistoryManualSplit, v1alpha1.PhaseManualSplit, actor, in.Reason, in.ID, want)
	x.event(EventTypeNormal, ReasonManualSplit, fmt.Sprintf("%s pinned %s%s", actor, formatWeights(want), because(in.Reason)))
}

func (x *decider) start(actor, reason, intentID string) {
	cand := x.r.Spec.Candidate
	old := x.st.Candidate
	zero := int32(0)
	x.st.Candidate = cand
	x.st.Step = &zero
	x.st.StepStartedAt = nil
	x.st.RolloutStartedAt = &x.now
	x.st.Analysis = &v1alpha1.AnalysisStatus{}
	x.st.Shadow, x.st.Experiment = nil, nil
	if ExperimentSpec(x.r) != nil {
		x.startExperiment(actor, reason, intentID)
		return
	}
	w := x.stepWeights(steps(x.r)[0])
	msg := fmt.Sprintf("%s started the rollout of %s (first step %d%%)", actor, cand, steps(x.r)[0])
	x.st.Shadow = nil
	if sh := shadowSpec(x.r); sh != nil {
		x.st.Shadow = &v1alpha1.ShadowStatus{Subset: cand, Percent: sh.Percent}
		w = x.stepWeights(0)
		msg = fmt.Sprintf("%s started the rollout of %s in shadow (%d%% of requests copied to it, no user answered by it; then first step %d%%)",
			actor, cand, sh.Percent, steps(x.r)[0])
	}
	x.transition(HistoryStarted, v1alpha1.PhaseProgressing, actor, reason, intentID, w)
	if old != "" && old != cand && x.applied[old] > 0 {
		msg += fmt.Sprintf("; %s drops from %d%% to 0", old, x.applied[old])
	}
	x.event(EventTypeNormal, ReasonStarted, msg+because(reason))
}

func (x *decider) pause(actor, reason, intentID string) {
	x.transition(HistoryPaused, v1alpha1.PhasePaused, actor, reason, intentID, nil)
	typ := EventTypeNormal
	if actor == ActorController {
		typ = EventTypeWarning
	}
	x.event(typ, ReasonPaused, fmt.Sprintf("%s paused the rollout of %s%s", actor, x.st.Candidate, because(reason)))
}

// promote ends the rollout with the candidate serving 100%. specUpdate asks
// the reconciler to move spec.candidate into spec.stable.
func (x *decider) promote(actor, reason, intentID string, specUpdate bool) {
	c := x.st.Candidate
	x.d.Promote = specUpdate && x.r.Spec.Stable != c
	x.st.StepStartedAt = nil
	x.transition(HistoryPromoted, v1alpha1.PhasePromoted, actor, reason, intentID, map[string]int32{c: 100})
	x.event(EventTypeNormal, ReasonPromoted, fmt.Sprintf("%s promoted %s: it is stable and serves 100%%%s", actor, c, because(reason)))
	x.ended(OutcomePromoted)
}

func (x *decider) rollback(actor, reason, intentID string) {
	if x.running() {
		es := x.st.Experiment
		es.Outcome, es.DecidedAt = v1alpha1.ExperimentStopped, &x.now
		es.Reason = v1alpha1.CutText(fmt.Sprintf("stopped by %s: %s", actor, reason), 1024)
	}
	if sh := x.st.Shadow; sh != nil {
		reason = fmt.Sprintf("in shadow, no user was served by %s: %s", sh.Subset, reason)
	}
	x.st.StepStartedAt = nil
	x.transition(HistoryRolledBack, v1alpha1.PhaseRolledBack, actor, reason, intentID, map[string]int32{x.r.Spec.Stable: 100})
	typ := EventTypeNormal
	if actor == ActorController {
		typ = EventTypeWarning
	}
	x.event(typ, ReasonRolledBack, fmt.Sprintf("%s rolled back %s: %s serves 100%%%s", actor, x.st.Candidate, x.r.Spec.Stable, because(reason)))
	x.ended(OutcomeRolledBack)
}

func (x *decider) ended(outcome string) {
	x.d.Outcome = outcome
	if x.st.RolloutStartedAt != nil {
		x.d.Duration = x.now.Sub(x.st.RolloutStartedAt.Time)
	}
}

func (x *decider) transition(typ string, to v1alpha1.Phase, actor, reason, intentID string, w map[string]int32) {
	x.history(typ, x.st.Phase, to, actor, reason, intentID, w)
	x.st.Phase = to
	x.gatesOnTransition(typ, to, actor, reason)
}

func (x *decider) history(typ string, from, to v1alpha1.Phase, actor, reason, intentID string, w map[string]int32) {
	h := v1alpha1.HistoryEntry{
		Time: x.now, Type: typ, From: from, To: to,
		Actor:  v1alpha1.CutText(actor, v1alpha1.MaxActorLength),
		Reason: v1alpha1.CutText(reason, v1alpha1.MaxHistoryReason), IntentID: intentID,
	}
	if to == v1alpha1.PhaseProgressing || to == v1alpha1.PhasePaused {
		s := x.step()
		h.Step = &s
	}
	if w != nil {
		h.Weights = x.orderedWeights(w)
	}
	x.st.History = append(x.st.History, h)
	if n := len(x.st.History); n > MaxHistory {
		x.st.HistoryDropped += int64(n - MaxHistory)
		x.st.History = append([]v1alpha1.HistoryEntry(nil), x.st.History[n-MaxHistory:]...)
	}
}

func (x *decider) event(typ, reason, msg string) {
	x.d.Events = append(x.d.Events, Event{Type: typ, Reason: reason, Message: v1alpha1.CutText(msg, maxEventNote)})
}

func active(p v1alpha1.Phase) bool {
	return p == v1alpha1.PhaseProgressing || p == v1alpha1.PhasePaused || p == v1alpha1.PhaseManualSplit
}

func because(reason string) string {
	if strings.TrimSpace(reason) == "" {
		return ""
	}
	return ": " + reason
}

// stableServesAll reports whether stable has 100% both as last recorded and
// on every managed route now: a rollback is never "nothing to roll back"
// while the mesh still sends anything elsewhere (a status write that was
// lost, a route not yet adopted).
func (x *decider) stableServesAll() bool {
	stable := x.r.Spec.Stable
	if len(x.applied) > 0 && x.applied[stable] != 100 {
		return false
	}
	for _, rw := range x.o.RouteWeights {
		for s, w := range rw {
			if s != stable && w > 0 {
				return false
			}
		}
	}
	return true
}
