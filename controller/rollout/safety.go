package rollout

import (
	"fmt"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Invariant 1 of docs/reliability.md: traffic goes only to subsets that exist
// in the DestinationRule and have at least spec.readiness.minReadyPods Ready
// pods, or to stable. The controller enforces it on every reconcile, whatever
// the webhook let through: a subset that loses its entry or its pods has its
// weight moved to stable in the same reconcile that sees the loss.

// protect drains every non-stable subset that carries weight but may not. A
// candidate losing its footing ends its rollout (RolledBack); another pinned
// subset (a manual split) gives its weight to stable and the split holds.
// When stable itself has no Ready pods, weight is not poured onto it from a
// subset that merely lacks pods (that would fail every request instead of
// some): the weights hold and the rollout says so (x.stableDown). Weight on a
// subset missing from the DestinationRule goes to stable regardless: Istio
// cannot route to it at all.
func (x *decider) protect() {
	stable := x.r.Spec.Stable
	if n := x.o.ReadyPods[stable]; n == 0 && x.o.ReadyPods != nil {
		x.stableDown = fmt.Sprintf("stable subset %s has no Ready pods: no traffic moves onto a candidate until it has (scale it up, or promote or roll back by hand)", stable)
	}
	for _, s := range sortedSubsets(x.applied) {
		if s == stable || x.applied[s] == 0 || !x.holdsWeight(s) {
			continue
		}
		why, missing := x.unavailable(s)
		if why == "" || (x.stableDown != "" && !missing) {
			continue
		}
		x.drain(s, why)
	}
}

// holdsWeight reports whether the phase decided this round keeps subset s's
// recorded weight on the mesh. Idle phases (Stable, Promoted, RolledBack —
// including a rollback decided earlier this round) write their own weights,
// and a progressing or paused rollout carries only its candidate: for those
// there is nothing to drain, and draining would record a move twice.
func (x *decider) holdsWeight(s string) bool {
	switch x.st.Phase {
	case v1alpha1.PhaseManualSplit:
		return true
	case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused:
		if x.running() {
			_, arm := armWeights(ExperimentSpec(x.r))[s]
			return arm
		}
		return s == x.st.Candidate
	}
	return false
}

// unavailable says why subset s may not carry traffic, and whether it is
// missing from the DestinationRule altogether.
func (x *decider) unavailable(s string) (why string, missing bool) {
	if x.o.Subsets != nil && !x.o.Subsets[s] {
		return notAVersion(x.r, s, ""), true
	}
	if x.o.ReadyPods == nil {
		return "", false
	}
	if n, min := x.o.ReadyPods[s], minReady(x.r); n < min {
		return fmt.Sprintf("subset %s has %d Ready pod(s), fewer than spec.readiness.minReadyPods (%d)", s, n, min), false
	}
	return "", false
}

// drain moves subset s's weight to stable, recording why.
func (x *decider) drain(s, why string) {
	stable := x.r.Spec.Stable
	x.restored = append(x.restored, why)
	// An experiment cannot go on with an arm that cannot serve: its arms'
	// weights are the experiment, so it ends like a candidate that lost
	// its pods (otherwise every reconcile would put the arm's weight back).
	if (s == x.st.Candidate || x.running()) && active(x.st.Phase) {
		x.supersedePending(fmt.Sprintf("the rollout was rolled back because %s", why))
		x.rollback(ActorController, fmt.Sprintf("%s: its %d%% went back to %s", why, x.applied[s], stable), "")
		return
	}
	moved := x.applied[s]
	x.applied = copyMap(x.applied)
	x.applied[stable] += moved
	x.applied[s] = 0
	x.history(HistoryTrafficRestored, x.st.Phase, x.st.Phase, ActorController, fmt.Sprintf("%s: its %d%% went to %s", why, moved, stable), "", x.applied)
	x.event(EventTypeWarning, ReasonSubsetUnavailable, fmt.Sprintf("%s: moved its %d%% to %s; the weights now are %s", why, moved, stable, formatWeights(x.applied)))
}

// supersedePending records a fresh intent that a controller decision made
// moot (a promote waiting for pods when the candidate lost them), so that it
// is neither applied later nor lost.
func (x *decider) supersedePending(why string) {
	in := x.r.Spec.Intent
	if in == nil || in.ID == x.st.ObservedIntent || x.pending == "" {
		return
	}
	x.st.ObservedIntent = in.ID
	x.pending, x.waiting = "", ""
	x.history(HistoryIntentSuperseded, x.st.Phase, x.st.Phase, actorOf(in), fmt.Sprintf("%s requested by %s was not applied: %s", verb(in.Action), actorOf(in), why), in.ID, nil)
	x.event(EventTypeWarning, ReasonIntentSuperseded, fmt.Sprintf("%s by %s not applied: %s", verb(in.Action), actorOf(in), why))
}

// recordSuperseded records the intent a new one replaced before the
// controller applied it (the admin API lets a rollback win over anything
// pending), once.
func (x *decider) recordSuperseded(in *v1alpha1.Intent) {
	old := in.Supersedes
	if old == nil || old.ID == x.st.ObservedIntent {
		return
	}
	for _, h := range x.st.History {
		if h.IntentID == old.ID {
			return
		}
	}
	who := old.Actor
	if who == "" {
		who = "unknown"
	}
	x.history(HistoryIntentSuperseded, x.st.Phase, x.st.Phase, who,
		fmt.Sprintf("%s requested by %s was superseded by %s from %s before it was applied", verb(old.Action), who, verb(in.Action), actorOf(in)), old.ID, nil)
	x.event(EventTypeNormal, ReasonIntentSuperseded, fmt.Sprintf("%s by %s superseded by %s from %s", verb(old.Action), who, verb(in.Action), actorOf(in)))
}

func minReady(r *v1alpha1.ModelRollout) int32 {
	if n := r.Spec.Readiness.MinReadyPods; n > 0 {
		return n
	}
	return 1
}

func actorOf(in *v1alpha1.Intent) string {
	if in.Actor == "" {
		return "unknown"
	}
	return in.Actor
}
