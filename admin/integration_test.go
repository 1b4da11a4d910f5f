package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/admin"
	"github.com/fulcrum-ml/fulcrum/admin/admintest"
	fclient "github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

var env *localenv.Env

func TestMain(m *testing.M) {
	opts := localenv.APIServerOnly()
	for _, u := range admintest.TestUsers {
		opts.Users = append(opts.Users, localenv.User{Name: u.Name, Groups: u.Groups})
	}
	os.Exit(localenv.Main(m, opts, &env))
}

// tokens maps user names to their bearer tokens.
func tokens(t *testing.T) map[string]string {
	out := map[string]string{}
	for _, u := range env.Users {
		out[u.Name] = u.Token
	}
	return out
}

func setup(t *testing.T) (*admintest.Running, map[string]string) {
	t.Helper()
	if env == nil {
		t.Skip("needs the local Kubernetes environment (not under -short)")
	}
	ctx := context.Background()
	if err := admintest.InstallRoles(ctx, env.Client); err != nil {
		t.Fatal(err)
	}
	return admintest.Start(t, env.Config, admintest.Options{}), tokens(t)
}

func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns, err := env.CreateNamespace(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func call(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return res.StatusCode, m
}

// TestEveryRouteAllowAndDeny: with the API server's TokenReview and
// SubjectAccessReview and the roles of manifests/install, every route
// admits exactly the roles that hold its verb.
func TestEveryRouteAllowAndDeny(t *testing.T) {
	run, tok := setup(t)
	ctx := context.Background()
	ns := newNamespace(t, "rbac")
	if _, err := run.Fixture(ctx, ns, v1alpha1.PhaseProgressing); err != nil {
		t.Fatal(err)
	}
	one := fmt.Sprintf("%s/api/v1/namespaces/%s/rollouts/fraud", run.URL, ns)
	type route struct {
		method, url, body string
		readOnly          bool
	}
	routes := map[string]route{
		"list all":   {"GET", run.URL + "/api/v1/rollouts", "", true},
		"list ns":    {"GET", run.URL + "/api/v1/rollouts?namespace=" + ns, "", true},
		"get":        {"GET", one, "", true},
		"history":    {"GET", one + "/history", "", true},
		"events all": {"GET", run.URL + "/api/v1/events?namespace=" + ns, "", true},
		"events one": {"GET", one + "/events", "", true},
		"pause":      {"POST", one + "/pause", `{"reason":"rbac test"}`, false},
		"resume":     {"POST", one + "/resume", `{}`, false},
		"split":      {"POST", one + "/split", `{"weights":[{"subset":"v1","weight":60},{"subset":"v2","weight":40}]}`, false},
		"promote":    {"POST", one + "/promote", `{}`, false},
		"rollback":   {"POST", one + "/rollback", `{}`, false},
		"start":      {"POST", one + "/start", `{"candidate":"v2"}`, false},
		"approve":    {"POST", one + "/approve", `{"reason":"rbac test"}`, false},
	}
	allowed := map[string]func(route) bool{
		"vera":   func(r route) bool { return r.readOnly },
		"alice":  func(route) bool { return true },
		"ada":    func(route) bool { return true },
		"nobody": func(route) bool { return false },
	}
	for name, r := range routes {
		for user, may := range allowed {
			t.Run(name+"/"+user, func(t *testing.T) {
				status := statusOf(t, r.method, r.url, tok[user], r.body)
				if may(r) {
					// Authorization passed; the action itself may still
					// meet a phase or pending-intent 409.
					if status == 401 || status == 403 || status >= 500 {
						t.Fatalf("%s %s as %s: %d, want allowed", r.method, r.url, user, status)
					}
					if status == 202 {
						// Play the controller so the next action is not pending.
						if err := run.Observe(ctx, ns, "fraud", v1alpha1.PhaseProgressing); err != nil {
							t.Fatal(err)
						}
					}
				} else if status != 403 {
					t.Fatalf("%s %s as %s: %d, want 403", r.method, r.url, user, status)
				}
			})
		}
	}
	// Unauthenticated and bad tokens: 401 from the real TokenReview.
	if s := statusOf(t, "GET", one, "", ""); s != 401 {
		t.Fatalf("no token: %d", s)
	}
	if s := statusOf(t, "GET", one, "not-a-token", ""); s != 401 {
		t.Fatalf("bad token: %d", s)
	}
	// The 403 names the verb, namespace and role.
	_, p := call(t, "POST", one+"/rollback", tok["vera"], `{}`)
	want := fmt.Sprintf("user vera may not 'rollback' modelrollouts.fulcrum.dev in namespace %s: bind the fulcrum-ml-engineer role", ns)
	if d, _ := p["detail"].(string); !strings.Contains(d, want) {
		t.Fatalf("403 detail %q", d)
	}
}

// statusOf does one request; streams are closed as soon as headers arrive.
func statusOf(t *testing.T, method, url, token, body string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestWhoAmIPerRole(t *testing.T) {
	run, tok := setup(t)
	want := map[string]map[string]bool{
		"vera":   {"get": true, "list": true, "start": false, "rollback": false, "pause": false, "resume": false},
		"alice":  {"get": true, "list": true, "start": true, "split": true, "promote": true, "rollback": true, "pause": true, "resume": true, "approve": true},
		"ada":    {"get": true, "list": true, "start": true, "rollback": true, "approve": true},
		"ci":     {"get": true, "start": true, "rollback": true, "pause": true, "approve": false, "promote": false, "split": false},
		"nobody": {"get": false, "list": false, "start": false},
	}
	for user, can := range want {
		c := &fclient.Client{Server: run.URL, Token: tok[user]}
		w, err := c.WhoAmI(context.Background(), "ml")
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		if w.User != user {
			t.Fatalf("whoami user %q, want %q", w.User, user)
		}
		for verb, v := range can {
			if w.Can[verb] != v {
				t.Errorf("%s can %s = %v, want %v", user, verb, w.Can[verb], v)
			}
		}
	}
}

// TestActionLifecycle drives a rollout through the real API server: the
// DestinationRule's subsets are checked, the CRD accepts the intent, the
// Event is recorded, the stream reports the controller's changes, and the
// actor and reason reach the history.
func TestActionLifecycle(t *testing.T) {
	run, tok := setup(t)
	ctx := context.Background()
	ns := newNamespace(t, "life")
	if _, err := run.Fixture(ctx, ns, v1alpha1.PhaseStable); err != nil {
		t.Fatal(err)
	}
	alice := &fclient.Client{Server: run.URL, Token: tok["alice"]}

	if _, err := alice.Act(ctx, ns, "fraud", "start", fclient.ActionRequest{Candidate: "v9"}); !fclient.IsStatus(err, 422) || !strings.Contains(err.Error(), `"v9" is not a subset of DestinationRule`) {
		t.Fatalf("unknown candidate: %v", err)
	}
	if _, err := alice.Act(ctx, ns, "fraud", "promote", fclient.ActionRequest{}); !fclient.IsStatus(err, 409) || !strings.Contains(err.Error(), "is Stable") {
		t.Fatalf("promote while stable: %v", err)
	}

	events := make(chan fclient.Event, 100)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = alice.Watch(sctx, ns, "fraud", func(ev fclient.Event) bool { events <- ev; return true })
	}()
	waitEvent(t, events, func(ev fclient.Event) bool { return ev.Type == admin.EventSynced })

	mr, err := alice.Act(ctx, ns, "fraud", "start", fclient.ActionRequest{Candidate: "v2", Reason: "ship v2", IdempotencyKey: "job-1"})
	if err != nil {
		t.Fatal(err)
	}
	id := mr.Spec.Intent.ID
	if mr.Spec.Candidate != "v2" || mr.Spec.Intent.Actor != "alice" || !strings.HasPrefix(id, "idem-") {
		t.Fatalf("start: %+v", mr.Spec)
	}
	// The same CI job retried: nothing new.
	again, err := alice.Act(ctx, ns, "fraud", "start", fclient.ActionRequest{Candidate: "v2", Reason: "ship v2", IdempotencyKey: "job-1"})
	if err != nil || again.Spec.Intent.ID != id || again.ResourceVersion != mr.ResourceVersion {
		t.Fatalf("replay changed the rollout: %v", err)
	}
	// Pending: another action gets 409 with Retry-After.
	_, err = alice.Act(ctx, ns, "fraud", "pause", fclient.ActionRequest{})
	var p *fclient.Problem
	if !fclient.IsStatus(err, 409) || !asProblem(err, &p) || p.RetryAfter != 2*time.Second || p.Current == nil {
		t.Fatalf("pending: %v", err)
	}

	if err := run.Observe(ctx, ns, "fraud", v1alpha1.PhaseProgressing, v1alpha1.SubsetWeight{Subset: "v1", Weight: 95}, v1alpha1.SubsetWeight{Subset: "v2", Weight: 5}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, func(ev fclient.Event) bool {
		return ev.Type == admin.EventRollout && ev.Rollout.Status.Phase == v1alpha1.PhaseProgressing && ev.Rollout.Status.ObservedIntent == id
	})

	if _, err := alice.Act(ctx, ns, "fraud", "rollback", fclient.ActionRequest{Reason: "p99 too high"}); err != nil {
		t.Fatal(err)
	}
	if err := run.Observe(ctx, ns, "fraud", v1alpha1.PhaseRolledBack, v1alpha1.SubsetWeight{Subset: "v1", Weight: 100}, v1alpha1.SubsetWeight{Subset: "v2", Weight: 0}); err != nil {
		t.Fatal(err)
	}
	// Reads come from the informer cache: wait until it has the change.
	waitEvent(t, events, func(ev fclient.Event) bool {
		return ev.Type == admin.EventRollout && ev.Rollout.Status.Phase == v1alpha1.PhaseRolledBack
	})
	h, err := alice.History(ctx, ns, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Items) != 2 || h.Items[1].Actor != "alice" || h.Items[1].Reason != "p99 too high" || h.Items[1].Type != "RolledBack" {
		t.Fatalf("history %+v", h.Items)
	}
	// An Event with the constant reason for each accepted action.
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := env.Client.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs.Items {
			if e.Reason == admin.EventReasonActionRequested && e.Regarding.Name == "fraud" && strings.Contains(e.Note, "alice requested") {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want 2 ActionRequested events, got %d", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Deleting the rollout reaches the stream.
	if err := run.Client.Delete(ctx, &v1alpha1.ModelRollout{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fraud"}}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, func(ev fclient.Event) bool {
		return ev.Type == admin.EventDeleted && ev.Name == "fraud" && ev.Namespace == ns
	})
	if _, err := alice.Get(ctx, ns, "fraud"); !fclient.IsStatus(err, 404) {
		t.Fatalf("get deleted: %v", err)
	}
	var gone v1alpha1.ModelRollout
	if err := run.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fraud"}, &gone); err == nil {
		t.Fatal("rollout still there")
	}
}

func asProblem(err error, p **fclient.Problem) bool {
	pp, ok := err.(*fclient.Problem)
	*p = pp
	return ok
}

func waitEvent(t *testing.T, ch <-chan fclient.Event, match func(fclient.Event) bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-ch:
			if match(ev) {
				return
			}
		case <-timeout:
			t.Fatal("event not seen within 20s")
		}
	}
}

// TestPendingIntents: what a request meets while another is pending, and an
// Idempotency-Key reused later, with the CRD's schema and the API server in
// the loop (spec.intent.supersedes is stored as written).
func TestPendingIntents(t *testing.T) {
	run, tok := setup(t)
	ctx := context.Background()
	alice := &fclient.Client{Server: run.URL, Token: tok["alice"]}
	act := func(ns, action string, req fclient.ActionRequest) *v1alpha1.ModelRollout {
		t.Helper()
		mr, err := alice.Act(ctx, ns, "fraud", action, req)
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		return mr
	}
	refused := func(ns, action string, req fclient.ActionRequest, status int) *fclient.Problem {
		t.Helper()
		_, err := alice.Act(ctx, ns, "fraud", action, req)
		var p *fclient.Problem
		if !errors.As(err, &p) || p.Status != status {
			t.Fatalf("%s: %v, want %d", action, err, status)
		}
		return p
	}
	stored := func(ns string) *v1alpha1.ModelRollout {
		t.Helper()
		var mr v1alpha1.ModelRollout
		if err := run.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fraud"}, &mr); err != nil {
			t.Fatal(err)
		}
		return &mr
	}
	observe := func(ns string, p v1alpha1.Phase, w ...any) {
		t.Helper()
		var ws []v1alpha1.SubsetWeight
		for i := 0; i+1 < len(w); i += 2 {
			ws = append(ws, v1alpha1.SubsetWeight{Subset: w[i].(string), Weight: int32(w[i+1].(int))})
		}
		if err := run.Observe(ctx, ns, "fraud", p, ws...); err != nil {
			t.Fatal(err)
		}
	}
	// rollingOut is a namespace whose rollout of v2 the controller applied.
	rollingOut := func(t *testing.T) string {
		t.Helper()
		ns := newNamespace(t, "pending")
		if _, err := run.Fixture(ctx, ns, v1alpha1.PhaseStable); err != nil {
			t.Fatal(err)
		}
		act(ns, "start", fclient.ActionRequest{Candidate: "v2"})
		observe(ns, v1alpha1.PhaseProgressing, "v1", 95, "v2", 5)
		return ns
	}

	t.Run("rollback over a pending promote", func(t *testing.T) {
		ns := rollingOut(t)
		promote := act(ns, "promote", fclient.ActionRequest{Reason: "looks good"}).Spec.Intent
		got := act(ns, "rollback", fclient.ActionRequest{Reason: "no pods"}).Spec.Intent
		want := v1alpha1.SupersededIntent{ID: promote.ID, Action: v1alpha1.IntentPromote, Actor: "alice"}
		mr := stored(ns)
		if in := mr.Spec.Intent; in.ID != got.ID || in.Action != v1alpha1.IntentRollback || in.Supersedes == nil || *in.Supersedes != want || mr.Spec.Candidate != "v2" {
			t.Fatalf("stored intent %+v (supersedes %+v), candidate %q; want a rollback superseding %+v", in, in.Supersedes, mr.Spec.Candidate, want)
		}
		// The same rollback again is the no-op.
		if again := act(ns, "rollback", fclient.ActionRequest{}); again.Spec.Intent.ID != got.ID {
			t.Fatalf("repeated rollback wrote intent %s", again.Spec.Intent.ID)
		}
	})

	t.Run("rollback over a pending start restores spec.candidate", func(t *testing.T) {
		ns := newNamespace(t, "pending")
		if _, err := run.Fixture(ctx, ns, v1alpha1.PhaseStable); err != nil {
			t.Fatal(err)
		}
		start := act(ns, "start", fclient.ActionRequest{Candidate: "v2"}).Spec.Intent
		act(ns, "rollback", fclient.ActionRequest{Reason: "wrong build"})
		mr := stored(ns)
		if s := mr.Spec.Intent.Supersedes; mr.Spec.Candidate != "" || s == nil || s.ID != start.ID || s.Action != v1alpha1.IntentStart {
			t.Fatalf("spec.candidate %q, supersedes %+v: want the start cancelled", mr.Spec.Candidate, s)
		}
	})

	t.Run("rollback over a pending start in a manual split keeps the rollout's candidate", func(t *testing.T) {
		ns := rollingOut(t)
		act(ns, "split", fclient.ActionRequest{Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 60}, {Subset: "v2", Weight: 40}}})
		observe(ns, v1alpha1.PhaseManualSplit, "v1", 60, "v2", 40)
		act(ns, "start", fclient.ActionRequest{Candidate: "v3"}) // allowed from ManualSplit
		act(ns, "rollback", fclient.ActionRequest{})
		if mr := stored(ns); mr.Spec.Candidate != "v2" || mr.Spec.Intent.Supersedes == nil {
			t.Fatalf("spec.candidate %q, supersedes %+v: want v2, the rollout the controller knows", mr.Spec.Candidate, mr.Spec.Intent.Supersedes)
		}
	})

	t.Run("start of another candidate over a pending start", func(t *testing.T) {
		ns := newNamespace(t, "pending")
		if _, err := run.Fixture(ctx, ns, v1alpha1.PhaseStable); err != nil {
			t.Fatal(err)
		}
		v2 := act(ns, "start", fclient.ActionRequest{Candidate: "v2"}).Spec.Intent
		p := refused(ns, "start", fclient.ActionRequest{Candidate: "v3"}, 409)
		if !strings.Contains(p.Detail, fmt.Sprintf(`start of candidate "v2" requested by alice (intent %s)`, v2.ID)) || p.RetryAfter != 0 || p.Current == nil {
			t.Fatalf("409 %+v: want the pending start named, no Retry-After", p)
		}
		if again := act(ns, "start", fclient.ActionRequest{Candidate: "v2"}); again.Spec.Intent.ID != v2.ID || stored(ns).Spec.Candidate != "v2" {
			t.Fatal("the same start again must be the no-op")
		}
	})

	t.Run("pause while paused is the table's 409", func(t *testing.T) {
		ns := rollingOut(t)
		act(ns, "pause", fclient.ActionRequest{})
		observe(ns, v1alpha1.PhasePaused)
		p := refused(ns, "pause", fclient.ActionRequest{}, 409)
		want := ns + "/fraud: " + v1alpha1.ActionAllowed(v1alpha1.IntentPause, v1alpha1.StateOf(stored(ns)))
		if p.Title != "Action not allowed in this phase" || p.Detail != want || p.Phase != v1alpha1.PhasePaused {
			t.Fatalf("409 %+v, want detail %q", p, want)
		}
	})

	t.Run("Idempotency-Key reused after its intent was applied and replaced", func(t *testing.T) {
		ns := newNamespace(t, "pending")
		if _, err := run.Fixture(ctx, ns, v1alpha1.PhaseStable); err != nil {
			t.Fatal(err)
		}
		first := act(ns, "start", fclient.ActionRequest{Candidate: "v2", IdempotencyKey: "job-7"}).Spec.Intent
		observe(ns, v1alpha1.PhaseProgressing, "v1", 95, "v2", 5)
		act(ns, "pause", fclient.ActionRequest{})
		observe(ns, v1alpha1.PhasePaused)
		// Only the history still knows the keyed start.
		p := refused(ns, "resume", fclient.ActionRequest{IdempotencyKey: "job-7"}, 422)
		if p.Field != "Idempotency-Key" || !strings.Contains(p.Detail, `Idempotency-Key "job-7"`) || !strings.Contains(p.Detail, first.ID) {
			t.Fatalf("422 %+v", p)
		}
		before := stored(ns)
		if again := act(ns, "start", fclient.ActionRequest{Candidate: "v2", IdempotencyKey: "job-7"}); again.ResourceVersion != before.ResourceVersion {
			t.Fatal("the same keyed start again must be the no-op")
		}
	})
}

// TestRollbackWhenTheMeshIsOffStable: status says stable serves 100% (a
// status write lost after the route write, or a rollout not adopted yet) but
// the VirtualService sends 30% to v2: the rollback is accepted, because the
// API reads the route instead of trusting status alone.
func TestRollbackWhenTheMeshIsOffStable(t *testing.T) {
	run, tok := setup(t)
	ctx := context.Background()
	alice := &fclient.Client{Server: run.URL, Token: tok["alice"]}
	ns := newNamespace(t, "offstable")
	if _, err := run.Fixture(ctx, ns, v1alpha1.PhaseStable); err != nil {
		t.Fatal(err)
	}
	if err := run.Observe(ctx, ns, "fraud", v1alpha1.PhaseStable, v1alpha1.SubsetWeight{Subset: "v1", Weight: 100}); err != nil {
		t.Fatal(err)
	}
	// At stable 100% on the route too, there is nothing to roll back.
	vs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "fraud", "namespace": ns},
		"spec": map[string]any{"hosts": []any{"fraud"}, "http": []any{map[string]any{"route": []any{
			map[string]any{"destination": map[string]any{"host": "fraud", "subset": "v1"}, "weight": int64(100)},
			map[string]any{"destination": map[string]any{"host": "fraud", "subset": "v2"}, "weight": int64(0)},
		}}}},
	}}
	if err := run.Client.Create(ctx, vs); err != nil {
		t.Fatal(err)
	}
	var p *fclient.Problem
	if _, err := alice.Act(ctx, ns, "fraud", "rollback", fclient.ActionRequest{Reason: "nothing"}); !errors.As(err, &p) || p.Status != http.StatusConflict {
		t.Fatalf("rollback at stable 100%%: %v, want 409", err)
	}
	// The route sends 30% to v2: accepted.
	route := vs.Object["spec"].(map[string]any)["http"].([]any)[0].(map[string]any)["route"].([]any)
	route[0].(map[string]any)["weight"], route[1].(map[string]any)["weight"] = int64(70), int64(30)
	if err := run.Client.Update(ctx, vs); err != nil {
		t.Fatal(err)
	}
	mr, err := alice.Act(ctx, ns, "fraud", "rollback", fclient.ActionRequest{Reason: "v2 is on the mesh"})
	if err != nil {
		t.Fatalf("rollback with 30%% on v2: %v", err)
	}
	if mr.Spec.Intent == nil || mr.Spec.Intent.Action != v1alpha1.IntentRollback {
		t.Fatalf("intent %+v", mr.Spec.Intent)
	}
}
