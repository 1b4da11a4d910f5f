package rollout

import (
	"fmt"
	"math"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Defaults of spec.readiness.warmup.
const (
	DefaultWarmupWindow      = time.Minute
	DefaultWarmupMinRequests = 50
	DefaultWarmupTimeout     = 10 * time.Minute
	// warmupRecheck is how often a held gate reads the candidate's latency
	// again: warmth arrives with traffic, not with a watch event.
	warmupRecheck = 5 * time.Second
)

// Warmth is the candidate's latency as its sidecar reports it over the
// warm-up window, and what the warm-up sender did.
type Warmth struct {
	// P99 is the p99 latency in milliseconds; NaN when no request was
	// answered in the window.
	P99 float64
	// Requests answered in the window.
	Requests float64
	// Sent and Failed count the warm-up requests since the gate began
	// holding (0 without spec.readiness.warmup.requests).
	Sent, Failed int64
	// Problem says why the latency could not be read; the gate then holds.
	Problem string
}

// WarmupSpec is the rollout's warm-up gate with its defaults, or nil.
func WarmupSpec(r *v1alpha1.ModelRollout) *v1alpha1.WarmupGate {
	g := r.Spec.Readiness.Warmup
	if g == nil {
		return nil
	}
	out := *g
	if out.Window.Duration <= 0 {
		out.Window.Duration = DefaultWarmupWindow
	}
	if out.MinRequests <= 0 {
		out.MinRequests = DefaultWarmupMinRequests
	}
	if out.Timeout.Duration <= 0 {
		out.Timeout.Duration = DefaultWarmupTimeout
	}
	return &out
}

// WarmupSubset is the subset whose warmth the reconciler must read this
// round, or "" when no warm-up gate can hold: the gate is configured, a
// rollout runs or is about to start, and a weight the gate checks is still
// ahead (without eachStep, only the first).
func WarmupSubset(r *v1alpha1.ModelRollout) string {
	if r.Spec.Readiness.Warmup == nil {
		return ""
	}
	if r.Status.Phase == v1alpha1.PhaseProgressing && r.Status.Candidate != "" {
		if r.Status.CandidateWeight > 0 && !r.Spec.Readiness.Warmup.EachStep {
			return "" // the gate held the first weight only: no query per reconcile
		}
		return r.Status.Candidate
	}
	return r.Spec.Candidate
}

// WarmupSending is the gate the warm-up sender must serve for a decided
// status: the candidate being held, when the spec asks for warm-up requests;
// nil when nothing must be sent.
func WarmupSending(r *v1alpha1.ModelRollout, st *v1alpha1.ModelRolloutStatus) *v1alpha1.WarmupStatus {
	if r.Spec.Readiness.Warmup == nil || r.Spec.Readiness.Warmup.Requests == nil {
		return nil
	}
	if st.Warmup == nil || st.Phase != v1alpha1.PhaseProgressing {
		return nil
	}
	return st.Warmup
}

// warm returns why the candidate cannot take weight w yet: the warm-up gate
// holds it until its latency meets spec.readiness.warmup. The gate applies
// to the candidate's first user-facing weight and, with eachStep, to every
// increase. Held past the timeout, the rollout rolls back; the caller sees
// the phase change.
func (x *decider) warm(w int32) string {
	g := WarmupSpec(x.r)
	s := x.st.Candidate
	cur := x.currentWeight(s)
	if g == nil || w <= cur || (cur > 0 && !g.EachStep) {
		return ""
	}
	ws := x.st.Warmup
	if ws == nil || ws.Subset != s || ws.Weight != w {
		ws = &v1alpha1.WarmupStatus{Subset: s, Weight: w, Since: x.now}
	}
	x.st.Warmup, x.warmHeld = ws, true
	msg, warm := x.warmReading(ws, g)
	if warm {
		x.st.Warmup, x.warmHeld = nil, false
		x.history(HistoryWarm, x.st.Phase, x.st.Phase, ActorController, msg, "", nil)
		x.event(EventTypeNormal, ReasonWarm, msg)
		return ""
	}
	ws.Message = v1alpha1.CutText(msg, 512)
	if held := x.now.Sub(ws.Since.Time); held >= g.Timeout.Duration {
		x.st.Warmup, x.warmHeld = nil, false
		x.rollback(ActorController, fmt.Sprintf("%s was not warm after %s (spec.readiness.warmup.timeout) and served no user at %d%%: %s",
			s, g.Timeout.Duration, w, msg), "")
		return msg
	}
	return "warm-up: " + msg
}

// warmReading copies the latest reading into ws and judges it.
func (x *decider) warmReading(ws *v1alpha1.WarmupStatus, g *v1alpha1.WarmupGate) (string, bool) {
	o := x.o.Warmth
	limit := float64(g.MaxP99.Milliseconds())
	if g.MaxP99.Duration < time.Millisecond {
		limit = float64(g.MaxP99.Duration) / float64(time.Millisecond)
	}
	if o == nil {
		return fmt.Sprintf("%s's latency was not read yet", ws.Subset), false
	}
	ws.Sent, ws.Failed = o.Sent, o.Failed
	if o.Problem != "" {
		return fmt.Sprintf("%s's latency cannot be read: %s", ws.Subset, o.Problem), false
	}
	ws.Requests = int64(math.Round(o.Requests))
	ws.P99Milliseconds = nil
	if !math.IsNaN(o.P99) && !math.IsInf(o.P99, 0) {
		p := math.Round(o.P99*10) / 10
		ws.P99Milliseconds = &p
	}
	win := g.Window.Duration
	switch {
	case o.Requests < float64(g.MinRequests):
		return fmt.Sprintf("%s answered %d request(s) in the last %s, needs %d before its p99 counts (spec.readiness.warmup.minRequests)",
			ws.Subset, ws.Requests, win, g.MinRequests), false
	case ws.P99Milliseconds == nil:
		return fmt.Sprintf("%s's p99 over the last %s is unknown", ws.Subset, win), false
	case o.P99 > limit:
		return fmt.Sprintf("%s's p99 over the last %s is %.0f ms on %d requests, above %s (spec.readiness.warmup.maxP99)",
			ws.Subset, win, o.P99, ws.Requests, g.MaxP99.Duration), false
	}
	return fmt.Sprintf("%s is warm: p99 %.0f ms over the last %s on %d requests, within %s", ws.Subset, o.P99, win, ws.Requests, g.MaxP99.Duration), true
}
