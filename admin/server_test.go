package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllertest"

	"github.com/fulcrum-ml/fulcrum/admin/auth"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// fakeAuthn maps tokens to users.
type fakeAuthn map[string]auth.User

func (f fakeAuthn) AuthenticateToken(_ context.Context, tok string) (auth.User, bool, error) {
	u, ok := f[tok]
	return u, ok, nil
}

// fakeAuthz allows verbs by group, cluster-wide.
type fakeAuthz map[string][]string

func (f fakeAuthz) Authorize(_ context.Context, u auth.User, a auth.Attributes) (auth.Decision, error) {
	for _, g := range u.Groups {
		if slices.Contains(f[g], a.Verb) {
			return auth.Decision{Allowed: true}, nil
		}
	}
	return auth.Decision{}, nil
}

type fakeSubsets map[string][]string

func (f fakeSubsets) Versions(_ context.Context, mr *v1alpha1.ModelRollout) ([]string, error) {
	s, ok := f[mr.Namespace+"/"+mr.Spec.DestinationRule]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: "networking.istio.io", Resource: "destinationrules"}, mr.Spec.DestinationRule)
	}
	return s, nil
}

const (
	viewerToken = "viewer-token"
	engToken    = "eng-token"
)

type fixture struct {
	t   *testing.T
	url string
	cl  client.Client
	inf *controllertest.FakeInformer
	rec *events.FakeRecorder
	clk *clocktesting.FakeClock
	srv *Server
}

func testScheme(t testing.TB) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func newRollout(ns, name string, phase v1alpha1.Phase) *v1alpha1.ModelRollout {
	return &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.ModelRolloutSpec{DestinationRule: name, Stable: "v1", VirtualService: &v1alpha1.VirtualServiceRef{Name: name}},
		Status:     v1alpha1.ModelRolloutStatus{Phase: phase},
	}
}

func newFixture(t *testing.T, funcs *interceptor.Funcs, cfgTune func(*Config), objs ...client.Object) *fixture {
	t.Helper()
	sch := testScheme(t)
	b := fake.NewClientBuilder().WithScheme(sch).WithObjects(objs...).WithStatusSubresource(&v1alpha1.ModelRollout{})
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	f := &fixture{t: t, cl: b.Build(), rec: events.NewFakeRecorder(100), clk: clocktesting.NewFakeClock(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC))}
	infs := &informertest.FakeInformers{Scheme: sch}
	cfg := Config{
		Client:    f.cl,
		Informers: infs,
		Versions:  fakeSubsets{"ml/fraud": {"v1", "v2", "v3"}},
		Authenticator: fakeAuthn{
			viewerToken: {Name: "vera", Groups: []string{"viewers"}},
			engToken:    {Name: "alice", Groups: []string{"ml-engineers"}},
		},
		Authorizer: fakeAuthz{
			"viewers":      {"get", "list"},
			"ml-engineers": {"get", "list", "start", "split", "promote", "rollback", "pause"},
		},
		Recorder:          f.rec,
		Clock:             f.clk,
		RateLimit:         rate.Inf,
		HeartbeatInterval: time.Second,
	}
	if cfgTune != nil {
		cfgTune(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := srv.startEvents(ctx); err != nil {
		t.Fatal(err)
	}
	f.inf, _ = infs.FakeInformerFor(ctx, &v1alpha1.ModelRollout{})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	f.url = hs.URL
	return f
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (f *fixture) do(method, path, token, body string, hdr ...string) response {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func (f *fixture) rollout(ns, name string) *v1alpha1.ModelRollout {
	var mr v1alpha1.ModelRollout
	if err := f.cl.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &mr); err != nil {
		f.t.Fatal(err)
	}
	return &mr
}

const fraud = "/api/v1/namespaces/ml/rollouts/fraud"

func TestReads(t *testing.T) {
	mr := newRollout("ml", "fraud", v1alpha1.PhaseProgressing)
	mr.Status.History = []v1alpha1.HistoryEntry{{Type: "Started", Actor: "alice", Reason: "go"}}
	mr.Status.HistoryDropped = 3
	mr.Status.Scaling = &v1alpha1.ScalingStatus{Changes: []v1alpha1.ScaleChange{{Subset: "v2", Kind: v1alpha1.KindHPA, Name: "fraud-v2",
		Field: v1alpha1.FieldMinReplicas, Original: 2, Set: 5, Reason: "step 3 (50%) needs 5 Ready pods"}}}
	f := newFixture(t, nil, nil, mr, newRollout("ml", "churn", ""), newRollout("other", "x", ""))

	r := f.do("GET", "/api/v1/rollouts", viewerToken, "")
	items, _ := r.body["items"].([]any)
	if r.status != 200 || len(items) != 3 {
		t.Fatalf("list all: %d %s", r.status, r.raw)
	}
	first := items[0].(map[string]any)
	if first["kind"] != "ModelRollout" || first["apiVersion"] != "fulcrum.dev/v1alpha1" || first["metadata"].(map[string]any)["name"] != "churn" {
		t.Fatalf("list item not the API shape or not sorted: %v", first)
	}
	if r := f.do("GET", "/api/v1/rollouts?namespace=ml", viewerToken, ""); len(r.body["items"].([]any)) != 2 {
		t.Fatalf("list ml: %s", r.raw)
	}
	r = f.do("GET", fraud, viewerToken, "")
	if r.status != 200 || r.body["status"].(map[string]any)["phase"] != "Progressing" {
		t.Fatalf("get: %d %s", r.status, r.raw)
	}
	// What Fulcrum scaled is part of the rollout, with the value it replaced.
	sc, _ := r.body["status"].(map[string]any)["scaling"].(map[string]any)
	if ch, _ := sc["changes"].([]any); len(ch) != 1 || ch[0].(map[string]any)["original"] != float64(2) || ch[0].(map[string]any)["set"] != float64(5) {
		t.Fatalf("status.scaling in the API: %v", sc)
	}
	// The actions the phase/action table allows now, with the reason for
	// those it does not.
	actions := r.body["actions"].(map[string]any)
	want := v1alpha1.ActionAllowed(v1alpha1.IntentResume, v1alpha1.StateOf(mr))
	if len(actions) != 7 || actions["pause"].(map[string]any)["allowed"] != true || actions["resume"].(map[string]any)["allowed"] != false ||
		actions["resume"].(map[string]any)["reason"] != want {
		t.Fatalf("actions %v, want resume refused with %q", actions, want)
	}
	r = f.do("GET", fraud+"/history", viewerToken, "")
	if r.status != 200 || r.body["dropped"].(float64) != 3 || len(r.body["items"].([]any)) != 1 {
		t.Fatalf("history: %s", r.raw)
	}
	r = f.do("GET", "/api/v1/namespaces/ml/rollouts/nope", viewerToken, "")
	if r.status != 404 || r.header.Get("Content-Type") != ProblemContentType || !strings.Contains(r.body["detail"].(string), "ml/nope does not exist") {
		t.Fatalf("404: %d %s", r.status, r.raw)
	}
	if r.header.Get(RequestIDHeader) == "" || r.body["requestId"] != r.header.Get(RequestIDHeader) {
		t.Fatalf("request id missing: %v %v", r.header, r.body)
	}
}

func TestAuthErrors(t *testing.T) {
	f := newFixture(t, nil, nil, newRollout("ml", "fraud", v1alpha1.PhaseProgressing))
	r := f.do("GET", "/api/v1/rollouts", "", "")
	if r.status != 401 || r.header.Get("WWW-Authenticate") == "" || !strings.Contains(r.body["detail"].(string), "no bearer token") {
		t.Fatalf("no token: %d %s", r.status, r.raw)
	}
	if r := f.do("GET", "/api/v1/rollouts", "wrong", ""); r.status != 401 || !strings.Contains(r.body["detail"].(string), "not accepted") {
		t.Fatalf("bad token: %d %s", r.status, r.raw)
	}
	r = f.do("POST", fraud+"/rollback", viewerToken, `{"reason":"x"}`)
	want := "user vera may not 'rollback' modelrollouts.fulcrum.dev in namespace ml: bind the fulcrum-ml-engineer role"
	if r.status != 403 || !strings.Contains(r.body["detail"].(string), want) {
		t.Fatalf("403: %d %s", r.status, r.raw)
	}
	if f.rollout("ml", "fraud").Spec.Intent != nil {
		t.Fatal("a denied request changed the rollout")
	}
	r = f.do("GET", "/api/v1/whoami?namespace=ml", viewerToken, "")
	can := r.body["can"].(map[string]any)
	if r.status != 200 || r.body["user"] != "vera" || can["get"] != true || can["list"] != true || can["rollback"] != false || can["resume"] != false {
		t.Fatalf("whoami viewer: %s", r.raw)
	}
	r = f.do("GET", "/api/v1/whoami", engToken, "")
	if can := r.body["can"].(map[string]any); can["rollback"] != true || can["resume"] != true {
		t.Fatalf("whoami engineer: %s", r.raw)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, nil, func(c *Config) { c.RateLimit, c.RateBurst = 1, 2 }, newRollout("ml", "fraud", v1alpha1.PhaseProgressing))
	codes := []int{}
	for range 4 {
		codes = append(codes, f.do("GET", fraud, viewerToken, "").status)
	}
	if !slices.Equal(codes, []int{200, 200, 429, 429}) {
		t.Fatalf("codes %v", codes)
	}
	if r := f.do("GET", "/healthz", "", ""); r.status != 200 {
		t.Fatal("probes must not be rate limited")
	}
}

// TestMetricsNotOnAdminPort: /metrics names every namespace, rollout,
// subset and phase, so the admin port, which anyone who can reach it may
// call without a token, does not serve it (issue 14, finding 4). The
// metrics port serves the registry the admin metrics are registered in.
func TestMetricsNotOnAdminPort(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, nil, func(c *Config) { c.Registry = reg }, newRollout("ml", "fraud", v1alpha1.PhaseProgressing))
	f.do("GET", fraud, viewerToken, "")
	f.do("GET", fraud, "", "")
	if r := f.do("GET", "/metrics", "", ""); r.status != http.StatusNotFound || strings.Contains(r.raw, "fulcrum_") {
		t.Fatalf("GET /metrics on the admin port: %d %s; want 404 without metrics", r.status, r.raw)
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`fulcrum_admin_requests_total{code="200",route="/api/v1/namespaces/{namespace}/rollouts/{name}"} 1`,
		`fulcrum_admin_requests_total{code="401",route="/api/v1/namespaces/{namespace}/rollouts/{name}"} 1`,
		`fulcrum_admin_request_duration_seconds_bucket`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Fatalf("metrics lack %s:\n%s", want, rec.Body.String())
		}
	}
}

func TestOpenAPI(t *testing.T) {
	f := newFixture(t, nil, nil, newRollout("ml", "fraud", v1alpha1.PhaseProgressing))
	r := f.do("GET", "/openapi.json", "", "")
	// Every route of the router is in the document, and nothing else.
	routes, err := f.srv.Routes()
	if err != nil {
		t.Fatal(err)
	}
	inRouter := map[string]bool{}
	for _, rt := range routes {
		inRouter[rt.String()] = true
	}
	inDoc := map[string]bool{}
	for p, ops := range r.body["paths"].(map[string]any) {
		for m := range ops.(map[string]any) {
			inDoc[strings.ToUpper(m)+" "+p] = true
		}
	}
	for rt := range inRouter {
		if !inDoc[rt] {
			t.Errorf("openapi.json lacks %s", rt)
		}
	}
	for rt := range inDoc {
		if !inRouter[rt] {
			t.Errorf("openapi.json has %s, which the router does not serve", rt)
		}
	}
	// Every member of a rollout as the API shows it is in the schema.
	props := r.body["components"].(map[string]any)["schemas"].(map[string]any)["ModelRollout"].(map[string]any)["properties"].(map[string]any)
	for k := range f.do("GET", fraud, viewerToken, "").body {
		if props[k] == nil {
			t.Errorf("openapi's ModelRollout lacks %q", k)
		}
	}
}

func TestUIMounted(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("dashboard " + r.URL.Path)) })
	f := newFixture(t, nil, func(c *Config) { c.UI = ui })
	if r := f.do("GET", "/rollouts/ml/fraud", "", ""); r.status != 200 || r.raw != "dashboard /rollouts/ml/fraud" {
		t.Fatalf("ui: %d %q", r.status, r.raw)
	}
	if r := f.do("GET", "/api/v1/nope", viewerToken, ""); r.status != 404 || r.header.Get("Content-Type") != ProblemContentType {
		t.Fatalf("api 404 must not fall to the UI: %d %s", r.status, r.raw)
	}
}

func TestEventStream(t *testing.T) {
	mr := newRollout("ml", "fraud", v1alpha1.PhaseProgressing)
	f := newFixture(t, nil, nil, mr, newRollout("other", "x", ""))
	req, _ := http.NewRequest("GET", f.url+"/api/v1/events?namespace=ml&access_token="+viewerToken, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d", res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	next := func() (string, map[string]any) {
		t.Helper()
		var ev string
		for sc.Scan() {
			line := sc.Text()
			if e, ok := strings.CutPrefix(line, "event: "); ok {
				ev = e
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				var m map[string]any
				_ = json.Unmarshal([]byte(d), &m)
				return ev, m
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", nil
	}
	if ev, m := next(); ev != EventRollout || m["metadata"].(map[string]any)["name"] != "fraud" {
		t.Fatalf("snapshot: %s %v", ev, m)
	}
	if ev, _ := next(); ev != EventSynced {
		t.Fatalf("want synced, got %s", ev)
	}
	// A change in another namespace is filtered out; one in ml comes through.
	f.inf.Update(newRollout("other", "x", ""), newRollout("other", "x", v1alpha1.PhasePaused))
	upd := mr.DeepCopy()
	upd.Status.Phase = v1alpha1.PhasePaused
	f.inf.Update(mr, upd)
	if ev, m := next(); ev != EventRollout || m["status"].(map[string]any)["phase"] != "Paused" || m["metadata"].(map[string]any)["namespace"] != "ml" {
		t.Fatalf("update: %s %v", ev, m)
	}
	f.inf.Delete(upd)
	if ev, m := next(); ev != EventDeleted || m["name"] != "fraud" || m["namespace"] != "ml" {
		t.Fatalf("delete: %s %v", ev, m)
	}
	// Heartbeats follow the injected clock.
	deadline := time.Now().Add(5 * time.Second)
	go func() {
		for time.Now().Before(deadline) && f.clk.HasWaiters() == false {
			time.Sleep(5 * time.Millisecond)
		}
		f.clk.Step(time.Second)
	}()
	if ev, m := next(); ev != EventHeartbeat || m["time"] == nil {
		t.Fatalf("heartbeat: %s %v", ev, m)
	}
	// Headers win over query tokens; without list access the stream is refused.
	if r := f.do("GET", "/api/v1/events", "nobody", ""); r.status != 401 {
		t.Fatalf("stream without valid token: %d", r.status)
	}
}
