package intent

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

type rolloutOpt func(*v1alpha1.ModelRollout)

func rollout(opts ...rolloutOpt) *v1alpha1.ModelRollout {
	mr := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "fraud"},
		Spec:       v1alpha1.ModelRolloutSpec{DestinationRule: "fraud", Stable: "v1"},
	}
	for _, o := range opts {
		o(mr)
	}
	return mr
}

func phase(p v1alpha1.Phase) rolloutOpt { return func(m *v1alpha1.ModelRollout) { m.Status.Phase = p } }

// rollingOut is a rollout of v2 as the controller knows it: spec and status
// name the candidate and the weights are split.
func rollingOut(p v1alpha1.Phase) rolloutOpt {
	return func(m *v1alpha1.ModelRollout) {
		m.Status.Phase, m.Spec.Candidate, m.Status.Candidate = p, "v2", "v2"
		m.Status.Weights = []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 75}, {Subset: "v2", Weight: 25}}
	}
}

// atStable is a rollout whose stable subset serves 100%.
func atStable(p v1alpha1.Phase, lastCandidate string) rolloutOpt {
	return func(m *v1alpha1.ModelRollout) {
		m.Status.Phase, m.Spec.Candidate, m.Status.Candidate = p, lastCandidate, lastCandidate
		m.Status.Weights = []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 100}}
	}
}

// pending is an intent by bob the controller has not applied; a start sets
// spec.candidate as the admin API would have.
func pending(a v1alpha1.IntentAction, id string) rolloutOpt {
	return func(m *v1alpha1.ModelRollout) { m.Spec.Intent = &v1alpha1.Intent{ID: id, Action: a, Actor: "bob"} }
}

func pendingStart(candidate, id string) rolloutOpt {
	return func(m *v1alpha1.ModelRollout) {
		pending(v1alpha1.IntentStart, id)(m)
		m.Spec.Candidate = candidate
	}
}

func pendingSplit(id string, ws ...v1alpha1.SubsetWeight) rolloutOpt {
	return func(m *v1alpha1.ModelRollout) {
		pending(v1alpha1.IntentSplit, id)(m)
		m.Spec.Intent.Weights = ws
	}
}

func observed(id string) rolloutOpt {
	return func(m *v1alpha1.ModelRollout) { m.Status.ObservedIntent = id }
}

func history(entries ...v1alpha1.HistoryEntry) rolloutOpt {
	return func(m *v1alpha1.ModelRollout) { m.Status.History = append(m.Status.History, entries...) }
}

func ws(kv ...any) []v1alpha1.SubsetWeight {
	var out []v1alpha1.SubsetWeight
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, v1alpha1.SubsetWeight{Subset: kv[i].(string), Weight: int32(kv[i+1].(int))})
	}
	return out
}

var (
	start    = func(c string) Request { return Request{Action: v1alpha1.IntentStart, Candidate: c} }
	split    = func(w ...any) Request { return Request{Action: v1alpha1.IntentSplit, Weights: ws(w...)} }
	promote  = Request{Action: v1alpha1.IntentPromote}
	rollback = Request{Action: v1alpha1.IntentRollback}
	pause    = Request{Action: v1alpha1.IntentPause}
	resume   = Request{Action: v1alpha1.IntentResume}
)

var testNow = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func plan(mr *v1alpha1.ModelRollout, req Request, key string) (Result, string, error) {
	id := NewID(req.Action, testNow)
	if key != "" {
		id = KeyedID(mr.Namespace, mr.Name, "alice", key)
	}
	res, err := Plan(mr, req, Inputs{Subsets: []string{"v1", "v2", "v3"}, Actor: "alice", ID: id, Key: key, Now: testNow})
	return res, id, err
}

func TestPlan(t *testing.T) {
	tests := map[string]struct {
		mr  *v1alpha1.ModelRollout
		req Request
		key string

		wantStatus     int
		wantDetail     []string // substrings of the refusal's detail
		wantRetryAfter bool
		wantNoOp       bool
		wantSupersedes *v1alpha1.SupersededIntent
		wantCandidate  *string // spec.candidate after
	}{
		// The table decides, in every phase; see TestPlanAnswersTheTable.
		"start from stable":         {mr: rollout(), req: start("v2"), wantCandidate: ptr("v2")},
		"start from promoted":       {mr: rollout(atStable(v1alpha1.PhasePromoted, "")), req: start("v2")},
		"start from manual split":   {mr: rollout(rollingOut(v1alpha1.PhaseManualSplit)), req: start("v3"), wantCandidate: ptr("v3")},
		"start while progressing":   {mr: rollout(rollingOut(v1alpha1.PhaseProgressing)), req: start("v3"), wantStatus: 409, wantDetail: []string{"Progressing", `"v2"`}},
		"start stable as candidate": {mr: rollout(), req: start("v1"), wantStatus: 422, wantDetail: []string{"already the stable"}},
		"start unknown subset":      {mr: rollout(), req: start("v9"), wantStatus: 422, wantDetail: []string{`"v9" is not a subset`}},
		"split unknown subset":      {mr: rollout(rollingOut(v1alpha1.PhaseProgressing)), req: split("v1", 50, "v7", 50), wantStatus: 422, wantDetail: []string{`"v7"`}},
		"split progressing":         {mr: rollout(rollingOut(v1alpha1.PhaseProgressing)), req: split("v1", 70, "v2", 30)},
		"split failed":              {mr: rollout(phase(v1alpha1.PhaseFailed)), req: split("v1", 70, "v2", 30), wantStatus: 409, wantDetail: []string{"Failed"}},
		"promote stable":            {mr: rollout(), req: promote, wantStatus: 409, wantDetail: []string{"promote is allowed only while", "Stable"}},
		"promote paused":            {mr: rollout(rollingOut(v1alpha1.PhasePaused)), req: promote},
		"promote without candidate": {mr: rollout(phase(v1alpha1.PhaseManualSplit)), req: promote, wantStatus: 409, wantDetail: []string{"no candidate to promote"}},
		"pause progressing":         {mr: rollout(rollingOut(v1alpha1.PhaseProgressing)), req: pause},
		"pause while paused":        {mr: rollout(rollingOut(v1alpha1.PhasePaused)), req: pause, wantStatus: 409, wantDetail: []string{"pause is allowed only while", "Paused"}},
		"pause while manual split":  {mr: rollout(rollingOut(v1alpha1.PhaseManualSplit)), req: pause, wantStatus: 409, wantDetail: []string{"pause is allowed only while", "ManualSplit"}},
		"resume progressing":        {mr: rollout(rollingOut(v1alpha1.PhaseProgressing)), req: resume, wantStatus: 409, wantDetail: []string{"resume is allowed only while", "Progressing"}},
		"resume paused":             {mr: rollout(rollingOut(v1alpha1.PhasePaused)), req: resume},
		"observed then new":         {mr: rollout(rollingOut(v1alpha1.PhasePaused), pending(v1alpha1.IntentPause, "p1"), observed("p1")), req: resume},

		// Rollback: accepted whenever anything but stable carries traffic.
		"rollback manual split":               {mr: rollout(rollingOut(v1alpha1.PhaseManualSplit)), req: rollback},
		"rollback split weights while stable": {mr: rollout(func(m *v1alpha1.ModelRollout) { m.Status.Weights = ws("v1", 70, "v2", 30) }), req: rollback},
		"rollback with nothing to roll back":  {mr: rollout(atStable(v1alpha1.PhaseRolledBack, "v2")), req: rollback, wantStatus: 409, wantDetail: []string{"nothing to roll back"}},

		// Rollback supersedes whatever is pending.
		"rollback over pending promote": {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), pending(v1alpha1.IntentPromote, "p1")), req: rollback,
			wantSupersedes: &v1alpha1.SupersededIntent{ID: "p1", Action: v1alpha1.IntentPromote, Actor: "bob"}, wantCandidate: ptr("v2")},
		"rollback over pending pause": {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), pending(v1alpha1.IntentPause, "p1")), req: rollback,
			wantSupersedes: &v1alpha1.SupersededIntent{ID: "p1", Action: v1alpha1.IntentPause, Actor: "bob"}},
		"rollback over pending start from stable": {mr: rollout(pendingStart("v2", "s1")), req: rollback,
			wantSupersedes: &v1alpha1.SupersededIntent{ID: "s1", Action: v1alpha1.IntentStart, Actor: "bob"}, wantCandidate: ptr("")},
		"rollback over pending start after a rollback": {mr: rollout(atStable(v1alpha1.PhaseRolledBack, "v2"), pendingStart("v3", "s1")), req: rollback,
			wantSupersedes: &v1alpha1.SupersededIntent{ID: "s1", Action: v1alpha1.IntentStart, Actor: "bob"}, wantCandidate: ptr("")},
		"rollback over pending start from manual split": {mr: rollout(rollingOut(v1alpha1.PhaseManualSplit), pendingStart("v3", "s1")), req: rollback,
			wantSupersedes: &v1alpha1.SupersededIntent{ID: "s1", Action: v1alpha1.IntentStart, Actor: "bob"}, wantCandidate: ptr("v2")},
		"rollback over pending split from stable": {mr: rollout(atStable(v1alpha1.PhaseStable, ""), pendingSplit("x1", ws("v1", 70, "v2", 30)...)), req: rollback,
			wantSupersedes: &v1alpha1.SupersededIntent{ID: "x1", Action: v1alpha1.IntentSplit, Actor: "bob"}},
		"rollback while a rollback is pending": {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), pending(v1alpha1.IntentRollback, "r1")), req: Request{Action: v1alpha1.IntentRollback, Reason: "again"}, wantNoOp: true},

		// Anything else waits for the pending intent.
		"start other candidate over pending start": {mr: rollout(pendingStart("v2", "s1")), req: start("v3"), wantStatus: 409,
			wantDetail: []string{`start of candidate "v2" requested by bob (intent s1)`, `to start "v3" instead, roll back first`}},
		"start same candidate over pending start": {mr: rollout(pendingStart("v2", "s1")), req: start("v2"), wantNoOp: true},
		"pause over pending promote": {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), pending(v1alpha1.IntentPromote, "p1")), req: pause, wantStatus: 409, wantRetryAfter: true,
			wantDetail: []string{"ml/fraud: promote requested by bob (intent p1) has not been applied"}},
		"promote over pending start":      {mr: rollout(pendingStart("v2", "s1")), req: promote, wantStatus: 409, wantRetryAfter: true, wantDetail: []string{"start requested by bob (intent s1)"}},
		"same split pending, other order": {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), pendingSplit("x1", ws("v1", 70, "v2", 30)...)), req: split("v2", 30, "v1", 70), wantNoOp: true},
		"other split pending":             {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), pendingSplit("x1", ws("v1", 70, "v2", 30)...)), req: split("v1", 50, "v2", 50), wantStatus: 409, wantRetryAfter: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := tc.mr.DeepCopy()
			res, id, err := plan(tc.mr, tc.req, tc.key)
			if !reflect.DeepEqual(before, tc.mr) {
				t.Fatal("Plan mutated its input")
			}
			if tc.wantStatus != 0 {
				e := refusal(t, err, tc.wantStatus, tc.wantDetail...)
				if e.Status == 409 && e.Phase == "" {
					t.Fatal("409 without the phase")
				}
				if got := e.RetryAfter != 0; got != tc.wantRetryAfter {
					t.Fatalf("RetryAfter = %v, want it set: %v", e.RetryAfter, tc.wantRetryAfter)
				}
				if why := v1alpha1.ActionAllowed(tc.req.Action, v1alpha1.StateOf(tc.mr)); e.Title == "Action not allowed in this phase" && e.Detail != "ml/fraud: "+why {
					t.Fatalf("detail %q is not the table's reason %q", e.Detail, why)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if res.NoOp != tc.wantNoOp {
				t.Fatalf("NoOp = %v, want %v", res.NoOp, tc.wantNoOp)
			}
			if tc.wantNoOp {
				if res.IntentID != tc.mr.Spec.Intent.ID || res.Updated != nil {
					t.Fatalf("no-op result %+v", res)
				}
				return
			}
			in := res.Updated.Spec.Intent
			if in.ID != id || in.Action != tc.req.Action || in.Actor != "alice" || !in.RequestedAt.Time.Equal(testNow) {
				t.Fatalf("intent %+v", in)
			}
			if !reflect.DeepEqual(in.Supersedes, tc.wantSupersedes) {
				t.Fatalf("supersedes %+v, want %+v", in.Supersedes, tc.wantSupersedes)
			}
			want := tc.mr.Spec.Candidate
			if tc.req.Action == v1alpha1.IntentStart {
				want = tc.req.Candidate
			}
			if tc.wantCandidate != nil {
				want = *tc.wantCandidate
			}
			if res.Updated.Spec.Candidate != want {
				t.Fatalf("spec.candidate = %q, want %q", res.Updated.Spec.Candidate, want)
			}
		})
	}
}

// TestPlanAnswersTheTable: in every phase and state, Plan refuses exactly
// what v1alpha1.ActionAllowed refuses, with its reason word for word, and
// ActionsFor says the same.
func TestPlanAnswersTheTable(t *testing.T) {
	phases := []v1alpha1.Phase{"", v1alpha1.PhaseStable, v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseManualSplit,
		v1alpha1.PhasePromoted, v1alpha1.PhaseRolledBack, v1alpha1.PhaseFailed}
	requests := map[v1alpha1.IntentAction]Request{
		v1alpha1.IntentStart: start("v3"), v1alpha1.IntentSplit: split("v1", 70, "v2", 30), v1alpha1.IntentPromote: promote,
		v1alpha1.IntentRollback: rollback, v1alpha1.IntentPause: pause, v1alpha1.IntentResume: resume,
		v1alpha1.IntentApprove: {Action: v1alpha1.IntentApprove},
	}
	for _, p := range phases {
		for _, candidate := range []string{"", "v2"} {
			for _, stableAll := range []bool{true, false} {
				mr := rollout(phase(p), func(m *v1alpha1.ModelRollout) {
					m.Spec.Candidate, m.Status.Candidate = candidate, candidate
					m.Status.Weights = ws("v1", 100)
					if !stableAll {
						m.Status.Weights = ws("v1", 80, "v2", 20)
					}
				})
				actions := ActionsFor(mr)
				for _, a := range Actions {
					t.Run(fmt.Sprintf("%s/%s/candidate=%q/stable100=%v", a, p, candidate, stableAll), func(t *testing.T) {
						why := v1alpha1.ActionAllowed(a, v1alpha1.StateOf(mr))
						if got := actions[Verb(a)]; got.Allowed != (why == "") || got.Reason != why {
							t.Fatalf("ActionsFor = %+v, table says %q", got, why)
						}
						_, _, err := plan(mr, requests[a], "")
						if why == "" {
							if err != nil {
								t.Fatalf("table allows, Plan refused: %v", err)
							}
							return
						}
						e := refusal(t, err, 409)
						if e.Detail != "ml/fraud: "+why || e.Title != "Action not allowed in this phase" || e.Phase != v1alpha1.StateOf(mr).Phase {
							t.Fatalf("refusal %+v, want the table's reason %q", e, why)
						}
					})
				}
			}
		}
	}
}

func TestActionsForPendingIntent(t *testing.T) {
	mr := rollout(pendingStart("v2", "s1"))
	got := ActionsFor(mr)
	if !got["rollback"].Allowed || !got["start"].Allowed || got["promote"].Allowed || got["promote"].Reason == "" {
		t.Fatalf("a pending start: rollback cancels it, start is the table's answer, promote is refused with a reason: %+v", got)
	}
	if len(got) != len(Actions) {
		t.Fatalf("want every action, got %v", got)
	}
}

// waiting is a progressing rollout held by approval gate name.
func waiting(name string) rolloutOpt {
	return func(m *v1alpha1.ModelRollout) {
		rollingOut(v1alpha1.PhaseProgressing)(m)
		m.Status.Gates = &v1alpha1.GatesStatus{Pending: &v1alpha1.GateRun{Name: name, At: v1alpha1.GatePrePromote,
			Type: v1alpha1.GateTypeApproval, State: v1alpha1.GateWaitingForApproval, ID: "r1"}}
	}
}

// An approve names the gate waiting, and never another: an approval meant
// for one gate must not pass the next.
func TestPlanApprove(t *testing.T) {
	mr := rollout(waiting("sign-off"))
	if !ActionsFor(mr)["approve"].Allowed {
		t.Fatalf("approve not offered while sign-off waits: %+v", ActionsFor(mr)["approve"])
	}
	res, err := Plan(mr, Request{Action: v1alpha1.IntentApprove, Reason: "eval is good"}, Inputs{Actor: "alice", ID: "a1", Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if in := res.Updated.Spec.Intent; in.Action != v1alpha1.IntentApprove || in.Gate != "sign-off" || in.Actor != "alice" || in.Reason != "eval is good" {
		t.Fatalf("intent %+v", in)
	}
	_, err = Plan(mr, Request{Action: v1alpha1.IntentApprove, Gate: "load-test"}, Inputs{Actor: "alice", ID: "a2", Now: testNow})
	if e := refusal(t, err, 409); e.Title != "Another gate waits" || !strings.Contains(e.Detail, "gate load-test is not waiting for approval; gate sign-off is") {
		t.Fatalf("refusal %+v", e)
	}
	// Nothing waits: the table's reason.
	_, err = Plan(rollout(rollingOut(v1alpha1.PhaseProgressing)), Request{Action: v1alpha1.IntentApprove}, Inputs{Actor: "alice", ID: "a3", Now: testNow})
	if e := refusal(t, err, 409); !strings.Contains(e.Detail, "nothing to approve") {
		t.Fatalf("refusal %+v", e)
	}
	// The same approval again, with its key, is a no-op.
	keyed := rollout(waiting("sign-off"), func(m *v1alpha1.ModelRollout) {
		m.Spec.Intent = &v1alpha1.Intent{ID: KeyedID("ml", "fraud", "alice", "k"), Action: v1alpha1.IntentApprove, Gate: "sign-off", Actor: "alice"}
	})
	res, err = Plan(keyed, Request{Action: v1alpha1.IntentApprove, Gate: "sign-off"}, Inputs{Actor: "alice", ID: KeyedID("ml", "fraud", "alice", "k"), Key: "k", Now: testNow})
	if err != nil || !res.NoOp {
		t.Fatalf("replayed approve: %+v, %v", res, err)
	}
}

func TestActorCutOnARune(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	res, err := Plan(rollout(rollingOut(v1alpha1.PhaseProgressing)), rollback, Inputs{Actor: long, ID: "r1", Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Updated.Spec.Intent.Actor; len(a) > v1alpha1.MaxActorLength || !utf8.ValidString(a) {
		t.Fatalf("actor %d bytes, valid UTF-8 %v", len(a), utf8.ValidString(a))
	}
}

func TestIDs(t *testing.T) {
	a := KeyedID("ml", "fraud", "alice", "k1")
	if a != KeyedID("ml", "fraud", "alice", "k1") || a == KeyedID("ml", "fraud", "bob", "k1") || a == KeyedID("ml", "other", "alice", "k1") {
		t.Fatal("keyed ids must be stable per rollout and user")
	}
	n1, n2 := NewID(v1alpha1.IntentRollback, time.Unix(1, 0)), NewID(v1alpha1.IntentRollback, time.Unix(1, 0))
	if n1 == n2 || !strings.HasPrefix(n1, "rollback-") {
		t.Fatalf("new ids %q %q", n1, n2)
	}
	for _, id := range []string{a, n1} {
		if len(id) > 64 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
			t.Fatalf("id %q breaks the CRD pattern", id)
		}
	}
	if RBACVerb(v1alpha1.IntentResume) != "pause" || RBACVerb(v1alpha1.IntentSplit) != "split" {
		t.Fatal("rbac verbs")
	}
}

// refusal asserts err is an *Error with status and detail substrings.
func refusal(t *testing.T, err error, status int, detail ...string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Status != status {
		t.Fatalf("want %d, got %v", status, err)
	}
	for _, d := range detail {
		if !strings.Contains(e.Detail, d) {
			t.Fatalf("detail %q lacks %q", e.Detail, d)
		}
	}
	return e
}

func ptr[T any](v T) *T { return &v }
