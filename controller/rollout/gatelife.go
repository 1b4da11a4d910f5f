package rollout

import (
	"fmt"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// How gates follow the rollout's transitions, run in the background after
// its end, and take a person's approval.

// maxBackgroundGates bounds status.gates.background (the CRD's limit).
const maxBackgroundGates = 16

// gatesOnTransition keeps status.gates in step with a transition to phase
// to: a new rollout clears every point; leaving Progressing ends the
// pending run (a person's action, or the controller's decision, always
// wins over a gate); a promotion or a rollback starts its gates in the
// background.
func (x *decider) gatesOnTransition(typ string, to v1alpha1.Phase, actor, reason string) {
	if x.st.Gates == nil && len(x.r.Spec.Gates) == 0 {
		return
	}
	switch {
	case typ == HistoryStarted:
		x.cancelPending(actor, "a new rollout started")
		if gs := x.st.Gates; gs != nil {
			gs.Cleared, gs.Point, gs.Passed = nil, nil, nil
		}
	case to != v1alpha1.PhaseProgressing:
		x.cancelPending(actor, fmt.Sprintf("the rollout was %s by %s", pastOf(typ), orController(actor)))
	}
	switch typ {
	case HistoryPromoted:
		x.endRolloutGates()
		x.startBackground(v1alpha1.GatePostPromote)
	case HistoryRolledBack:
		x.endRolloutGates()
		x.startBackground(v1alpha1.GateOnRollback)
	}
}

// endRolloutGates forgets the points of a rollout that ended.
func (x *decider) endRolloutGates() {
	if gs := x.st.Gates; gs != nil {
		gs.Cleared, gs.Point, gs.Passed = nil, nil, nil
	}
}

// startBackground starts the gates at hook h, which hold nothing: their
// results come later, in history and Events.
func (x *decider) startBackground(h v1alpha1.GateHook) {
	specs := GatesAt(x.r, h)
	if len(specs) == 0 {
		return
	}
	gs := x.gatesStatus()
	for i := range specs {
		run := x.newRun(&specs[i], v1alpha1.GatePoint{At: h})
		gs.Background = append(gs.Background, *run)
		x.event(EventTypeNormal, ReasonGateStarted, gateLabel(run)+" started")
	}
	for len(gs.Background) > maxBackgroundGates {
		old := gs.Background[0]
		gs.Background = gs.Background[1:]
		x.finishRun(old, v1alpha1.GateCancelled, "more gates started after it than status keeps", "")
	}
}

// runBackground judges the gates running after a promotion or a rollback.
// A failure is reported (history, a Warning Event) and changes nothing
// else.
func (x *decider) runBackground() {
	gs := x.st.Gates
	if gs == nil || len(gs.Background) == 0 {
		return
	}
	var kept []v1alpha1.GateRun
	for _, run := range gs.Background {
		g := FindGate(x.r, run.Name)
		if g == nil {
			x.finishRun(run, v1alpha1.GateCancelled, "the gate was removed from spec.gates", "")
			continue
		}
		outcome, msg := x.judgeRun(g, &run)
		if outcome == "" {
			kept = append(kept, run)
			continue
		}
		x.finishRun(run, outcome, msg, "")
	}
	gs.Background = kept
}

// approve passes the pending approval gate for intent in. The phase/action
// table has already checked that one waits; the intent may name it.
func (x *decider) approve(in *v1alpha1.Intent, actor string, ignore func(string)) {
	gs := x.st.Gates
	run := *gs.Pending
	if in.Gate != "" && in.Gate != run.Name {
		ignore(fmt.Sprintf("gate %s is not waiting for approval; gate %s is", in.Gate, run.Name))
		return
	}
	x.st.ObservedIntent = in.ID
	gs.Pending = nil
	gs.Passed = append(gs.Passed, run.Name)
	x.finishRun(run, v1alpha1.GateApproved, in.Reason, actor)
	why := fmt.Sprintf("approved %s", gateLabel(&run))
	x.history(HistoryApproved, x.st.Phase, x.st.Phase, actor, why+because(in.Reason), in.ID, nil)
	x.event(EventTypeNormal, ReasonApproved, fmt.Sprintf("%s %s%s", actor, why, because(in.Reason)))
}

// gatesRequeue is when running gates need another look: soon while an HTTP
// or Job gate runs (its result is polled), at the deadline of an approval.
func (x *decider) gatesRequeue() time.Duration {
	gs := x.st.Gates
	if gs == nil {
		return 0
	}
	var next time.Duration
	look := func(run *v1alpha1.GateRun) {
		d := gateRecheck
		if run.Type == v1alpha1.GateTypeApproval {
			if run.Deadline == nil {
				return // an approval is an intent: its write wakes the rollout
			}
			d = max(run.Deadline.Sub(x.now.Time), time.Second)
		}
		next = minPositive(next, d)
	}
	if gs.Pending != nil && x.st.Phase == v1alpha1.PhaseProgressing {
		look(gs.Pending)
	}
	for i := range gs.Background {
		look(&gs.Background[i])
	}
	return next
}

// settleGates drops an empty status.gates, so a rollout without gates
// never carries one.
func (x *decider) settleGates() {
	x.runBackground()
	gs := x.st.Gates
	if gs != nil && gs.Cleared == nil && gs.Point == nil && gs.Pending == nil && len(gs.Passed) == 0 &&
		len(gs.Background) == 0 && len(gs.Results) == 0 {
		x.st.Gates = nil
	}
}

// pastOf says what a transition did, for the message of a run it ended.
func pastOf(typ string) string {
	switch typ {
	case HistoryRolledBack:
		return "rolled back"
	case HistoryPromoted:
		return "promoted"
	case HistoryPaused:
		return "paused"
	case HistoryManualSplit:
		return "split by hand"
	}
	return "moved to another phase (" + typ + ")"
}

func orController(actor string) string {
	if actor == "" {
		return ActorController
	}
	return actor
}
