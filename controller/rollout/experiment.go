package rollout

import (
	"fmt"
	"math"
	"time"

	"github.com/fulcrum-ml/fulcrum/analysis/experiment"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Defaults of spec.strategy.experiment.
const (
	DefaultExperimentConfidence  = 0.99
	DefaultExperimentMinDuration = time.Hour
	DefaultExperimentMaxDuration = 14 * 24 * time.Hour
	DefaultCookieMaxAge          = 7 * 24 * time.Hour
)

// ExperimentSpec is the rollout's experiment with its defaults, or nil.
func ExperimentSpec(r *v1alpha1.ModelRollout) *v1alpha1.ExperimentStrategy {
	e := r.Spec.Strategy.Experiment
	if e == nil {
		return nil
	}
	out := *e
	if out.Confidence == nil {
		c := DefaultExperimentConfidence
		out.Confidence = &c
	}
	if out.MinDuration.Duration <= 0 {
		out.MinDuration.Duration = DefaultExperimentMinDuration
	}
	if out.MaxDuration.Duration <= 0 {
		out.MaxDuration.Duration = DefaultExperimentMaxDuration
	}
	if out.MinDuration.Duration > out.MaxDuration.Duration {
		out.MinDuration.Duration = out.MaxDuration.Duration
	}
	if out.OnWinner == "" {
		out.OnWinner = v1alpha1.WinnerKeep
	}
	if out.Stickiness.Mode == "" {
		out.Stickiness.Mode = v1alpha1.StickinessCookie
	}
	if out.Stickiness.CookieName == "" {
		out.Stickiness.CookieName = "fulcrum-exp-" + r.Name
	}
	if out.Stickiness.MaxAge.Duration <= 0 {
		out.Stickiness.MaxAge.Duration = DefaultCookieMaxAge
	}
	if out.Reward.Kind == "" {
		out.Reward.Kind = v1alpha1.RewardProportion
	}
	return &out
}

// experimentProblem says why an experiment cannot start: spec.candidate
// must be one of its arms other than the control, and the control must be
// spec.stable (the version users return to when it ends).
func experimentProblem(r *v1alpha1.ModelRollout) string {
	e := r.Spec.Strategy.Experiment
	if e == nil || r.Spec.Candidate == "" {
		return ""
	}
	if e.Arms[0].Subset != r.Spec.Stable {
		return fmt.Sprintf("spec.strategy.experiment.arms[0] is %s but spec.stable is %s: the first arm is the control, the version users go back to; list %s first",
			e.Arms[0].Subset, r.Spec.Stable, r.Spec.Stable)
	}
	for _, a := range e.Arms[1:] {
		if a.Subset == r.Spec.Candidate {
			return ""
		}
	}
	return fmt.Sprintf("spec.candidate %s is not an arm of spec.strategy.experiment: add it to arms, or start the experiment with one of its arms", r.Spec.Candidate)
}

// armWeights are the experiment's weights: each arm's share of new users.
func armWeights(e *v1alpha1.ExperimentStrategy) map[string]int32 {
	out := map[string]int32{}
	for _, a := range e.Arms {
		out[a.Subset] = a.Weight
	}
	return out
}

// running reports whether an experiment is under way (not yet decided).
func (x *decider) running() bool {
	return x.st.Experiment != nil && x.st.Experiment.Outcome == "" &&
		(x.st.Phase == v1alpha1.PhaseProgressing || x.st.Phase == v1alpha1.PhasePaused)
}

// startExperiment begins an experiment: the arms' weights go on the mesh
// once their pods are Ready, and counts start then.
func (x *decider) startExperiment(actor, reason, intentID string) {
	e := ExperimentSpec(x.r)
	x.st.Experiment = &v1alpha1.ExperimentStatus{}
	for _, a := range e.Arms {
		x.st.Experiment.Arms = append(x.st.Experiment.Arms, v1alpha1.ArmStatus{Subset: a.Subset, Weight: a.Weight})
	}
	w := armWeights(e)
	x.transition(HistoryStarted, v1alpha1.PhaseProgressing, actor, reason, intentID, w)
	x.event(EventTypeNormal, ReasonStarted, fmt.Sprintf("%s started an experiment: %s, users kept on their arm by %s; the reward is %s%s",
		actor, formatWeights(w), stickinessText(e), e.Reward.Template, because(reason)))
}

func stickinessText(e *v1alpha1.ExperimentStrategy) string {
	switch e.Stickiness.Mode {
	case v1alpha1.StickinessHeader:
		return "header " + e.Stickiness.Header
	case v1alpha1.StickinessNone:
		return "nothing (every request is split)"
	}
	return "cookie " + e.Stickiness.CookieName
}

// experiment runs a started experiment: the arms' weights, and at every
// look the reward's decision. The guardrails (spec.analysis) are judged as
// at a step, by judgeRound, which rolls back on failure.
func (x *decider) experiment() map[string]int32 {
	spec := ExperimentSpec(x.r)
	es := x.st.Experiment
	target := armWeights(spec)
	if x.stableDown != "" {
		x.waiting = x.stableDown
		return x.holdArms()
	}
	if es.StartedAt == nil {
		if msg := x.gate(target); msg != "" {
			x.waiting = msg
			return x.holdArms()
		}
		es.StartedAt, x.st.StepStartedAt = &x.now, &x.now
		x.st.Analysis = x.nextStepAnalysis()
		return target
	}
	if x.st.StepStartedAt == nil {
		// Resumed after a pause: the guardrails' rounds start again.
		x.st.StepStartedAt = &x.now
	}
	if x.o.RewardProblem != "" {
		es.Reason = v1alpha1.CutText("the reward cannot be read: "+x.o.RewardProblem, 1024)
		return target
	}
	if x.o.Rewards == nil {
		return target
	}
	age := x.now.Sub(es.StartedAt.Time)
	dec, err := experiment.Decide(experimentConfig(spec), x.o.Rewards, age >= spec.MaxDuration.Duration)
	es.LastReadAt = &x.now
	if err != nil {
		es.Reason = v1alpha1.CutText("the reward cannot be judged: "+err.Error(), 1024)
		return target
	}
	es.Arms = armStatuses(spec, dec)
	es.Reason = v1alpha1.CutText(dec.Reason, 1024)
	if dec.Outcome == experiment.Continue || (age < spec.MinDuration.Duration && dec.Outcome != experiment.Inconclusive) {
		if dec.Outcome != experiment.Continue {
			es.Reason = v1alpha1.CutText(fmt.Sprintf("%s; the decision waits for spec.strategy.experiment.minDuration (%s, %s to go)",
				dec.Reason, spec.MinDuration.Duration, (spec.MinDuration.Duration-age).Round(time.Second)), 1024)
		}
		return target
	}
	return x.conclude(spec, dec, target)
}

// conclude ends an experiment with its outcome.
func (x *decider) conclude(spec *v1alpha1.ExperimentStrategy, dec experiment.Decision, target map[string]int32) map[string]int32 {
	es := x.st.Experiment
	es.DecidedAt = &x.now
	es.Outcome = v1alpha1.ExperimentOutcome(dec.Outcome)
	es.Winner = dec.Winner
	control := spec.Arms[0].Subset
	switch {
	case dec.Outcome == experiment.Winner && spec.OnWinner == v1alpha1.WinnerPromote && dec.Winner != control:
		x.st.Candidate = dec.Winner
		x.promote(ActorController, "experiment: "+dec.Reason, "", true)
		return map[string]int32{dec.Winner: 100}
	case dec.Outcome == experiment.Winner && spec.OnWinner == v1alpha1.WinnerKeep && dec.Winner != control:
		// The split and its stickiness stay until a person acts.
		x.applied = target
		x.transition(HistoryExperimentEnded, v1alpha1.PhaseManualSplit, ActorController,
			fmt.Sprintf("experiment: %s; the split is kept until a person acts (spec.strategy.experiment.onWinner Keep)", dec.Reason), "", target)
		x.event(EventTypeNormal, ReasonExperimentEnded, fmt.Sprintf("experiment ended: %s wins: %s", dec.Winner, dec.Reason))
		return target
	}
	// No winner worth having (or the control won): everyone goes back to
	// the control, which is stable.
	x.st.StepStartedAt = nil
	x.transition(HistoryExperimentEnded, v1alpha1.PhaseRolledBack, ActorController,
		fmt.Sprintf("experiment: %s; %s serves 100%%", dec.Reason, x.r.Spec.Stable), "", map[string]int32{x.r.Spec.Stable: 100})
	x.event(EventTypeNormal, ReasonExperimentEnded, fmt.Sprintf("experiment ended %s: %s", dec.Outcome, dec.Reason))
	x.ended(OutcomeRolledBack)
	return map[string]int32{x.r.Spec.Stable: 100}
}

// holdArms keeps what is applied while the experiment waits, but never
// more than the arms: a subset that is no arm drops to 0.
func (x *decider) holdArms() map[string]int32 {
	stable := x.r.Spec.Stable
	if len(x.applied) == 0 {
		return map[string]int32{stable: 100}
	}
	arms := armWeights(ExperimentSpec(x.r))
	out := map[string]int32{}
	var sum int32
	for s, w := range x.applied {
		if _, ok := arms[s]; ok && s != stable {
			out[s] = w
			sum += w
		}
	}
	out[stable] = 100 - sum
	return out
}

func experimentConfig(spec *v1alpha1.ExperimentStrategy) experiment.Config {
	c := experiment.Config{
		Kind:      experiment.Proportion,
		MinEffect: spec.Reward.MinEffect, Alpha: 1 - *spec.Confidence,
		LowerIsBetter: spec.Reward.LowerIsBetter,
	}
	if spec.Reward.Kind == v1alpha1.RewardMean {
		c.Kind = experiment.Mean
		if spec.Reward.Min != nil && spec.Reward.Max != nil {
			c.Min, c.Max = *spec.Reward.Min, *spec.Reward.Max
		}
	}
	return c
}

func armStatuses(spec *v1alpha1.ExperimentStrategy, dec experiment.Decision) []v1alpha1.ArmStatus {
	weights := armWeights(spec)
	out := make([]v1alpha1.ArmStatus, 0, len(dec.Arms))
	for i, a := range dec.Arms {
		st := v1alpha1.ArmStatus{Subset: a.Name, Weight: weights[a.Name], Samples: a.Samples}
		if a.Samples > 0 {
			st.Value, st.Lower, st.Upper = finite(a.Estimate), finite(a.Lower), finite(a.Upper)
			if i > 0 {
				st.Lift, st.LiftLower, st.LiftUpper = finite(a.Lift), finite(a.LiftLower), finite(a.LiftUpper)
			}
		}
		out = append(out, st)
	}
	return out
}

// ExperimentWanted is the experiment whose stickiness the reconciler must
// keep on the mesh for a decided status, or nil: while it runs, and after a
// winner that is kept until a person acts.
func ExperimentWanted(r *v1alpha1.ModelRollout, st *v1alpha1.ModelRolloutStatus) *v1alpha1.ExperimentStrategy {
	spec := ExperimentSpec(r)
	es := st.Experiment
	if spec == nil || es == nil || es.StartedAt == nil {
		return nil
	}
	switch {
	case es.Outcome == "" && (st.Phase == v1alpha1.PhaseProgressing || st.Phase == v1alpha1.PhasePaused):
		return spec
	case es.Outcome == v1alpha1.ExperimentWinner && st.Phase == v1alpha1.PhaseManualSplit && keptSplit(st):
		return spec
	}
	return nil
}

// keptSplit reports whether the latest history entry is the experiment's
// end: a person's split or resume afterwards ends the kept split.
func keptSplit(st *v1alpha1.ModelRolloutStatus) bool {
	n := len(st.History)
	return n > 0 && st.History[n-1].Type == HistoryExperimentEnded
}

// finite is v, or nil when it is NaN or infinite (the API carries no such
// numbers).
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// RewardArms are the arms whose reward the reconciler must read this
// round, the control first, and since when; nil when no look is due: the
// experiment runs, its weights are on the mesh, and an interval passed
// since the last look.
func RewardArms(r *v1alpha1.ModelRollout, now time.Time) ([]string, time.Time) {
	es := r.Status.Experiment
	spec := ExperimentSpec(r)
	if spec == nil || es == nil || es.Outcome != "" || es.StartedAt == nil || r.Status.Phase != v1alpha1.PhaseProgressing {
		return nil, time.Time{}
	}
	if es.LastReadAt != nil && now.Sub(es.LastReadAt.Time) < interval(r) {
		return nil, time.Time{}
	}
	arms := make([]string, len(spec.Arms))
	for i, a := range spec.Arms {
		arms[i] = a.Subset
	}
	return arms, es.StartedAt.Time
}

// closeExperiment gives an experiment that the rollout left without an
// outcome (a person promoted, split or paused and then promoted) the
// outcome Stopped, so that whoever waits for its outcome gets one.
func (x *decider) closeExperiment() {
	es := x.st.Experiment
	if es == nil || es.Outcome != "" {
		return
	}
	switch x.st.Phase {
	case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseFailed:
		return // still under way (Failed goes back to it once fixed)
	}
	es.Outcome, es.DecidedAt = v1alpha1.ExperimentStopped, &x.now
	es.Reason = v1alpha1.CutText(fmt.Sprintf("ended before a decision: the rollout is %s", x.st.Phase), 1024)
}
