package rollout

import (
	"fmt"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// shadowSpec is the rollout's shadow stage with its defaults, or nil.
func shadowSpec(r *v1alpha1.ModelRollout) *v1alpha1.ShadowStage {
	c := r.Spec.Strategy.Canary
	if c == nil || c.Shadow == nil {
		return nil
	}
	sh := *c.Shadow
	if sh.Percent <= 0 || sh.Percent > 100 {
		sh.Percent = 100
	}
	return &sh
}

// shadowMinDuration is the least time in shadow: spec.strategy.canary.shadow
// .minDuration, else the step rule (minStep).
func shadowMinDuration(r *v1alpha1.ModelRollout) time.Duration {
	if sh := shadowSpec(r); sh != nil && sh.MinDuration.Duration > 0 {
		return sh.MinDuration.Duration
	}
	return minStep(r)
}

// shadow runs the shadow stage: every user stays on stable while the
// reconciler mirrors status.shadow's share of requests to the candidate.
// The mirror is first written once the candidate has its Ready pods (and
// the capacity for the copies); the stage ends when it has lasted its
// minimum and the latest round passed (or, without metrics, on time), and
// the first step starts in the same reconcile. A failing round rolls back
// through judgeRound, which ends the stage with no user served.
func (x *decider) shadow(mayAdvance bool) map[string]int32 {
	target := x.stepWeights(0)
	sh := x.st.Shadow
	if x.stableDown != "" {
		x.waiting = x.stableDown
		return x.hold()
	}
	if sh.StartedAt == nil {
		if msg := x.gate(map[string]int32{sh.Subset: sh.Percent}); msg != "" {
			x.waiting = "shadow waits: " + msg
			return target
		}
		if msg := x.holdAt(v1alpha1.GatePoint{At: v1alpha1.GatePreStart}); msg != "" || x.st.Phase != v1alpha1.PhaseProgressing {
			if x.st.Phase != v1alpha1.PhaseProgressing {
				return x.run()
			}
			return target
		}
		sh.StartedAt = &x.now
		x.st.StepStartedAt = &x.now
		x.st.Analysis = x.nextStepAnalysis()
		return target
	}
	if !mayAdvance || !x.shadowDone() {
		return target
	}
	why := fmt.Sprintf("shadow passed: %s answered %d%% of requests as copies for %s with no user served by it",
		sh.Subset, sh.Percent, x.now.Sub(sh.StartedAt.Time).Round(time.Second))
	if hasMetrics(x.r) {
		why += "; the analysis passed"
	}
	x.st.Shadow = nil
	x.st.StepStartedAt = nil
	first := x.stepWeights(steps(x.r)[0])
	x.history(HistoryShadowPassed, v1alpha1.PhaseProgressing, v1alpha1.PhaseProgressing, ActorController, why, "", first)
	x.event(EventTypeNormal, ReasonShadowPassed, why)
	return x.progress(false)
}

// shadowDone reports whether the shadow stage may end: it lasted its
// minimum, and the latest round, taken since the mirror was written, passed.
func (x *decider) shadowDone() bool {
	sh := x.st.Shadow
	if x.now.Sub(sh.StartedAt.Time) < shadowMinDuration(x.r) {
		return false
	}
	if !hasMetrics(x.r) {
		return true
	}
	a := x.st.Analysis
	if a == nil || len(a.RecentRounds) == 0 {
		return false
	}
	last := a.RecentRounds[len(a.RecentRounds)-1]
	return last.Verdict == v1alpha1.VerdictPass && !last.Time.Before(sh.StartedAt)
}

// MirrorWanted is the mirror the reconciler must keep on the managed routes
// for a decided status: status.shadow's, once it was first written; nil
// when there is none.
func MirrorWanted(st *v1alpha1.ModelRolloutStatus) *v1alpha1.ShadowStatus {
	if st.Shadow == nil || st.Shadow.StartedAt == nil {
		return nil
	}
	if st.Phase != v1alpha1.PhaseProgressing && st.Phase != v1alpha1.PhasePaused {
		return nil
	}
	return st.Shadow
}
