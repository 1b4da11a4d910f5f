package rollout

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// spec.scaling in the state machine. Scaling is level-triggered, like the
// weights: status.scaling.changes says what each scaled field should read,
// every reconcile compares that with what was observed and asks for the
// writes that are missing (Decision.Scale). History is written when a
// decision is made (a raise, a scale-down, a restore), never for a retry, so
// a write that failed or a stale cache repeats the write, not the entry.

// retryScaling is how soon a rollout looks again while a restore has not
// been seen to land (Deployments and HPAs are not watched).
const retryScaling = 5 * time.Second

func (x *decider) scaling() *v1alpha1.ScalingStatus {
	if x.st.Scaling == nil {
		x.st.Scaling = &v1alpha1.ScalingStatus{}
	}
	return x.st.Scaling
}

// change is the recorded change of field t, or nil.
func (x *decider) change(t ScaleTarget) *v1alpha1.ScaleChange {
	if x.st.Scaling == nil {
		return nil
	}
	for i := range x.st.Scaling.Changes {
		if c := &x.st.Scaling.Changes[i]; targetOf(c) == t {
			return c
		}
	}
	return nil
}

func targetOf(c *v1alpha1.ScaleChange) ScaleTarget {
	return ScaleTarget{Kind: c.Kind, Name: c.Name, Field: c.Field}
}

// raiseTarget is the field that raises subset s's replicas: its HPA's
// minReplicas (with the HPA's maxReplicas, which is never raised), else its
// Deployment's replicas.
func (x *decider) raiseTarget(s string) (t ScaleTarget, max int32, hasMax bool, problem string) {
	wl, ok := x.o.Workloads[s]
	switch {
	case x.o.ScaleProblem != "":
		return t, 0, false, x.o.ScaleProblem
	case !ok:
		return t, 0, false, fmt.Sprintf("the workload of %s was not read", s)
	case wl.Problem != "":
		return t, 0, false, wl.Problem
	case wl.HPA != "":
		t = ScaleTarget{Kind: v1alpha1.KindHPA, Name: wl.HPA, Field: v1alpha1.FieldMinReplicas}
		max, hasMax = x.o.ScaleValues[ScaleTarget{Kind: v1alpha1.KindHPA, Name: wl.HPA, Field: v1alpha1.FieldMaxReplicas}]
		return t, max, hasMax, ""
	}
	return ScaleTarget{Kind: v1alpha1.KindDeployment, Name: wl.Deployment, Field: v1alpha1.FieldReplicas}, 0, false, ""
}

// scaleAhead raises the candidate's replicas to need when capacity found
// that weight w (share requests/s, per each pod) needs more Ready pods than it has
// (spec.scaling.scaleAhead). The gate keeps waiting for the pods; the note
// returned extends its message with what was done, or why nothing could be.
func (x *decider) scaleAhead(s string, w int32, share, per float64, need, ready int32) string {
	sc := x.r.Spec.Scaling
	if sc == nil || !sc.ScaleAhead || s != x.st.Candidate || !active(x.st.Phase) {
		return ""
	}
	t, max, hasMax, problem := x.raiseTarget(s)
	if problem != "" {
		return "; cannot scale ahead: " + problem
	}
	cur, ok := x.o.ScaleValues[t]
	if !ok {
		return fmt.Sprintf("; cannot scale ahead: %s was not found", show(t))
	}
	to, clamp := need, ""
	if hasMax && to > max {
		to = max
		clamp = fmt.Sprintf("; HorizontalPodAutoscaler %s allows at most %d replicas (spec.maxReplicas), fewer than the %d needed: raise its maxReplicas (Fulcrum never does)", t.Name, max, need)
	}
	c := x.change(t)
	if c != nil && !c.Restoring && c.Set >= to {
		return scaledAheadNote(c) + clamp // already decided; settleChanges retries the write
	}
	if cur >= to {
		return clamp // enough replicas asked for: their pods are not Ready yet
	}
	reason := fmt.Sprintf("%s needs %d Ready pods of %s at %g requests/s each (%.0f of %.0f requests/s); it had %d: raised %s %d→%d",
		x.scaleOccasion(s, w), need, s, per, share, *x.o.TrafficRate, ready, show(t), cur, to)
	if c == nil {
		x.scaling().Changes = append(x.scaling().Changes, v1alpha1.ScaleChange{
			Subset: s, Kind: t.Kind, Name: t.Name, Field: t.Field, Original: cur})
		c = &x.st.Scaling.Changes[len(x.st.Scaling.Changes)-1]
	}
	c.Set, c.At, c.Restoring = to, x.now, false
	c.Reason = v1alpha1.CutText(reason, v1alpha1.MaxHistoryReason)
	x.scaleHistory(HistoryScaledUp, reason+clamp)
	x.event(EventTypeNormal, ReasonScaledUp, reason+clamp)
	x.act(ScaleAction{ScaleTarget: t, Subset: s, From: cur, To: to, Reason: reason})
	return scaledAheadNote(c) + clamp
}

// scaledAheadNote is the same on every reconcile while the change holds, so
// that the status message does not change (and get written) each time.
func scaledAheadNote(c *v1alpha1.ScaleChange) string {
	return fmt.Sprintf("; scaled ahead: %s %d→%d", show(targetOf(c)), c.Original, c.Set)
}

// scaleOccasion names what needs the capacity: a step, the promotion, the
// shadow stage's copies, or a weight asked for by hand.
func (x *decider) scaleOccasion(s string, w int32) string {
	if sh := x.st.Shadow; sh != nil && sh.StartedAt == nil && x.st.Phase == v1alpha1.PhaseProgressing {
		return fmt.Sprintf("the shadow stage (%d%% of requests copied)", sh.Percent)
	}
	if w == 100 {
		return "promotion (100%)"
	}
	steps := steps(x.r)
	for j := x.step(); j < int32(len(steps)); j++ {
		if steps[j] == w {
			return fmt.Sprintf("step %d (%d%%)", j+1, w)
		}
	}
	return fmt.Sprintf("%s at %d%%", s, w)
}

// scaleHistory records a scale decision. It carries no step: the step it
// prepares is not reached yet (the dashboard's timeline reads steps from
// history), and no weights: it moved no traffic.
func (x *decider) scaleHistory(typ, reason string) {
	x.history(typ, x.st.Phase, x.st.Phase, ActorController, reason, "", nil)
	x.st.History[len(x.st.History)-1].Step = nil
}

// act adds a write, replacing an earlier one of the same field this round.
func (x *decider) act(a ScaleAction) {
	for i := range x.d.Scale {
		if x.d.Scale[i].ScaleTarget == a.ScaleTarget {
			x.d.Scale[i] = a
			return
		}
	}
	x.d.Scale = append(x.d.Scale, a)
}

// settleScaling runs once the weights are decided: it schedules the old
// version's scale-down on promotion, runs or cancels it, and settles every
// recorded change (hold, restore, forget).
func (x *decider) settleScaling(desired map[string]int32) {
	if x.o.Problem != "" || (x.o.ScaleValues == nil && x.o.ScaleProblem == "") {
		// Failed writes nothing, and workloads that were not read say
		// nothing about what to put back.
		return
	}
	if !x.scheduleScaleDown() {
		// Not in the round that planned it: spec.stable still names the
		// old version until the promotion's spec update lands.
		x.runScaleDown(desired)
	}
	x.settleChanges(desired)
	if sc := x.st.Scaling; sc != nil && len(sc.Changes) == 0 && sc.ScaleDown == nil {
		x.st.Scaling = nil
	}
}

// scheduleScaleDown plans the scale-down of the version a promotion
// replaced (spec.scaling.scaleDownAfter).
func (x *decider) scheduleScaleDown() bool {
	sc := x.r.Spec.Scaling
	old := x.r.Spec.Stable
	if x.d.Outcome != OutcomePromoted || sc == nil || sc.ScaleDownAfter == nil || sc.ScaleDownAfter.Duration <= 0 || old == x.st.Candidate {
		return false
	}
	x.scaling().ScaleDown = &v1alpha1.PendingScaleDown{
		Subset: old, At: metav1.NewTime(x.now.Add(sc.ScaleDownAfter.Duration)), Replicas: sc.ScaleDownTo,
	}
	return true
}

// runScaleDown scales the old version down once its time came, unless it
// is needed again: a new rollout started, it is stable again, or it has (or
// is asked to get) traffic.
func (x *decider) runScaleDown(desired map[string]int32) {
	if x.st.Scaling == nil || x.st.Scaling.ScaleDown == nil {
		return
	}
	sd := x.st.Scaling.ScaleDown
	s := sd.Subset
	sc := x.r.Spec.Scaling
	cancel := ""
	switch {
	case active(x.st.Phase):
		cancel = fmt.Sprintf("a rollout of %s started", x.st.Candidate)
	case s == x.r.Spec.Stable:
		cancel = fmt.Sprintf("%s is spec.stable again", s)
	case desired[s] > 0 || slices.Contains(DesiredSubsets(x.r), s):
		cancel = fmt.Sprintf("%s is asked to serve traffic again", s)
	case sc == nil || sc.ScaleDownAfter == nil:
		cancel = "spec.scaling.scaleDownAfter was removed"
	}
	if cancel == "" && x.now.Before(&sd.At) {
		return
	}
	if cancel == "" {
		if wl, ok := x.o.Workloads[s]; x.o.ScaleProblem != "" || !ok || wl.Problem != "" {
			why := x.o.ScaleProblem
			if why == "" {
				why = wl.Problem
			}
			if why == "" {
				why = fmt.Sprintf("the workload of %s was not read", s)
			}
			cancel = "its workload cannot be scaled: " + why
		}
	}
	x.st.Scaling.ScaleDown = nil
	if cancel != "" {
		msg := fmt.Sprintf("scale-down of %s planned for %s cancelled: %s", s, sd.At.UTC().Format(time.RFC3339), cancel)
		x.scaleHistory(HistoryScaleDownCancelled, msg)
		x.event(EventTypeNormal, ReasonScaleDownCancelled, msg)
		return
	}
	var done []string
	for _, a := range x.scaleDownWrites(s, sd.Replicas) {
		done = append(done, fmt.Sprintf("%s %d→%d", show(a.ScaleTarget), a.From, a.To))
		a.Reason = fmt.Sprintf("%s scaled down %s after %s was promoted (spec.scaling.scaleDownAfter)", s, sc.ScaleDownAfter.Duration, x.st.Candidate)
		c := x.change(a.ScaleTarget)
		if c == nil {
			x.scaling().Changes = append(x.scaling().Changes, v1alpha1.ScaleChange{
				Subset: s, Kind: a.Kind, Name: a.Name, Field: a.Field, Original: a.From})
			c = &x.st.Scaling.Changes[len(x.st.Scaling.Changes)-1]
		}
		c.Set, c.At, c.Restoring, c.Reason = a.To, x.now, false, a.Reason
		x.act(a)
	}
	if len(done) == 0 {
		return // already there: nothing to record
	}
	msg := fmt.Sprintf("%s scaled down %s after %s was promoted (spec.scaling.scaleDownAfter): %s",
		s, sc.ScaleDownAfter.Duration, x.st.Candidate, strings.Join(done, ", "))
	x.scaleHistory(HistoryScaledDown, msg)
	x.event(EventTypeNormal, ReasonScaledDown, msg)
}

// scaleDownWrites are the writes that leave subset s with n replicas.
// With an HPA, 0 goes on the Deployment (an HPA leaves a Deployment at 0
// alone, and cannot have minReplicas 0); more than 0 lowers the HPA's
// bounds to n.
func (x *decider) scaleDownWrites(s string, n int32) []ScaleAction {
	wl := x.o.Workloads[s]
	targets := []ScaleTarget{{Kind: v1alpha1.KindDeployment, Name: wl.Deployment, Field: v1alpha1.FieldReplicas}}
	if wl.HPA != "" && n > 0 {
		targets = []ScaleTarget{
			{Kind: v1alpha1.KindHPA, Name: wl.HPA, Field: v1alpha1.FieldMinReplicas},
			{Kind: v1alpha1.KindHPA, Name: wl.HPA, Field: v1alpha1.FieldMaxReplicas},
		}
	}
	var out []ScaleAction
	for _, t := range targets {
		if cur, ok := x.o.ScaleValues[t]; ok && cur > n {
			out = append(out, ScaleAction{ScaleTarget: t, Subset: s, From: cur, To: n})
		}
	}
	return out
}

// settleChanges decides, for every recorded change, whether it still holds,
// must be put back, or is done with, and asks for the writes that are
// missing.
func (x *decider) settleChanges(desired map[string]int32) {
	if x.st.Scaling == nil || x.o.ScaleProblem != "" {
		return // nothing known about the workloads: change nothing
	}
	kept := x.st.Scaling.Changes[:0:0]
	for _, c := range x.st.Scaling.Changes {
		t := targetOf(&c)
		if !c.Restoring {
			why, keep := x.holds(c, desired)
			if keep && why == "" {
				if cur, ok := x.o.ScaleValues[t]; ok && cur != c.Set && (c.Set < c.Original || cur < c.Set) {
					x.act(ScaleAction{ScaleTarget: t, Subset: c.Subset, From: cur, To: c.Set, Reason: c.Reason})
				}
				kept = append(kept, c)
				continue
			}
			if !keep {
				continue // the promoted version keeps what it was given
			}
			c.Restoring = true
			msg := fmt.Sprintf("%s: put back %s %d→%d, its value before Fulcrum changed it", why, show(t), c.Set, c.Original)
			x.scaleHistory(HistoryScaleRestored, msg)
			x.event(EventTypeNormal, ReasonScaleRestored, msg)
		}
		cur, ok := x.o.ScaleValues[t]
		switch {
		case !ok:
			x.event(EventTypeWarning, ReasonScaleFailed, fmt.Sprintf("%s is gone: its value %d cannot be put back", show(t), c.Original))
		case cur == c.Original:
			// Restored: Fulcrum no longer answers for it.
		default:
			x.act(ScaleAction{ScaleTarget: t, Subset: c.Subset, From: cur, To: c.Original, Reason: "restore " + show(t)})
			kept = append(kept, c)
		}
	}
	x.st.Scaling.Changes = kept
}

// holds says what happens to a change not being restored: keep it as it is
// (why ""), restore it (why says why), or forget it (keep false).
func (x *decider) holds(c v1alpha1.ScaleChange, desired map[string]int32) (why string, keep bool) {
	s := c.Subset
	if c.Set < c.Original { // a scale-down
		switch {
		case s == x.r.Spec.Stable:
			return fmt.Sprintf("%s is spec.stable again", s), true
		case s == x.st.Candidate && active(x.st.Phase):
			return fmt.Sprintf("%s is the candidate of a new rollout", s), true
		case desired[s] > 0 || slices.Contains(DesiredSubsets(x.r), s):
			return fmt.Sprintf("%s is asked to serve traffic again", s), true
		}
		return "", true
	}
	switch {
	case s == x.st.Candidate && (active(x.st.Phase) || x.st.Phase == v1alpha1.PhaseFailed):
		// Failed writes nothing: the candidate keeps its weight, so it
		// keeps its replicas until the rollout goes on or ends.
		return "", true
	case s == x.st.Candidate && x.st.Phase == v1alpha1.PhasePromoted:
		// The promoted version serves everything with the replicas it
		// was raised to; taking them away would undo the capacity check.
		return "", false
	case s == x.st.Candidate && x.st.Phase == v1alpha1.PhaseRolledBack:
		return fmt.Sprintf("%s was rolled back", s), true
	}
	return fmt.Sprintf("the rollout of %s ended", s), true
}

// scalingRequeue is when scaling needs another look: at a pending
// scale-down's time, or soon while a restore has not been seen to land.
func (x *decider) scalingRequeue() time.Duration {
	sc := x.st.Scaling
	if sc == nil {
		return 0
	}
	var d time.Duration
	for _, c := range sc.Changes {
		if c.Restoring {
			d = retryScaling
		}
	}
	if len(x.d.Scale) > 0 {
		d = retryScaling
	}
	if sd := sc.ScaleDown; sd != nil {
		if until := sd.At.Sub(x.now.Time); until > 0 && (d == 0 || until < d) {
			d = until
		} else if until <= 0 {
			d = time.Second
		}
	}
	return d
}

// scalingMessage adds what scaling waits for to the status message.
func (x *decider) scalingMessage() string {
	sc := x.st.Scaling
	var parts []string
	if x.o.ScaleProblem != "" && (sc != nil || x.r.Spec.Scaling != nil) {
		parts = append(parts, "scaling: "+x.o.ScaleProblem)
	}
	if sc == nil {
		return strings.Join(parts, "; ")
	}
	for _, c := range sc.Changes {
		if c.Restoring {
			parts = append(parts, fmt.Sprintf("putting back %s to %d", show(targetOf(&c)), c.Original))
		}
	}
	if sd := sc.ScaleDown; sd != nil {
		parts = append(parts, fmt.Sprintf("%s scales down to %d replicas at %s (spec.scaling.scaleDownAfter)", sd.Subset, sd.Replicas, sd.At.UTC().Format(time.RFC3339)))
	}
	return strings.Join(parts, "; ")
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// show names a field for people: "HPA fraud-v2 minReplicas".
func show(t ScaleTarget) string {
	kind := t.Kind
	if kind == v1alpha1.KindHPA {
		kind = "HPA"
	}
	return fmt.Sprintf("%s %s %s", kind, t.Name, strings.TrimPrefix(t.Field, "spec."))
}
