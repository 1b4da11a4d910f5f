package v1alpha1

import (
	"fmt"
	"slices"
	"strings"
)

// The phase/action table: which action a person or pipeline may ask of a
// rollout in which state. The admin API uses it to answer a request (409
// with the reason), and the controller to apply or ignore the intent, so the
// two can never disagree about what is allowed.

// ActionState is what the table needs to know about a rollout.
type ActionState struct {
	// Phase of the rollout; empty counts as Stable.
	Phase Phase
	// StableServesAll is true when the stable subset has 100% on the mesh
	// (as last written by the controller).
	StableServesAll bool
	// Candidate is the candidate in progress or last rolled out
	// (spec.candidate when set, else empty).
	Candidate string
	// PendingApproval names the approval gate waiting for a person, if
	// one is (see PendingApproval).
	PendingApproval string
}

// StateOf reads the table's input from a rollout.
func StateOf(mr *ModelRollout) ActionState {
	s := ActionState{Phase: mr.Status.Phase, Candidate: mr.Spec.Candidate, StableServesAll: len(mr.Status.Weights) == 0,
		PendingApproval: PendingApproval(&mr.Status)}
	if s.Phase == "" {
		s.Phase = PhaseStable
	}
	for _, w := range mr.Status.Weights {
		if w.Subset == mr.Spec.Stable && w.Weight == 100 {
			s.StableServesAll = true
		}
	}
	return s
}

// actionPhases lists the phases in which each action may be asked for.
// Rollback is special: it is allowed whenever there is something to roll
// back (see ActionAllowed).
var actionPhases = map[IntentAction][]Phase{
	IntentStart:   {PhaseStable, PhasePromoted, PhaseRolledBack, PhaseManualSplit, PhaseFailed},
	IntentSplit:   {PhaseStable, PhaseProgressing, PhasePaused, PhaseManualSplit, PhasePromoted, PhaseRolledBack},
	IntentPause:   {PhaseProgressing},
	IntentResume:  {PhasePaused, PhaseManualSplit},
	IntentPromote: {PhaseProgressing, PhasePaused, PhaseManualSplit},
	IntentApprove: {PhaseProgressing},
}

// PendingApproval is the name of the approval gate that holds a
// progressing rollout until a person approves, or "".
func PendingApproval(st *ModelRolloutStatus) string {
	g := st.Gates
	if st.Phase != PhaseProgressing || g == nil || g.Pending == nil || g.Pending.State != GateWaitingForApproval {
		return ""
	}
	return g.Pending.Name
}

// PhasesAllowing lists the phases in which action may be asked for; for
// Rollback, the phases where it always is.
func PhasesAllowing(a IntentAction) []Phase {
	if a == IntentRollback {
		return []Phase{PhaseProgressing, PhasePaused, PhaseManualSplit}
	}
	return slices.Clone(actionPhases[a])
}

// ActionAllowed returns "" when action may be applied to a rollout in state
// s, or why not, phrased with what to do instead.
func ActionAllowed(a IntentAction, s ActionState) string {
	if s.Phase == "" {
		s.Phase = PhaseStable
	}
	switch a {
	case IntentRollback:
		// Always accepted while anything but stable carries traffic: a
		// rollback is the one action that must never be refused.
		if active(s.Phase) || !s.StableServesAll {
			return ""
		}
		return fmt.Sprintf("nothing to roll back: the stable version already serves 100%% (phase %s)", s.Phase)
	case IntentPromote:
		if s.Candidate == "" && slices.Contains(actionPhases[a], s.Phase) {
			return "no candidate to promote: start a rollout first"
		}
	case IntentApprove:
		if s.Phase == PhaseProgressing && s.PendingApproval == "" {
			return "nothing to approve: no approval gate is waiting (status.gates.pending says what the rollout waits for)"
		}
	}
	phases, known := actionPhases[a]
	if !known {
		return fmt.Sprintf("unknown action %q: use Start, Split, Promote, Rollback, Pause, Resume or Approve", a)
	}
	if slices.Contains(phases, s.Phase) {
		return ""
	}
	names := make([]string, len(phases))
	for i, p := range phases {
		names[i] = string(p)
	}
	hint := ""
	switch a {
	case IntentStart:
		hint = ": promote or roll back the current rollout first"
		if s.Candidate != "" {
			hint = fmt.Sprintf(": candidate %q is still rolling out; promote or roll it back first", s.Candidate)
		}
	case IntentPause:
		hint = ": only a progressing rollout can pause"
	case IntentResume:
		hint = ": only a paused rollout or a manual split can resume"
	case IntentPromote:
		hint = ": start a rollout first"
	case IntentSplit:
		hint = ": fix the references the Ready condition names first"
	case IntentApprove:
		hint = ": approval gates wait only while the rollout progresses"
	}
	list := strings.Join(names, ", ")
	if n := len(names); n > 1 {
		list = strings.Join(names[:n-1], ", ") + " or " + names[n-1]
	}
	return fmt.Sprintf("%s is allowed only while the rollout is %s; it is %s%s",
		strings.ToLower(string(a)), list, s.Phase, hint)
}

// SupersedesPending reports whether a new request for action replaces an
// intent the controller has not applied yet, instead of waiting for it.
// Only a rollback does: it must never wait behind a promotion held for pods.
func SupersedesPending(a IntentAction) bool { return a == IntentRollback }

func active(p Phase) bool {
	return p == PhaseProgressing || p == PhasePaused || p == PhaseManualSplit
}
