package gates

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
)

// sink is a real HTTP server that records what gates post and answers
// from a script, one answer per request (the last repeats).
type sink struct {
	*httptest.Server
	mu      sync.Mutex
	got     []posted
	answers []answer
	open    atomic.Int32
	maxOpen atomic.Int32
}

type posted struct {
	Method, Path, ContentType, GateID, Auth string
	Body                                    []byte
}

type answer struct {
	status int
	body   string
	delay  time.Duration
}

func newSink(t *testing.T, answers ...answer) *sink {
	t.Helper()
	s := &sink{answers: answers}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.open.Add(1)
		defer s.open.Add(-1)
		for m := s.maxOpen.Load(); n > m && !s.maxOpen.CompareAndSwap(m, n); m = s.maxOpen.Load() {
		}
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, posted{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("X-Fulcrum-Gate-Id"), r.Header.Get("Authorization"), body})
		a := s.answers[min(len(s.got), len(s.answers))-1]
		s.mu.Unlock()
		if a.delay > 0 {
			select {
			case <-time.After(a.delay):
			case <-r.Context().Done():
				return
			}
		}
		if a.status != 0 {
			w.WriteHeader(a.status)
		}
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) posts() []posted {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]posted(nil), s.got...)
}

func startRunner(t *testing.T, cfg Config) *Runner {
	t.Helper()
	r := NewRunner(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// Start sets the base context asynchronously.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		ok := r.base != nil
		r.mu.Unlock()
		if ok {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatal("runner did not start")
		}
		time.Sleep(time.Millisecond)
	}
}

var rolloutKey = types.NamespacedName{Namespace: "ml", Name: "fraud"}

func testPayload() Payload {
	step := int32(1)
	mr := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "fraud", UID: "uid-1"},
		Spec: v1alpha1.ModelRolloutSpec{Stable: "v1", Candidate: "v2",
			Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{Steps: []int32{10, 50, 100}}}},
		Status: v1alpha1.ModelRolloutStatus{Phase: v1alpha1.PhaseProgressing, Candidate: "v2",
			Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 90}, {Subset: "v2", Weight: 10}}},
	}
	run := &v1alpha1.GateRun{Name: "smoke", At: v1alpha1.GateEachStep, Step: &step, Weight: 50, Type: v1alpha1.GateTypeHTTP,
		ID: "0123456789", StartedAt: metav1.NewTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))}
	return NewPayload(mr, run, "fraud")
}

func call(url string, spec v1alpha1.HTTPGate) Call {
	spec.URL = url
	return Call{Key: "0123456789", Rollout: rolloutKey, Spec: spec, Payload: testPayload(), Deadline: time.Now().Add(time.Minute)}
}

// await polls the runner until run key is done, or fails.
func await(t *testing.T, r *Runner, key string) rollout.GateObservation {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, ok := r.Result(key)
		if ok && res.Done {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not done; latest %+v", key, res)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHTTPGate(t *testing.T) {
	fast := metav1.Duration{Duration: 10 * time.Millisecond}
	for name, tc := range map[string]struct {
		answers  []answer
		spec     v1alpha1.HTTPGate
		passed   bool
		attempts int
		message  string
	}{
		"200 passes": {
			answers: []answer{{status: 200}}, passed: true, attempts: 1, message: "attempt 1 of 3: 200 OK",
		},
		"500 then 200 passes on the retry": {
			answers: []answer{{status: 500, body: "warming up"}, {status: 200}},
			spec:    v1alpha1.HTTPGate{RetryBackoff: fast}, passed: true, attempts: 2, message: "attempt 2 of 3: 200 OK",
		},
		"always 503 fails after the retries": {
			answers: []answer{{status: 503}}, spec: v1alpha1.HTTPGate{RetryBackoff: fast, Retries: ptr.To[int32](1)},
			attempts: 2, message: "2 attempt(s) failed; last: 503 Service Unavailable",
		},
		"404 fails at once": {
			answers: []answer{{status: 404, body: "no such check"}}, spec: v1alpha1.HTTPGate{RetryBackoff: fast},
			attempts: 1, message: "404 Not Found, expected 2xx: no such check",
		},
		"a status not expected fails": {
			answers: []answer{{status: 200}}, spec: v1alpha1.HTTPGate{Expect: &v1alpha1.HTTPExpect{Status: []int32{202}}},
			attempts: 1, message: "200 OK, expected 202",
		},
		"verdict pass": {
			answers: []answer{{status: 200, body: `{"verdict":"pass","p99":120}`}},
			spec:    v1alpha1.HTTPGate{Expect: &v1alpha1.HTTPExpect{Verdict: &v1alpha1.JSONVerdict{Field: "verdict"}}},
			passed:  true, attempts: 1, message: `200 OK, verdict is "pass"`,
		},
		"verdict fail is final": {
			answers:  []answer{{status: 200, body: `{"verdict":"fail"}`}},
			spec:     v1alpha1.HTTPGate{RetryBackoff: fast, Expect: &v1alpha1.HTTPExpect{Verdict: &v1alpha1.JSONVerdict{Field: "verdict"}}},
			attempts: 1, message: `200 OK, but verdict is "fail", not "pass"`,
		},
		"nested verdict, numbers and booleans as text": {
			answers: []answer{{status: 200, body: `{"result":{"ok":true}}`}},
			spec:    v1alpha1.HTTPGate{Expect: &v1alpha1.HTTPExpect{Verdict: &v1alpha1.JSONVerdict{Field: "result.ok", Pass: []string{"true"}}}},
			passed:  true, attempts: 1,
		},
		"an answer that is not JSON is retried": {
			answers: []answer{{status: 200, body: "<html>starting</html>"}, {status: 200, body: `{"verdict":"pass"}`}},
			spec:    v1alpha1.HTTPGate{RetryBackoff: fast, Expect: &v1alpha1.HTTPExpect{Verdict: &v1alpha1.JSONVerdict{Field: "verdict"}}},
			passed:  true, attempts: 2,
		},
		"a slow answer times out and is retried": {
			answers: []answer{{status: 200, delay: time.Second}, {status: 200}},
			spec:    v1alpha1.HTTPGate{RetryBackoff: fast, AttemptTimeout: metav1.Duration{Duration: 100 * time.Millisecond}},
			passed:  true, attempts: 2,
		},
		"a redirect is not followed": {
			answers: []answer{{status: 302}}, attempts: 1, message: "302 Found, expected 2xx",
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := newSink(t, tc.answers...)
			r := startRunner(t, Config{})
			if err := r.Ensure(call(s.URL+"/check", tc.spec)); err != nil {
				t.Fatal(err)
			}
			res := await(t, r, "0123456789")
			if res.Passed != tc.passed || int(res.Attempts) != tc.attempts || !strings.Contains(res.Message, tc.message) {
				t.Fatalf("result %+v, want passed %v after %d attempt(s) saying %q", res, tc.passed, tc.attempts, tc.message)
			}
			if n := len(s.posts()); n != tc.attempts {
				t.Fatalf("the sink got %d requests, want %d", n, tc.attempts)
			}
		})
	}
}

// What the sink receives: the payload as JSON, with the attempt counted
// and the run's id the same on every attempt; headers; a template body.
func TestHTTPGatePosts(t *testing.T) {
	s := newSink(t, answer{status: 500}, answer{status: 200})
	r := startRunner(t, Config{})
	c := call(s.URL+"/hook", v1alpha1.HTTPGate{RetryBackoff: metav1.Duration{Duration: 10 * time.Millisecond}})
	c.Headers = http.Header{"Authorization": {"Bearer s3cret"}}
	if err := r.Ensure(c); err != nil {
		t.Fatal(err)
	}
	await(t, r, c.Key)
	got := s.posts()
	for i, p := range got {
		var body Payload
		if err := json.Unmarshal(p.Body, &body); err != nil {
			t.Fatalf("post %d: %v: %s", i, err, p.Body)
		}
		if p.Method != "POST" || p.ContentType != "application/json" || p.GateID != "0123456789" || p.Auth != "Bearer s3cret" {
			t.Errorf("post %d: %+v", i, p)
		}
		if body.Attempt != int32(i+1) || body.ID != "0123456789" || body.Kind != PayloadKind || body.Rollout.Name != "fraud" ||
			body.Candidate != "v2" || body.Step.Number != 2 || body.Step.Of != 3 || body.Step.Weight != 50 || len(body.Weights) != 2 {
			t.Errorf("post %d body %+v", i, body)
		}
	}

	// A template body; GET sends none.
	s2 := newSink(t, answer{status: 200})
	c2 := call(s2.URL+"/t", v1alpha1.HTTPGate{Method: "PUT", Body: `{"text":"{{.Rollout.Name}}: {{.Candidate}} at {{.Step.Weight}}%","weights":{{json .Weights}}}`})
	c2.Key = "t1"
	c2.Headers = http.Header{"Content-Type": {"application/vnd.test+json"}}
	_ = r.Ensure(c2)
	await(t, r, "t1")
	if p := s2.posts()[0]; p.Method != "PUT" || p.ContentType != "application/vnd.test+json" ||
		string(p.Body) != `{"text":"fraud: v2 at 50%","weights":[{"subset":"v1","weight":90},{"subset":"v2","weight":10}]}` {
		t.Fatalf("template post %+v body %s", p, p.Body)
	}
	c3 := call(s2.URL+"/g", v1alpha1.HTTPGate{Method: "GET"})
	c3.Key = "g1"
	_ = r.Ensure(c3)
	await(t, r, "g1")
	if p := s2.posts()[1]; p.Method != "GET" || len(p.Body) != 0 {
		t.Fatalf("GET %+v", p)
	}
	// A template that does not render fails without a request.
	c4 := call(s2.URL+"/bad", v1alpha1.HTTPGate{Body: "{{.Nope}}", Retries: ptr.To[int32](0)})
	c4.Key = "b1"
	_ = r.Ensure(c4)
	if res := await(t, r, "b1"); res.Passed || !strings.Contains(res.Message, "cannot be rendered") || len(s2.posts()) != 2 {
		t.Fatalf("bad template: %+v", res)
	}
}

// The gate's deadline stops the retries; the result is not Done (the
// state machine times the run out), and Forget stops a call in flight.
func TestHTTPGateDeadlineAndForget(t *testing.T) {
	s := newSink(t, answer{status: 200, delay: 5 * time.Second})
	r := startRunner(t, Config{})
	c := call(s.URL, v1alpha1.HTTPGate{})
	c.Deadline = time.Now().Add(200 * time.Millisecond)
	_ = r.Ensure(c)
	time.Sleep(400 * time.Millisecond)
	if res, _ := r.Result(c.Key); res.Done || !strings.Contains(res.Message, "the gate's timeout passed") {
		t.Fatalf("after the deadline: %+v", res)
	}

	c2 := call(s.URL, v1alpha1.HTTPGate{})
	c2.Key = "forget-me"
	_ = r.Ensure(c2)
	for s.open.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	r.Forget("forget-me")
	deadline := time.Now().Add(2 * time.Second)
	for s.open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Forget left the request open")
		}
		time.Sleep(time.Millisecond)
	}
	// A reconcile that read an older copy of the rollout may ask for the
	// run again: it is not called again.
	n := len(s.posts())
	_ = r.Ensure(c2)
	time.Sleep(50 * time.Millisecond)
	if len(s.posts()) != n || !r.Started("forget-me") {
		t.Fatal("a forgotten run was called again")
	}
}

// At most MaxInFlight requests are open at once, over every run.
func TestHTTPGateInFlightBound(t *testing.T) {
	s := newSink(t, answer{status: 200, delay: 100 * time.Millisecond})
	r := startRunner(t, Config{MaxInFlight: 2})
	for i := range 6 {
		c := call(s.URL, v1alpha1.HTTPGate{})
		c.Key = "k" + string(rune('a'+i))
		if err := r.Ensure(c); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		await(t, r, "k"+string(rune('a'+i)))
	}
	if m := s.maxOpen.Load(); m > 2 {
		t.Fatalf("%d requests open at once, want at most 2", m)
	}
	// Ensure is idempotent: a known run is not called again.
	c := call(s.URL, v1alpha1.HTTPGate{})
	c.Key = "ka"
	_ = r.Ensure(c)
	time.Sleep(50 * time.Millisecond)
	if n := len(s.posts()); n != 6 {
		t.Fatalf("%d requests after a repeated Ensure, want 6", n)
	}
}

// A note stands for a run until it starts; a final one is its result.
func TestRunnerNotes(t *testing.T) {
	r := startRunner(t, Config{})
	r.Note("n1", rolloutKey, rollout.GateObservation{Message: "Secret smoke-token not found"})
	if res, ok := r.Result("n1"); !ok || res.Done || res.Message != "Secret smoke-token not found" || r.Started("n1") {
		t.Fatalf("note %+v", res)
	}
	r.Clear("n1")
	if _, ok := r.Result("n1"); ok {
		t.Fatal("cleared note still there")
	}
	r.Note("n2", rolloutKey, rollout.GateObservation{Done: true, Message: "refused"})
	r.Clear("n2")
	if res, ok := r.Result("n2"); !ok || !res.Done {
		t.Fatal("a final note was cleared")
	}
	r.ForgetRollout(rolloutKey)
	if _, ok := r.Result("n2"); ok {
		t.Fatal("ForgetRollout kept a result")
	}
}
