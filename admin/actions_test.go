package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func TestActions(t *testing.T) {
	f := newFixture(t, nil, nil, newRollout("ml", "fraud", v1alpha1.PhaseStable))

	r := f.do("POST", fraud+"/start", engToken, `{"candidate":"v2","reason":"new model"}`)
	if r.status != 202 {
		t.Fatalf("start: %d %s", r.status, r.raw)
	}
	mr := f.rollout("ml", "fraud")
	in := mr.Spec.Intent
	if mr.Spec.Candidate != "v2" || in == nil || in.Action != v1alpha1.IntentStart || in.Actor != "alice" || in.Reason != "new model" || !in.RequestedAt.Time.Equal(f.clk.Now()) {
		t.Fatalf("start wrote %+v / %+v", mr.Spec, in)
	}
	if got := r.body["spec"].(map[string]any)["intent"].(map[string]any)["id"]; got != in.ID {
		t.Fatalf("response intent id %v, stored %s", got, in.ID)
	}
	select {
	case ev := <-f.rec.Events:
		if !strings.Contains(ev, "ActionRequested") || !strings.Contains(ev, "alice requested start") || !strings.Contains(ev, "new model") {
			t.Fatalf("event %q", ev)
		}
	default:
		t.Fatal("no event recorded")
	}

	// Pending: a different action is refused with Retry-After and the state.
	r = f.do("POST", fraud+"/pause", engToken, `{}`)
	if r.status != 409 || r.header.Get("Retry-After") != "2" || r.body["current"] == nil || !strings.Contains(r.body["detail"].(string), "not been applied") {
		t.Fatalf("pending: %d %s", r.status, r.raw)
	}
	// The same start again is a no-op.
	r = f.do("POST", fraud+"/start", engToken, `{"candidate":"v2","reason":"retry"}`)
	if r.status != 202 || r.header.Get("Idempotent-Replayed") != "true" || f.rollout("ml", "fraud").Spec.Intent.ID != in.ID {
		t.Fatalf("replay: %d %s", r.status, r.raw)
	}
	// A start of another candidate names the pending one; retrying would not
	// help, so there is no Retry-After.
	r = f.do("POST", fraud+"/start", engToken, `{"candidate":"v3"}`)
	if d, _ := r.body["detail"].(string); r.status != 409 || r.header.Get("Retry-After") != "" ||
		!strings.Contains(d, `start of candidate "v2" requested by alice (intent `+in.ID+`)`) {
		t.Fatalf("start over a pending start: %d %s", r.status, r.raw)
	}

	// The controller applies it and moves to Progressing.
	mr = f.rollout("ml", "fraud")
	mr.Status.ObservedIntent, mr.Status.Phase = in.ID, v1alpha1.PhaseProgressing
	if err := f.cl.Status().Update(context.Background(), mr); err != nil {
		t.Fatal(err)
	}
	// Start again: 409 naming the phase.
	r = f.do("POST", fraud+"/start", engToken, `{"candidate":"v3"}`)
	if r.status != 409 || r.body["phase"] != "Progressing" || !strings.Contains(r.body["detail"].(string), "is Progressing") {
		t.Fatalf("start while progressing: %d %s", r.status, r.raw)
	}
	// Resume is not allowed while progressing: the answer is the table's.
	want := "ml/fraud: " + v1alpha1.ActionAllowed(v1alpha1.IntentResume, v1alpha1.StateOf(f.rollout("ml", "fraud")))
	if r := f.do("POST", fraud+"/resume", engToken, ``); r.status != 409 || r.body["title"] != "Action not allowed in this phase" || r.body["detail"] != want {
		t.Fatalf("resume: %d %s, want %q", r.status, r.raw, want)
	}
	// Split with an unknown subset: 422 naming it; nothing changes.
	r = f.do("POST", fraud+"/split", engToken, `{"weights":[{"subset":"v1","weight":50},{"subset":"v9","weight":50}]}`)
	if r.status != 422 || r.body["field"] != "weights[1].subset" || !strings.Contains(r.body["detail"].(string), `"v9"`) {
		t.Fatalf("split unknown: %d %s", r.status, r.raw)
	}
	if f.rollout("ml", "fraud").Spec.Intent.ID != in.ID {
		t.Fatal("refused split changed the intent")
	}
	// A good split with an idempotency key, twice: one intent.
	body := `{"weights":[{"subset":"v1","weight":70},{"subset":"v2","weight":30}],"reason":"A/B"}`
	r = f.do("POST", fraud+"/split", engToken, body, IdempotencyKeyHeader, "ci-42")
	if r.status != 202 {
		t.Fatalf("split: %d %s", r.status, r.raw)
	}
	split := f.rollout("ml", "fraud").Spec.Intent
	if !strings.HasPrefix(split.ID, "idem-") || len(split.Weights) != 2 || split.Weights[1].Weight != 30 {
		t.Fatalf("split intent %+v", split)
	}
	r = f.do("POST", fraud+"/split", engToken, body, IdempotencyKeyHeader, "ci-42")
	if r.status != 202 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("split replay: %d %s", r.status, r.raw)
	}
	// Same key, different request: 422.
	r = f.do("POST", fraud+"/rollback", engToken, `{}`, IdempotencyKeyHeader, "ci-42")
	if d, _ := r.body["detail"].(string); r.status != 422 || r.body["field"] != IdempotencyKeyHeader || !strings.Contains(d, `Idempotency-Key "ci-42"`) {
		t.Fatalf("key reuse: %d %s", r.status, r.raw)
	}
	// A rollback without the key supersedes the pending split.
	r = f.do("POST", fraud+"/rollback", engToken, `{"reason":"bad"}`)
	if got := f.rollout("ml", "fraud").Spec.Intent; r.status != 202 || got.Action != v1alpha1.IntentRollback ||
		got.Supersedes == nil || got.Supersedes.ID != split.ID || got.Supersedes.Action != v1alpha1.IntentSplit || got.Supersedes.Actor != "alice" {
		t.Fatalf("rollback over a pending split: %d %s", r.status, r.raw)
	}
	said := false
	for len(f.rec.Events) > 0 {
		if e := <-f.rec.Events; strings.Contains(e, "requested rollback") {
			said = strings.Contains(e, "superseding the pending split by alice (intent "+split.ID+")")
		}
	}
	if !said {
		t.Fatal("the rollback's Event does not say what it superseded")
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t, nil, func(c *Config) { c.MaxBodyBytes = 1024 }, newRollout("ml", "fraud", v1alpha1.PhaseProgressing))
	tests := map[string]struct {
		path, body, ctype string
		status            int
		field, detail     string
	}{
		"malformed":      {path: "/rollback", body: `{"reason":`, status: 400, detail: "ends early"},
		"unknown field":  {path: "/rollback", body: `{"reason":"x","force":true}`, status: 400, field: "force"},
		"fractional":     {path: "/split", body: `{"weights":[{"subset":"v1","weight":70.5},{"subset":"v2","weight":29.5}]}`, status: 422, field: "weights[0].weight", detail: "fractional"},
		"negative":       {path: "/split", body: `{"weights":[{"subset":"v1","weight":-5},{"subset":"v2","weight":105}]}`, status: 422, field: "weights[0].weight", detail: "negative"},
		"sum":            {path: "/split", body: `{"weights":[{"subset":"v1","weight":50},{"subset":"v2","weight":40}]}`, status: 422, field: "weights", detail: "sum to 90"},
		"too large":      {path: "/rollback", body: `{"reason":"` + strings.Repeat("x", 2000) + `"}`, status: 413},
		"not json":       {path: "/rollback", body: `reason=x`, ctype: "application/x-www-form-urlencoded", status: 415},
		"unknown action": {path: "/explode", body: `{}`, status: 404},
		"bad key":        {path: "/rollback", body: `{}`, status: 400},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", f.url+fraud+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+engToken)
			ct := tc.ctype
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			if name == "bad key" {
				req.Header.Set(IdempotencyKeyHeader, "caf\u00e9")
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var p map[string]any
			_ = json.NewDecoder(res.Body).Decode(&p)
			if res.StatusCode != tc.status || res.Header.Get("Content-Type") != ProblemContentType {
				t.Fatalf("status %d (%s), want %d: %v", res.StatusCode, res.Header.Get("Content-Type"), tc.status, p)
			}
			if tc.field != "" && p["field"] != tc.field {
				t.Fatalf("field %v, want %s: %v", p["field"], tc.field, p)
			}
			if d, _ := p["detail"].(string); !strings.Contains(d, tc.detail) || d == "" || p["title"] == "" {
				t.Fatalf("detail %q, want %q", d, tc.detail)
			}
		})
	}
	if f.rollout("ml", "fraud").Spec.Intent != nil {
		t.Fatal("bad input changed the rollout")
	}
}

func TestConflictRetried(t *testing.T) {
	conflicts := 0
	funcs := &interceptor.Funcs{Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
		if conflicts < 2 {
			conflicts++
			return apierrors.NewConflict(schema.GroupResource{Group: "fulcrum.dev", Resource: "modelrollouts"}, obj.GetName(), fmt.Errorf("changed"))
		}
		return c.Update(ctx, obj, opts...)
	}}
	f := newFixture(t, funcs, nil, newRollout("ml", "fraud", v1alpha1.PhaseProgressing))
	r := f.do("POST", fraud+"/rollback", engToken, `{"reason":"bad"}`)
	if r.status != 202 || conflicts != 2 || f.rollout("ml", "fraud").Spec.Intent.Action != v1alpha1.IntentRollback {
		t.Fatalf("after %d conflicts: %d %s", conflicts, r.status, r.raw)
	}

	always := &interceptor.Funcs{Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
		return apierrors.NewConflict(schema.GroupResource{Group: "fulcrum.dev", Resource: "modelrollouts"}, obj.GetName(), fmt.Errorf("changed"))
	}}
	f = newFixture(t, always, nil, newRollout("ml", "fraud", v1alpha1.PhaseProgressing))
	r = f.do("POST", fraud+"/rollback", engToken, `{}`)
	if r.status != 409 || r.body["current"] == nil {
		t.Fatalf("persistent conflict: %d %s", r.status, r.raw)
	}
}
