package rollout

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Gates (spec.gates) hold a rollout at fixed points until they pass, as the
// warm-up gate does: the decider starts a run (status.gates.pending), the
// reconciler carries it out after the status is written (an HTTP call in
// the background, a Job) and reports what it saw in Observed.Gates, and
// the decider judges it on a later reconcile. Nothing here waits: a
// rollback, a person's promote or split, and a pause always go through,
// and end the pending run (recorded as Cancelled).

// Defaults of spec.gates.
const (
	DefaultHTTPGateTimeout = 2 * time.Minute
	DefaultJobGateTimeout  = 30 * time.Minute
	// gateRecheck is how often a rollout with a running HTTP or Job gate
	// looks again: the HTTP runner's results arrive in memory, not as
	// watch events.
	gateRecheck = 2 * time.Second
)

// History types and Event reasons of gates.
const (
	HistoryApprovalPending = v1alpha1.HistoryApprovalPending
	HistoryApproved        = v1alpha1.HistoryApproved
	HistoryGatePassed      = v1alpha1.HistoryGatePassed
	HistoryGateFailed      = v1alpha1.HistoryGateFailed

	ReasonGateStarted     = "GateStarted"
	ReasonGatePassed      = "GatePassed"
	ReasonGateFailed      = "GateFailed"
	ReasonApprovalPending = "ApprovalPending"
	ReasonApproved        = "Approved"
)

// GateObservation is what the reconciler read about one gate run: the HTTP
// runner's latest result, or its Job's status.
type GateObservation struct {
	// Done is true once the run has its final result; Passed says which.
	Done, Passed bool
	// Attempts made so far (HTTP).
	Attempts int32
	// Message says what happened last, e.g. "attempt 2: 503 Service
	// Unavailable" or "Job fraud-smoke-1a2b completed".
	Message string
}

// GatesAt lists the rollout's gates at hook h, in spec order. An
// experiment has no gates (the CRD refuses them).
func GatesAt(r *v1alpha1.ModelRollout, h v1alpha1.GateHook) []v1alpha1.Gate {
	if r.Spec.Strategy.Experiment != nil {
		return nil
	}
	var out []v1alpha1.Gate
	for _, g := range r.Spec.Gates {
		if g.At == h {
			out = append(out, g)
		}
	}
	return out
}

// FindGate is the spec's gate named name, or nil.
func FindGate(r *v1alpha1.ModelRollout, name string) *v1alpha1.Gate {
	for i := range r.Spec.Gates {
		if r.Spec.Gates[i].Name == name {
			return &r.Spec.Gates[i]
		}
	}
	return nil
}

// GateTimeout is how long a gate may run; 0 means no limit (an approval
// without spec.gates[].timeout).
func GateTimeout(g *v1alpha1.Gate) time.Duration {
	if d := g.Timeout.Duration; d > 0 {
		return d
	}
	switch {
	case g.HTTP != nil:
		return DefaultHTTPGateTimeout
	case g.Job != nil:
		return DefaultJobGateTimeout
	}
	return 0
}

// GateTypeOf is the kind of a gate.
func GateTypeOf(g *v1alpha1.Gate) v1alpha1.GateType {
	switch {
	case g.HTTP != nil:
		return v1alpha1.GateTypeHTTP
	case g.Job != nil:
		return v1alpha1.GateTypeJob
	}
	return v1alpha1.GateTypeApproval
}

// JobName is the name of the Job of a gate run: the rollout's and the
// gate's names cut to fit, and the run's id, so that a controller that
// restarts finds the Job it created (and a new run never does).
func JobName(rollout, gate, id string) string {
	prefix := rollout + "-" + gate
	if max := 63 - 1 - len(id); len(prefix) > max {
		prefix = strings.TrimRight(prefix[:max], "-.")
	}
	return prefix + "-" + id
}

// gateRunID names a run: the rollout, the gate, its point and when it
// started, hashed. The reconciler keys its HTTP calls by it and the Job is
// named after it.
func gateRunID(r *v1alpha1.ModelRollout, gate string, p v1alpha1.GatePoint, at time.Time) string {
	step := ""
	if p.Step != nil {
		step = strconv.Itoa(int(*p.Step))
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{string(r.UID), r.Namespace, r.Name, gate, string(p.At), step,
		strconv.FormatInt(at.UnixNano(), 10)}, "\x00")))
	return hex.EncodeToString(sum[:5])
}

// pointOrder orders the hold points of one rollout.
func pointOrder(p v1alpha1.GatePoint) int {
	switch p.At {
	case v1alpha1.GatePreStart:
		return 0
	case v1alpha1.GateEachStep:
		if p.Step != nil {
			return 1 + int(*p.Step)
		}
		return 1
	}
	return 1 << 20 // PrePromote
}

func samePoint(a, b v1alpha1.GatePoint) bool {
	return a.At == b.At && ((a.Step == nil) == (b.Step == nil)) && (a.Step == nil || *a.Step == *b.Step)
}

func eachStep(i int32) v1alpha1.GatePoint {
	return v1alpha1.GatePoint{At: v1alpha1.GateEachStep, Step: &i}
}

// entryPoints are the hold points before step i's weight w is first
// written: PreStart and EachStep before the first step; EachStep before
// any other; PrePromote when the step is the promotion itself.
func entryPoints(i, w int32) []v1alpha1.GatePoint {
	var out []v1alpha1.GatePoint
	if i == 0 {
		out = append(out, v1alpha1.GatePoint{At: v1alpha1.GatePreStart})
	}
	if w >= 100 {
		return append(out, v1alpha1.GatePoint{At: v1alpha1.GatePrePromote})
	}
	return append(out, eachStep(i))
}

// gatesStatus returns status.gates, made when missing.
func (x *decider) gatesStatus() *v1alpha1.GatesStatus {
	if x.st.Gates == nil {
		x.st.Gates = &v1alpha1.GatesStatus{}
	}
	return x.st.Gates
}

// cleared reports whether p's gates all passed in the current rollout.
func (x *decider) cleared(p v1alpha1.GatePoint) bool {
	gs := x.st.Gates
	return gs != nil && gs.Cleared != nil && pointOrder(*gs.Cleared) >= pointOrder(p)
}

// holdAt returns why the rollout waits at the points, in order, or "" when
// their gates all passed. A gate that fails follows its onFailure (a
// rollback or a pause): the caller sees the phase change.
func (x *decider) holdAt(pts ...v1alpha1.GatePoint) string {
	for _, p := range pts {
		msg := x.clearPoint(p)
		if msg != "" || x.st.Phase != v1alpha1.PhaseProgressing {
			x.gateWait = msg
			return msg
		}
	}
	return ""
}

// clearPoint runs p's gates one after another and returns what the first
// that has not passed waits for.
func (x *decider) clearPoint(p v1alpha1.GatePoint) string {
	specs := GatesAt(x.r, p.At)
	if len(specs) == 0 || x.cleared(p) {
		if gs := x.st.Gates; gs != nil && gs.Pending != nil && gs.Point != nil && samePoint(*gs.Point, p) {
			// Its gates were removed from the spec while one ran.
			x.cancelPending("", "the gate was removed from spec.gates")
			gs.Point, gs.Passed = nil, nil
		}
		return ""
	}
	gs := x.gatesStatus()
	if gs.Point == nil || !samePoint(*gs.Point, p) {
		// Runs of another point (the spec changed under them, or the
		// rollout moved on another way) hold nothing any more.
		x.cancelPending("", "the rollout moved on to "+pointText(p))
		gs.Point, gs.Passed = &p, nil
	}
	for i := range specs {
		g := &specs[i]
		if slices.Contains(gs.Passed, g.Name) {
			continue
		}
		if gs.Pending == nil || gs.Pending.Name != g.Name {
			x.cancelPending("", "gate "+g.Name+" runs instead")
			gs.Pending = x.startRun(g, p)
		}
		outcome, msg := x.judgeRun(g, gs.Pending)
		switch outcome {
		case "":
			return msg
		case v1alpha1.GatePassed:
			x.finishRun(*gs.Pending, outcome, msg, "")
			gs.Pending = nil
			gs.Passed = append(gs.Passed, g.Name)
		default:
			x.gateFailed(g, outcome, msg)
			return msg
		}
	}
	gs.Cleared, gs.Point, gs.Passed = &p, nil, nil
	return ""
}

// startRun starts a run of gate g at point p. An approval says, in history
// and an Event, that a person is needed (a Notifier passes it on).
func (x *decider) startRun(g *v1alpha1.Gate, p v1alpha1.GatePoint) *v1alpha1.GateRun {
	run := x.newRun(g, p)
	label := gateLabel(run)
	if run.Type == v1alpha1.GateTypeApproval {
		why := fmt.Sprintf("%s waits for a person's approval before %s", label, x.heldBack(run))
		if g.Approval.Instructions != "" {
			why += ": " + g.Approval.Instructions
		}
		x.history(HistoryApprovalPending, x.st.Phase, x.st.Phase, ActorController, why, "", nil)
		x.event(EventTypeNormal, ReasonApprovalPending, why+approveHint(x.r))
		return run
	}
	x.event(EventTypeNormal, ReasonGateStarted, label+" started")
	return run
}

// newRun is a fresh run of g at p, started now.
func (x *decider) newRun(g *v1alpha1.Gate, p v1alpha1.GatePoint) *v1alpha1.GateRun {
	step := x.step()
	if p.Step != nil {
		step = *p.Step
	}
	run := &v1alpha1.GateRun{
		Name: g.Name, At: p.At, Step: &step, Type: GateTypeOf(g), State: v1alpha1.GateRunning,
		ID: gateRunID(x.r, g.Name, p, x.now.Time), StartedAt: x.now,
	}
	switch p.At {
	case v1alpha1.GatePrePromote:
		run.Weight = 100
	case v1alpha1.GatePreStart, v1alpha1.GateEachStep:
		run.Weight = steps(x.r)[min(int(step), len(steps(x.r))-1)]
	}
	if run.Type == v1alpha1.GateTypeApproval {
		run.State = v1alpha1.GateWaitingForApproval
	}
	if run.Type == v1alpha1.GateTypeJob {
		run.Job = JobName(x.r.Name, g.Name, run.ID)
	}
	if d := GateTimeout(g); d > 0 {
		dl := metav1.NewTime(x.now.Add(d))
		run.Deadline = &dl
	}
	return run
}

// judgeRun reads the run's latest observation: an outcome when it ended
// (Passed, Failed, TimedOut), or "" and what it waits for.
func (x *decider) judgeRun(g *v1alpha1.Gate, run *v1alpha1.GateRun) (v1alpha1.GateOutcome, string) {
	label := gateLabel(run)
	var wait string
	switch run.Type {
	case v1alpha1.GateTypeApproval:
		wait = fmt.Sprintf("%s waits for a person's approval before %s%s", label, x.heldBack(run), approveHint(x.r))
	default:
		obs, seen := x.o.Gates[run.ID]
		if seen {
			run.Attempts = max(run.Attempts, obs.Attempts)
			run.Message = v1alpha1.CutText(obs.Message, v1alpha1.MaxMetricMessage)
		}
		if seen && obs.Done {
			if obs.Passed {
				return v1alpha1.GatePassed, obs.Message
			}
			return v1alpha1.GateFailed, obs.Message
		}
		wait = label + " is running"
		if run.Message != "" {
			wait += ": " + run.Message
		}
	}
	if run.Deadline != nil && !x.now.Before(run.Deadline) {
		msg := fmt.Sprintf("no result within %s (spec.gates[].timeout)", GateTimeout(g))
		if run.Message != "" {
			msg += "; last: " + run.Message
		}
		return v1alpha1.GateTimedOut, msg
	}
	return "", wait
}

// gateFailed records a failed run and follows the gate's onFailure.
func (x *decider) gateFailed(g *v1alpha1.Gate, outcome v1alpha1.GateOutcome, msg string) {
	gs := x.st.Gates
	run := *gs.Pending
	gs.Pending = nil
	x.finishRun(run, outcome, msg, "")
	why := fmt.Sprintf("%s %s: %s", gateLabel(&run), failedWord(outcome), msg)
	if g.OnFailure == v1alpha1.GateFailHold {
		x.pause(ActorController, why+"; resume to run it again, or promote or roll back", "")
		return
	}
	x.rollback(ActorController, why, "")
}

// finishRun records how a run ended in status.gates.results and, unless it
// was cancelled (the transition that cancelled it is in history), in
// history and an Event.
func (x *decider) finishRun(run v1alpha1.GateRun, outcome v1alpha1.GateOutcome, msg, actor string) {
	gs := x.gatesStatus()
	res := v1alpha1.GateResult{
		Name: run.Name, At: run.At, Step: run.Step, Type: run.Type, ID: run.ID, Outcome: outcome,
		StartedAt: run.StartedAt, FinishedAt: x.now, Attempts: run.Attempts,
		Actor:   v1alpha1.CutText(actor, v1alpha1.MaxActorLength),
		Message: v1alpha1.CutText(msg, v1alpha1.MaxMetricMessage),
	}
	gs.Results = append(gs.Results, res)
	if n := len(gs.Results); n > v1alpha1.MaxGateResults {
		gs.Results = append([]v1alpha1.GateResult(nil), gs.Results[n-v1alpha1.MaxGateResults:]...)
	}
	label := gateLabel(&run)
	switch outcome {
	case v1alpha1.GatePassed:
		why := label + " passed"
		if msg != "" {
			why += ": " + msg
		}
		x.history(HistoryGatePassed, x.st.Phase, x.st.Phase, ActorController, why, "", nil)
		x.event(EventTypeNormal, ReasonGatePassed, why)
	case v1alpha1.GateFailed, v1alpha1.GateTimedOut:
		why := fmt.Sprintf("%s %s: %s", label, failedWord(outcome), msg)
		if !run.At.Holds() {
			why += " (reported only: a " + string(run.At) + " gate holds nothing)"
		}
		x.history(HistoryGateFailed, x.st.Phase, x.st.Phase, ActorController, why, "", nil)
		x.event(EventTypeWarning, ReasonGateFailed, why)
	}
}

// cancelPending ends the pending run, if any, because of actor's action
// (empty: the controller's) for why; its point's passed gates stay passed.
func (x *decider) cancelPending(actor, why string) {
	gs := x.st.Gates
	if gs == nil || gs.Pending == nil {
		return
	}
	run := *gs.Pending
	gs.Pending = nil
	x.finishRun(run, v1alpha1.GateCancelled, why, actor)
}

// heldBack says what a run holds back, for messages.
func (x *decider) heldBack(run *v1alpha1.GateRun) string {
	c := x.st.Candidate
	switch run.At {
	case v1alpha1.GatePrePromote:
		return fmt.Sprintf("%s is promoted (100%%)", c)
	case v1alpha1.GatePreStart:
		if x.st.Shadow != nil {
			return fmt.Sprintf("any request is copied to %s", c)
		}
	}
	return fmt.Sprintf("%s gets %d%%", c, run.Weight)
}

// gateLabel names a run for people: gate smoke (HTTP at EachStep, step 2).
func gateLabel(run *v1alpha1.GateRun) string {
	where := string(run.At)
	if run.At == v1alpha1.GateEachStep && run.Step != nil {
		where += fmt.Sprintf(", step %d", *run.Step+1)
	}
	kind := strings.ToLower(string(run.Type))
	if run.Type == v1alpha1.GateTypeHTTP {
		kind = "HTTP"
	}
	return fmt.Sprintf("gate %s (%s at %s)", run.Name, kind, where)
}

// pointText names a hold point for people.
func pointText(p v1alpha1.GatePoint) string {
	if p.At == v1alpha1.GateEachStep && p.Step != nil {
		return fmt.Sprintf("EachStep at step %d", *p.Step+1)
	}
	return string(p.At)
}

func approveHint(r *v1alpha1.ModelRollout) string {
	return fmt.Sprintf(" (fulcrumctl approve %s -n %s --reason ...)", r.Name, r.Namespace)
}

func failedWord(o v1alpha1.GateOutcome) string {
	if o == v1alpha1.GateTimedOut {
		return "timed out"
	}
	return "failed"
}
