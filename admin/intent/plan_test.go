package intent

import (
	"errors"
	"strings"
	"testing"
	"time"

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
func pending(a v1alpha1.IntentAction, id string) rolloutOpt {
	return func(m *v1alpha1.ModelRollout) { m.Spec.Intent = &v1alpha1.Intent{ID: id, Action: a, Actor: "bob"} }
}
func observed(id string) rolloutOpt {
	return func(m *v1alpha1.ModelRollout) { m.Status.ObservedIntent = id }
}

func TestPlan(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	split := []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 70}, {Subset: "v2", Weight: 30}}
	tests := map[string]struct {
		mr         *v1alpha1.ModelRollout
		req        Request
		keyed      bool
		id         string
		wantStatus int
		wantNoOp   bool
		wantDetail string
	}{
		"start from stable":             {mr: rollout(), req: Request{Action: v1alpha1.IntentStart, Candidate: "v2"}},
		"start from promoted":           {mr: rollout(phase(v1alpha1.PhasePromoted)), req: Request{Action: v1alpha1.IntentStart, Candidate: "v2"}},
		"start while progressing":       {mr: rollout(phase(v1alpha1.PhaseProgressing), func(m *v1alpha1.ModelRollout) { m.Spec.Candidate = "v2" }), req: Request{Action: v1alpha1.IntentStart, Candidate: "v3"}, wantStatus: 409, wantDetail: "is Progressing"},
		"start stable as candidate":     {mr: rollout(), req: Request{Action: v1alpha1.IntentStart, Candidate: "v1"}, wantStatus: 422, wantDetail: "already the stable"},
		"start unknown subset":          {mr: rollout(), req: Request{Action: v1alpha1.IntentStart, Candidate: "v9"}, wantStatus: 422, wantDetail: `"v9" is not a subset`},
		"split unknown subset":          {mr: rollout(phase(v1alpha1.PhaseProgressing)), req: Request{Action: v1alpha1.IntentSplit, Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 50}, {Subset: "v7", Weight: 50}}}, wantStatus: 422, wantDetail: `"v7"`},
		"split progressing":             {mr: rollout(phase(v1alpha1.PhaseProgressing)), req: Request{Action: v1alpha1.IntentSplit, Weights: split}},
		"split failed":                  {mr: rollout(phase(v1alpha1.PhaseFailed)), req: Request{Action: v1alpha1.IntentSplit, Weights: split}, wantStatus: 409, wantDetail: "Failed"},
		"promote stable":                {mr: rollout(), req: Request{Action: v1alpha1.IntentPromote}, wantStatus: 409, wantDetail: "is Stable; promote is allowed only while Progressing, Paused, ManualSplit"},
		"promote paused":                {mr: rollout(phase(v1alpha1.PhasePaused)), req: Request{Action: v1alpha1.IntentPromote}},
		"rollback rolledback":           {mr: rollout(phase(v1alpha1.PhaseRolledBack)), req: Request{Action: v1alpha1.IntentRollback}, wantStatus: 409},
		"rollback manual":               {mr: rollout(phase(v1alpha1.PhaseManualSplit)), req: Request{Action: v1alpha1.IntentRollback}},
		"pause progressing":             {mr: rollout(phase(v1alpha1.PhaseProgressing)), req: Request{Action: v1alpha1.IntentPause}},
		"resume progressing":            {mr: rollout(phase(v1alpha1.PhaseProgressing)), req: Request{Action: v1alpha1.IntentResume}, wantStatus: 409, wantDetail: "resume"},
		"resume paused":                 {mr: rollout(phase(v1alpha1.PhasePaused)), req: Request{Action: v1alpha1.IntentResume}},
		"pending other action":          {mr: rollout(phase(v1alpha1.PhaseProgressing), pending(v1alpha1.IntentPause, "p1")), req: Request{Action: v1alpha1.IntentRollback}, wantStatus: 409, wantDetail: "pause requested by bob (intent p1)"},
		"pending identical":             {mr: rollout(phase(v1alpha1.PhaseProgressing), pending(v1alpha1.IntentRollback, "r1")), req: Request{Action: v1alpha1.IntentRollback, Reason: "again"}, wantNoOp: true},
		"observed then new":             {mr: rollout(phase(v1alpha1.PhasePaused), pending(v1alpha1.IntentPause, "p1"), observed("p1")), req: Request{Action: v1alpha1.IntentResume}},
		"keyed repeat pending":          {mr: rollout(phase(v1alpha1.PhaseProgressing), pending(v1alpha1.IntentRollback, "idem-x")), req: Request{Action: v1alpha1.IntentRollback}, keyed: true, id: "idem-x", wantNoOp: true},
		"keyed repeat applied":          {mr: rollout(phase(v1alpha1.PhaseRolledBack), pending(v1alpha1.IntentRollback, "idem-x"), observed("idem-x")), req: Request{Action: v1alpha1.IntentRollback}, keyed: true, id: "idem-x", wantNoOp: true},
		"keyed reuse different payload": {mr: rollout(phase(v1alpha1.PhaseProgressing), pending(v1alpha1.IntentRollback, "idem-x"), observed("idem-x")), req: Request{Action: v1alpha1.IntentPause}, keyed: true, id: "idem-x", wantStatus: 422, wantDetail: "Idempotency-Key"},
		"keyed found in history": {mr: rollout(phase(v1alpha1.PhaseRolledBack), func(m *v1alpha1.ModelRollout) {
			m.Status.History = []v1alpha1.HistoryEntry{{Type: "RolledBack", IntentID: "idem-old"}}
		}), req: Request{Action: v1alpha1.IntentRollback}, keyed: true, id: "idem-old", wantNoOp: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			id := tc.id
			if id == "" {
				id = NewID(tc.req.Action, now)
			}
			before := tc.mr.DeepCopy()
			res, err := Plan(tc.mr, tc.req, Inputs{Subsets: []string{"v1", "v2", "v3"}, Actor: "alice", ID: id, Keyed: tc.keyed, Now: now})
			if tc.wantStatus != 0 {
				var e *Error
				if !errors.As(err, &e) || e.Status != tc.wantStatus || !strings.Contains(e.Detail, tc.wantDetail) {
					t.Fatalf("want %d containing %q, got %v (%+v)", tc.wantStatus, tc.wantDetail, err, e)
				}
				if e.Status == 409 && e.Phase == "" {
					t.Fatal("409 without the phase")
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
				return
			}
			in := res.Updated.Spec.Intent
			if in.ID != id || in.Action != tc.req.Action || in.Actor != "alice" || !in.RequestedAt.Time.Equal(now) {
				t.Fatalf("intent %+v", in)
			}
			if tc.req.Action == v1alpha1.IntentStart && res.Updated.Spec.Candidate != tc.req.Candidate {
				t.Fatalf("start did not set spec.candidate: %q", res.Updated.Spec.Candidate)
			}
			if tc.mr.Spec.Intent != before.Spec.Intent && tc.mr.Spec.Intent.ID != before.Spec.Intent.ID || tc.mr.Spec.Candidate != before.Spec.Candidate {
				t.Fatal("Plan mutated its input")
			}
		})
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
