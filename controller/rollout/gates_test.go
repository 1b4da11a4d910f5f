package rollout

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func httpGate(name string, at v1alpha1.GateHook) v1alpha1.Gate {
	return v1alpha1.Gate{Name: name, At: at, HTTP: &v1alpha1.HTTPGate{URL: "http://" + name + ".ml.svc/check"}}
}

func jobGate(name string, at v1alpha1.GateHook) v1alpha1.Gate {
	return v1alpha1.Gate{Name: name, At: at, Job: &v1alpha1.JobGate{}}
}

func approvalGate(name string, at v1alpha1.GateHook) v1alpha1.Gate {
	return v1alpha1.Gate{Name: name, At: at, Approval: &v1alpha1.ApprovalGate{Instructions: "check the offline evaluation"}}
}

func withGates(gs ...v1alpha1.Gate) func(*v1alpha1.ModelRollout) {
	return func(r *v1alpha1.ModelRollout) {
		r.UID = "uid-1"
		r.Spec.Gates = gs
		r.Spec.Strategy.Canary.Steps = []int32{20, 50, 100}
	}
}

// pending is the run holding the rollout; the test fails without one.
func (s *sim) pending() *v1alpha1.GateRun {
	s.t.Helper()
	gs := s.r.Status.Gates
	if gs == nil || gs.Pending == nil {
		s.t.Fatalf("no pending gate; status.gates %+v, message %q", gs, s.r.Status.Message)
	}
	return gs.Pending
}

// finish makes the reconciler report the pending run's result.
func (s *sim) finish(passed bool, msg string) {
	s.t.Helper()
	if s.gates == nil {
		s.gates = map[string]GateObservation{}
	}
	s.gates[s.pending().ID] = GateObservation{Done: true, Passed: passed, Attempts: 1, Message: msg}
}

func (s *sim) results() []v1alpha1.GateOutcome {
	var out []v1alpha1.GateOutcome
	if gs := s.r.Status.Gates; gs != nil {
		for _, r := range gs.Results {
			out = append(out, r.Outcome)
		}
	}
	return out
}

func (s *sim) wantMessage(want string) {
	s.t.Helper()
	if !strings.Contains(s.r.Status.Message, want) {
		s.t.Fatalf("message %q, want it to contain %q", s.r.Status.Message, want)
	}
}

// A PreStart gate holds the first weight; the weight is written in the
// reconcile that sees it pass, and history and results say so.
func TestPreStartGateHoldsTheFirstWeight(t *testing.T) {
	s := newSim(t, withGates(httpGate("smoke", v1alpha1.GatePreStart)))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	run := s.pending()
	if run.Type != v1alpha1.GateTypeHTTP || run.At != v1alpha1.GatePreStart || run.Weight != 20 || run.ID == "" ||
		run.Deadline == nil || run.Deadline.Sub(run.StartedAt.Time) != DefaultHTTPGateTimeout {
		t.Fatalf("pending run %+v", run)
	}
	s.wantMessage("; gate smoke (HTTP at PreStart) is running")
	if s.last.RequeueAfter != gateRecheck {
		t.Fatalf("requeue after %s, want %s", s.last.RequeueAfter, gateRecheck)
	}
	s.wantEvent(ReasonGateStarted)

	// A reading in between (a retry) changes the run's message, not the weights.
	s.gates = map[string]GateObservation{run.ID: {Attempts: 1, Message: "attempt 1: 503 Service Unavailable; retrying"}}
	s.clk.Step(2 * time.Second)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	if p := s.pending(); p.Attempts != 1 || !strings.Contains(p.Message, "503") || p.ID != run.ID {
		t.Fatalf("pending run %+v", p)
	}
	s.steady()

	s.finish(true, "200 OK")
	s.clk.Step(2 * time.Second)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})
	gs := s.r.Status.Gates
	if gs.Pending != nil || gs.Cleared == nil || gs.Cleared.At != v1alpha1.GatePreStart {
		t.Fatalf("status.gates %+v", gs)
	}
	if h := s.historyTypes(); !slices.Contains(h, HistoryGatePassed) {
		t.Fatalf("history %v", h)
	}
	if r := s.results(); !slices.Equal(r, []v1alpha1.GateOutcome{v1alpha1.GatePassed}) {
		t.Fatalf("results %v", r)
	}
	// The next steps do not run PreStart again.
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
}

// EachStep gates run before every step's weight but the promotion; the
// later ones while the current step still holds its weight.
func TestEachStepGateRunsBeforeEveryIncrease(t *testing.T) {
	s := newSim(t, withGates(jobGate("load-test", v1alpha1.GateEachStep)))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	first := s.pending()
	if first.Job != JobName("fraud", "load-test", first.ID) || first.Deadline.Sub(first.StartedAt.Time) != DefaultJobGateTimeout {
		t.Fatalf("first run %+v", first)
	}
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	s.finish(true, "Job completed")
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})

	// The step lasts its minimum; the gate of step 2 runs at 20%.
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	second := s.pending()
	if *second.Step != 1 || second.Weight != 50 || second.ID == first.ID {
		t.Fatalf("second run %+v", second)
	}
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})
	s.wantMessage("step 1 of 3: v2 at 20%; no analysis configured, each step lasts 1m0s; gate load-test (job at EachStep, step 2) is running")
	s.finish(true, "Job completed")
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})

	// The promotion is not a step: no EachStep gate holds it.
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePromoted)
	if n := len(s.r.Status.Gates.Results); n != 2 {
		t.Fatalf("%d results, want 2", n)
	}
}

// An approval before the promotion waits for a person: an Approve intent
// passes it, and the promotion follows in the same reconcile, with the
// approver and reason in history.
func TestApprovalBeforePromotion(t *testing.T) {
	s := newSim(t, withGates(approvalGate("sign-off", v1alpha1.GatePrePromote)))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	// Approving before anything waits is refused, and recorded.
	s.intent("early", v1alpha1.IntentApprove)
	s.reconcile(nil)
	if h := s.r.Status.History[len(s.r.Status.History)-1]; h.Type != HistoryIntentIgnored || !strings.Contains(h.Reason, "nothing to approve") {
		t.Fatalf("last history %+v", h)
	}
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
	run := s.pending()
	if run.State != v1alpha1.GateWaitingForApproval || run.Deadline != nil || run.Weight != 100 {
		t.Fatalf("pending run %+v", run)
	}
	if got := v1alpha1.PendingApproval(&s.r.Status); got != "sign-off" {
		t.Fatalf("PendingApproval = %q", got)
	}
	s.wantMessage("; gate sign-off (approval at PrePromote) waits for a person's approval before v2 is promoted (100%) (fulcrumctl approve fraud -n ml --reason ...)")
	e := s.wantEvent(ReasonApprovalPending)
	if !strings.Contains(e.Message, "check the offline evaluation") {
		t.Fatalf("event %q", e.Message)
	}
	if h := s.historyTypes(); !slices.Contains(h, HistoryApprovalPending) {
		t.Fatalf("history %v", h)
	}
	// An approval waits on intents, not on a clock.
	if s.last.RequeueAfter != 0 {
		t.Fatalf("requeue after %s while waiting for a person", s.last.RequeueAfter)
	}
	s.steady()

	// An Approve naming another gate does nothing.
	s.intent("wrong", v1alpha1.IntentApprove)
	s.r.Spec.Intent.Gate = "other"
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
	if h := s.r.Status.History[len(s.r.Status.History)-1]; h.Type != HistoryIntentIgnored || !strings.Contains(h.Reason, "gate other is not waiting for approval; gate sign-off is") {
		t.Fatalf("last history %+v", h)
	}

	s.intent("approve-1", v1alpha1.IntentApprove)
	s.r.Spec.Intent.Reason = "offline eval is good"
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePromoted)
	var approved *v1alpha1.HistoryEntry
	for i := range s.r.Status.History {
		if h := &s.r.Status.History[i]; h.Type == HistoryApproved {
			approved = h
		}
	}
	if approved == nil || approved.Actor != "alice" || approved.IntentID != "approve-1" || !strings.Contains(approved.Reason, "offline eval is good") {
		t.Fatalf("approved entry %+v", approved)
	}
	res := s.r.Status.Gates.Results[len(s.r.Status.Gates.Results)-1]
	if res.Outcome != v1alpha1.GateApproved || res.Actor != "alice" || res.Message != "offline eval is good" {
		t.Fatalf("result %+v", res)
	}
	if s.r.Status.ObservedIntent != "approve-1" {
		t.Fatalf("observed intent %q", s.r.Status.ObservedIntent)
	}
}

// A failed gate follows onFailure: Rollback by default, with the gate's
// reason in history; OnRollback gates then start in the background.
func TestFailedGateRollsBackAndStartsOnRollbackGates(t *testing.T) {
	s := newSim(t, withGates(httpGate("smoke", v1alpha1.GateEachStep), httpGate("page", v1alpha1.GateOnRollback)))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.finish(true, "200 OK")
	s.reconcile(nil)
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.finish(false, `200 OK but verdict is "fail", not pass`)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseRolledBack)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	h := s.historyTypes()
	if i := slices.Index(h, HistoryGateFailed); i < 0 || h[i+1] != HistoryRolledBack {
		t.Fatalf("history %v", h)
	}
	rb := s.r.Status.History[len(s.r.Status.History)-1]
	if !strings.Contains(rb.Reason, `gate smoke (HTTP at EachStep, step 2) failed: 200 OK but verdict is "fail"`) {
		t.Fatalf("rollback reason %q", rb.Reason)
	}
	gs := s.r.Status.Gates
	if gs.Pending != nil || gs.Cleared != nil || len(gs.Background) != 1 || gs.Background[0].Name != "page" {
		t.Fatalf("status.gates %+v", gs)
	}
	if s.last.RequeueAfter != gateRecheck {
		t.Fatalf("requeue %s with a background gate", s.last.RequeueAfter)
	}
	// Its failure is reported and changes nothing.
	s.gates[gs.Background[0].ID] = GateObservation{Done: true, Message: "connection refused"}
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseRolledBack)
	last := s.r.Status.History[len(s.r.Status.History)-1]
	if last.Type != HistoryGateFailed || !strings.Contains(last.Reason, "reported only") {
		t.Fatalf("last history %+v", last)
	}
	if len(s.r.Status.Gates.Background) != 0 || s.last.RequeueAfter != 0 {
		t.Fatalf("background %+v, requeue %s", s.r.Status.Gates.Background, s.last.RequeueAfter)
	}
	s.steady()
}

// onFailure Hold pauses the rollout; resuming runs the gate again, as a
// new run; a timeout counts as a failure.
func TestHeldGateRunsAgainOnResume(t *testing.T) {
	g := jobGate("offline-eval", v1alpha1.GatePreStart)
	g.OnFailure = v1alpha1.GateFailHold
	g.Timeout = metav1.Duration{Duration: time.Minute}
	s := newSim(t, withGates(g))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	first := s.pending().ID
	s.clk.Step(61 * time.Second)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePaused)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	if r := s.results(); !slices.Equal(r, []v1alpha1.GateOutcome{v1alpha1.GateTimedOut}) {
		t.Fatalf("results %v", r)
	}
	paused := s.r.Status.History[len(s.r.Status.History)-1]
	if paused.Type != HistoryPaused || !strings.Contains(paused.Reason, "timed out: no result within 1m0s") || !strings.Contains(paused.Reason, "resume to run it again") {
		t.Fatalf("paused entry %+v", paused)
	}
	s.intent("resume-1", v1alpha1.IntentResume)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	if again := s.pending(); again.ID == first || again.Job == "" {
		t.Fatalf("run after resume %+v (first %s)", again, first)
	}
	s.finish(true, "Job completed")
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})
}

// A pending gate never holds a rollback or a person's promotion or split:
// the run ends Cancelled, naming who went ahead.
func TestPendingGateNeverBlocksAPersonOrARollback(t *testing.T) {
	for _, tc := range []struct {
		action v1alpha1.IntentAction
		phase  v1alpha1.Phase
		want   map[string]int32
	}{
		{v1alpha1.IntentRollback, v1alpha1.PhaseRolledBack, map[string]int32{"v1": 100, "v2": 0}},
		{v1alpha1.IntentPromote, v1alpha1.PhasePromoted, map[string]int32{"v2": 100, "v1": 0}},
		{v1alpha1.IntentSplit, v1alpha1.PhaseManualSplit, map[string]int32{"v1": 40, "v2": 60}},
		{v1alpha1.IntentPause, v1alpha1.PhasePaused, map[string]int32{"v1": 80, "v2": 20}},
	} {
		t.Run(string(tc.action), func(t *testing.T) {
			s := newSim(t, withGates(approvalGate("sign-off", v1alpha1.GateEachStep)))
			s.r.Spec.Candidate = "v2"
			s.reconcile(nil)
			s.intent("a-1", v1alpha1.IntentApprove)
			s.reconcile(nil)
			s.wantWeights(map[string]int32{"v1": 80, "v2": 20})
			s.clk.Step(time.Minute)
			s.reconcile(nil)
			s.pending()
			s.intent("act", tc.action, v1alpha1.SubsetWeight{Subset: "v1", Weight: 40}, v1alpha1.SubsetWeight{Subset: "v2", Weight: 60})
			if tc.action != v1alpha1.IntentSplit {
				s.r.Spec.Intent.Weights = nil
			}
			s.reconcile(nil)
			s.wantPhase(tc.phase)
			s.wantWeights(tc.want)
			gs := s.r.Status.Gates
			last := gs.Results[len(gs.Results)-1]
			if gs.Pending != nil || last.Outcome != v1alpha1.GateCancelled || last.Actor != "alice" || !strings.Contains(last.Message, "by alice") {
				t.Fatalf("status.gates %+v", gs)
			}
		})
	}
}

// After a promotion, PostPromote gates run and pass in the background.
func TestPostPromoteGateRunsAfterThePromotion(t *testing.T) {
	s := newSim(t, withGates(httpGate("registry", v1alpha1.GatePostPromote)))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePromoted)
	bg := s.r.Status.Gates.Background
	if len(bg) != 1 || bg[0].At != v1alpha1.GatePostPromote || bg[0].Weight != 0 {
		t.Fatalf("background %+v", bg)
	}
	s.gates = map[string]GateObservation{bg[0].ID: {Done: true, Passed: true, Attempts: 2, Message: "200 OK"}}
	s.reconcile(nil)
	if h := s.r.Status.History[len(s.r.Status.History)-1]; h.Type != HistoryGatePassed || h.To != v1alpha1.PhasePromoted {
		t.Fatalf("last history %+v", h)
	}
	s.steady()
}

// PreStart runs before the shadow stage's mirror: no request is copied to
// the candidate before it passes.
func TestPreStartGateComesBeforeTheShadowStage(t *testing.T) {
	s := newSim(t, withGates(httpGate("smoke", v1alpha1.GatePreStart)), func(r *v1alpha1.ModelRollout) {
		r.Spec.Strategy.Canary.Shadow = &v1alpha1.ShadowStage{Percent: 50}
	})
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	if sh := s.r.Status.Shadow; sh == nil || sh.StartedAt != nil {
		t.Fatalf("shadow %+v before the gate passed", sh)
	}
	s.wantMessage("; gate smoke (HTTP at PreStart) is running")
	s.finish(true, "200 OK")
	s.reconcile(nil)
	if sh := s.r.Status.Shadow; sh == nil || sh.StartedAt == nil {
		t.Fatalf("shadow %+v after the gate passed", sh)
	}
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
}

// Gates of one point run one after another, in spec order; a rollout with
// no gates never gets status.gates.
func TestGatesOfAPointRunInOrder(t *testing.T) {
	s := newSim(t, withGates(httpGate("smoke", v1alpha1.GatePreStart), approvalGate("go", v1alpha1.GatePreStart)))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	if p := s.pending(); p.Name != "smoke" {
		t.Fatalf("first pending %s", p.Name)
	}
	s.finish(true, "200 OK")
	s.reconcile(nil)
	if p := s.pending(); p.Name != "go" || !slices.Equal(s.r.Status.Gates.Passed, []string{"smoke"}) {
		t.Fatalf("pending %s, passed %v", p.Name, s.r.Status.Gates.Passed)
	}
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	s.intent("ok", v1alpha1.IntentApprove)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})

	plain := newSim(t)
	plain.r.Spec.Candidate = "v2"
	for range 3 {
		plain.reconcile(nil)
		plain.clk.Step(time.Minute)
	}
	if plain.r.Status.Gates != nil {
		t.Fatalf("status.gates %+v without spec.gates", plain.r.Status.Gates)
	}
}

// A gate removed from the spec while it holds the rollout holds nothing:
// its run ends Cancelled and the weight moves; no approval is asked of
// anyone any more.
func TestRemovedGateStopsHolding(t *testing.T) {
	s := newSim(t, withGates(approvalGate("sign-off", v1alpha1.GatePreStart)))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.pending()
	s.r.Spec.Gates = nil
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})
	gs := s.r.Status.Gates
	if gs.Pending != nil || v1alpha1.PendingApproval(&s.r.Status) != "" || gs.Results[0].Outcome != v1alpha1.GateCancelled {
		t.Fatalf("status.gates %+v", gs)
	}
}

func TestJobNameFitsALabel(t *testing.T) {
	for _, tc := range []struct{ rollout, gate, id, want string }{
		{"fraud", "smoke", "0123456789", "fraud-smoke-0123456789"},
		{strings.Repeat("r", 60), strings.Repeat("g", 40), "0123456789", strings.Repeat("r", 52) + "-0123456789"},
		{strings.Repeat("r", 51) + "-x", "g", "0123456789", strings.Repeat("r", 51) + "-0123456789"},
	} {
		got := JobName(tc.rollout, tc.gate, tc.id)
		if got != tc.want || len(got) > 63 {
			t.Errorf("JobName(%d, %d) = %q (%d), want %q", len(tc.rollout), len(tc.gate), got, len(got), tc.want)
		}
	}
}
