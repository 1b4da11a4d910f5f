package warmup

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

const testNS = "ml"

var rolloutKey = types.NamespacedName{Namespace: testNS, Name: "fraud"}

// recorded is one request the test server received.
type recorded struct {
	Method, ContentType, Warmup, Host, Body string
}

// server records what it receives; status and delay shape its answers.
type server struct {
	*httptest.Server
	status  atomic.Int32 // 0: 200
	delay   time.Duration
	release chan struct{}

	mu   sync.Mutex
	reqs []recorded

	n       atomic.Int64
	cur     atomic.Int64
	maxSeen atomic.Int64
}

func newServer(t *testing.T, delay time.Duration) *server {
	t.Helper()
	s := &server{delay: delay, release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := s.cur.Add(1)
		defer s.cur.Add(-1)
		for {
			m := s.maxSeen.Load()
			if c <= m || s.maxSeen.CompareAndSwap(m, c) {
				break
			}
		}
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{Method: r.Method, ContentType: r.Header.Get("Content-Type"),
			Warmup: r.Header.Get(HeaderName), Host: r.Host, Body: string(body)})
		s.mu.Unlock()
		s.n.Add(1)
		if s.delay > 0 {
			select {
			case <-time.After(s.delay):
			case <-r.Context().Done():
			case <-s.release:
			}
		}
		if st := s.status.Load(); st != 0 {
			w.WriteHeader(int(st))
		}
	}))
	t.Cleanup(func() {
		close(s.release)
		s.Close()
	})
	return s
}

func (s *server) received() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

func configMap(name string, data map[string]string, binary map[string][]byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name}, Data: data, BinaryData: binary}
}

func bodiesCM() *corev1.ConfigMap {
	return configMap("bodies", map[string]string{"b": "B", "d": "D"}, map[string][]byte{"a": []byte("A"), "c": []byte("C")})
}

// newSender returns a Sender reading objs; started (unless start is false)
// and stopped when the test ends. cancel stops its Start.
func newSender(t *testing.T, start bool, objs ...client.Object) (s *Sender, cancel func(), done <-chan struct{}) {
	t.Helper()
	s = NewSender(Config{
		Reader:       fake.NewClientBuilder().WithObjects(objs...).Build(),
		AllowedHosts: []string{"gw.istio-system", "ingress.example.com:8443"},
	})
	ctx, cancelFn := context.WithCancel(context.Background())
	ch := make(chan struct{})
	if !start {
		close(ch)
		t.Cleanup(cancelFn)
		return s, cancelFn, ch
	}
	go func() {
		defer close(ch)
		if err := s.Start(ctx); err != nil {
			t.Errorf("Start: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancelFn()
		<-ch
	})
	eventually(t, time.Second, "Start to take its context", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.base != nil
	})
	return s, cancelFn, ch
}

func job(url string, rate int32) Job {
	return Job{
		Rollout:  rolloutKey,
		Subset:   "v2",
		Spec:     v1alpha1.WarmupRequests{ConfigMap: "bodies", URL: url, RatePerSecond: rate},
		Deadline: time.Now().Add(time.Minute),
	}
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(within)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func counts(t *testing.T, s *Sender) Counts {
	t.Helper()
	c, ok := s.Counts(rolloutKey)
	if !ok {
		t.Fatalf("no sender runs for %s", rolloutKey)
	}
	return c
}

// assertStopped waits for in-flight requests to settle, then checks that
// the server's count no longer grows.
func assertStopped(t *testing.T, srv *server) {
	t.Helper()
	time.Sleep(150 * time.Millisecond) // in-flight requests finish
	n := srv.n.Load()
	time.Sleep(300 * time.Millisecond)
	if m := srv.n.Load(); m != n {
		t.Errorf("server got %d requests after the sender should have stopped (%d then %d)", m-n, n, m)
	}
}

func TestEnsureBadConfigMap(t *testing.T) {
	for _, tc := range []struct {
		name string
		objs []client.Object
		cm   string
		want string
	}{
		{name: "missing", cm: "nope", want: "not found"},
		{name: "empty", objs: []client.Object{configMap("empty", nil, nil)}, cm: "empty", want: "no keys"},
		{name: "empty maps", objs: []client.Object{configMap("empty", map[string]string{}, map[string][]byte{})}, cm: "empty", want: "no keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, 0)
			s, _, _ := newSender(t, true, tc.objs...)
			j := job(srv.URL, 200)
			j.Spec.ConfigMap = tc.cm
			err := s.Ensure(context.Background(), j)
			if err == nil {
				t.Fatal("Ensure succeeded")
			}
			for _, want := range []string{testNS + "/" + tc.cm, "spec.readiness.warmup.requests.configMap", tc.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if _, ok := s.Counts(rolloutKey); ok {
				t.Error("a sender runs after a failed Ensure")
			}
			time.Sleep(100 * time.Millisecond)
			if n := srv.n.Load(); n != 0 {
				t.Errorf("server got %d requests", n)
			}
		})
	}
}

func TestEnsureBodyTooLarge(t *testing.T) {
	srv := newServer(t, 0)
	s, _, _ := newSender(t, true, configMap("bodies", nil, map[string][]byte{"big": make([]byte, maxBody+1)}))
	err := s.Ensure(context.Background(), job(srv.URL, 100))
	if err == nil || !strings.Contains(err.Error(), `"big"`) {
		t.Fatalf("Ensure: %v, want an error naming key \"big\"", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := srv.n.Load(); n != 0 {
		t.Errorf("server got %d requests", n)
	}
}

// inOrder reports whether got is want up to swaps of neighbours: two
// requests launched together by bunched ticks (a delayed sender) may
// arrive in either order, but no body may arrive further from its place.
func inOrder(got, want string) bool {
	if len(got) > len(want) {
		return false
	}
	for p := 0; p < len(got); {
		switch {
		case got[p] == want[p]:
			p++
		case p+1 < len(got) && got[p] == want[p+1] && got[p+1] == want[p]:
			p += 2
		case p+1 == len(got) && p+1 < len(want) && got[p] == want[p+1]:
			p++ // its neighbour has not arrived yet
		default:
			return false
		}
	}
	return true
}

func TestInOrder(t *testing.T) {
	for _, tc := range []struct {
		got  string
		want bool
	}{
		{"ABCDABCD", true}, {"ACBDABCD", true}, {"ABCDABDC", true}, {"ABCDABCE", false},
		{"BDAC", false}, {"DCBA", false}, {"ACDB", false}, {"AABB", false}, {"ABCE", false},
	} {
		if got := inOrder(tc.got, "ABCDABCDABCD"); got != tc.want {
			t.Errorf("inOrder(%q) = %v, want %v", tc.got, got, tc.want)
		}
	}
}

func TestBodiesInKeyOrderWithDefaults(t *testing.T) {
	srv := newServer(t, 0)
	s, _, _ := newSender(t, true, bodiesCM())
	// 50 ms apart: each request has normally finished before the next
	// starts, so the arrival order is the sending order (up to neighbours
	// swapped when the machine is loaded; see inOrder).
	if err := s.Ensure(context.Background(), job(srv.URL, 20)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "12 requests", func() bool { return srv.n.Load() >= 12 })
	s.Stop(rolloutKey)
	reqs := srv.received()[:12]
	var got []string
	for _, r := range reqs {
		got = append(got, r.Body)
		if r.Method != http.MethodPost || r.ContentType != "application/json" || r.Warmup != "v2" {
			t.Errorf("request %+v: want POST, application/json, %s: v2", r, HeaderName)
		}
		if want := strings.TrimPrefix(srv.URL, "http://"); r.Host != want {
			t.Errorf("Host %q, want the URL's %q", r.Host, want)
		}
	}
	if g := strings.Join(got, ""); !inOrder(g, "ABCDABCDABCD") {
		t.Errorf("bodies in order %q, want ABCDABCDABCD (data and binaryData merged, in key order, round and round)", g)
	}
}

func TestMethodContentTypeHost(t *testing.T) {
	srv := newServer(t, 0)
	s, _, _ := newSender(t, true, bodiesCM())
	j := job(srv.URL+"/v1/models/fraud:predict", 50)
	j.Subset = "v3"
	j.Spec.Method = http.MethodPut
	j.Spec.ContentType = "application/octet-stream"
	j.Spec.Host = "fraud.ml.svc.cluster.local"
	if err := s.Ensure(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "2 requests", func() bool { return srv.n.Load() >= 2 })
	for _, r := range srv.received() {
		if r.Method != http.MethodPut || r.ContentType != "application/octet-stream" || r.Warmup != "v3" || r.Host != "fraud.ml.svc.cluster.local" {
			t.Errorf("request %+v: want PUT, application/octet-stream, %s: v3, Host fraud.ml.svc.cluster.local", r, HeaderName)
		}
		if r.Body == "" {
			t.Errorf("PUT without a body: %+v", r)
		}
	}
}

func TestGetSendsNoBody(t *testing.T) {
	srv := newServer(t, 0)
	s, _, _ := newSender(t, true, bodiesCM())
	j := job(srv.URL, 50)
	j.Spec.Method = http.MethodGet
	if err := s.Ensure(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "2 requests", func() bool { return srv.n.Load() >= 2 })
	for _, r := range srv.received() {
		if r.Method != http.MethodGet || r.Body != "" || r.ContentType != "" {
			t.Errorf("request %+v: want a GET without body or Content-Type", r)
		}
	}
}

func TestRate(t *testing.T) {
	srv := newServer(t, 0)
	s, _, _ := newSender(t, true, bodiesCM())
	if err := s.Ensure(context.Background(), job(srv.URL, 50)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	c := counts(t, s)
	s.Stop(rolloutKey)
	time.Sleep(100 * time.Millisecond)
	n := srv.n.Load()
	// A ticker never fires faster than its period (it drops ticks), so 50/s
	// for 1 s is at most ~50; a loaded machine may send fewer.
	if n < 5 || n > 60 {
		t.Errorf("server got %d requests in ~1 s at 50/s, want 5..60", n)
	}
	if c.Sent < 5 || c.Sent > 60 {
		t.Errorf("Sent = %d after ~1 s at 50/s, want 5..60", c.Sent)
	}
	if c.Failed != 0 || c.LastError != "" {
		t.Errorf("counts %+v, want no failures", c)
	}
}

func TestDefaultRate(t *testing.T) {
	srv := newServer(t, 0)
	s, _, _ := newSender(t, true, bodiesCM())
	if err := s.Ensure(context.Background(), job(srv.URL, 0)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	s.Stop(rolloutKey)
	time.Sleep(50 * time.Millisecond)
	// DefaultRate 10/s for 0.5 s: about 5, never 10 or more.
	if n := srv.n.Load(); n < 1 || n > 7 {
		t.Errorf("server got %d requests in 0.5 s at the default %d/s, want 1..7", n, DefaultRate)
	}
}

func TestFailures(t *testing.T) {
	t.Run("5xx", func(t *testing.T) {
		srv := newServer(t, 0)
		srv.status.Store(http.StatusServiceUnavailable)
		s, _, _ := newSender(t, true, bodiesCM())
		if err := s.Ensure(context.Background(), job(srv.URL, 100)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Second, "3 failures", func() bool { return counts(t, s).Failed >= 3 })
		c := counts(t, s)
		if !strings.Contains(c.LastError, "503") {
			t.Errorf("LastError %q does not name the 503", c.LastError)
		}
		if c.Sent < c.Failed {
			t.Errorf("counts %+v: a failed answer was not counted as sent", c)
		}
	})
	t.Run("4xx", func(t *testing.T) {
		srv := newServer(t, 0)
		srv.status.Store(http.StatusBadRequest)
		s, _, _ := newSender(t, true, bodiesCM())
		if err := s.Ensure(context.Background(), job(srv.URL, 100)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Second, "5 answers", func() bool { return srv.n.Load() >= 5 })
		time.Sleep(50 * time.Millisecond)
		if c := counts(t, s); c.Failed != 0 || c.LastError != "" || c.Sent < 5 {
			t.Errorf("counts %+v: a 4xx is not a failure", c)
		}
	})
	t.Run("transport error", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		deadURL := dead.URL
		dead.Close() // nothing listens there any more
		s, _, _ := newSender(t, true, bodiesCM())
		if err := s.Ensure(context.Background(), job(deadURL, 100)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Second, "3 failures", func() bool { return counts(t, s).Failed >= 3 })
		if c := counts(t, s); !strings.Contains(c.LastError, "warm-up request to "+deadURL) {
			t.Errorf("LastError %q does not name the URL", c.LastError)
		}
	})
	t.Run("recovers", func(t *testing.T) {
		// A failure is remembered in LastError; successes do not count as failures.
		srv := newServer(t, 0)
		srv.status.Store(http.StatusInternalServerError)
		s, _, _ := newSender(t, true, bodiesCM())
		if err := s.Ensure(context.Background(), job(srv.URL, 100)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Second, "a failure", func() bool { return counts(t, s).Failed >= 1 })
		srv.status.Store(0)
		time.Sleep(50 * time.Millisecond)
		before := counts(t, s)
		time.Sleep(200 * time.Millisecond)
		after := counts(t, s)
		if after.Failed != before.Failed || after.Sent <= before.Sent {
			t.Errorf("counts went from %+v to %+v while the server answered 200", before, after)
		}
	})
}

func TestStop(t *testing.T) {
	srv := newServer(t, 0)
	s, _, _ := newSender(t, true, bodiesCM())
	if err := s.Ensure(context.Background(), job(srv.URL, 100)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "3 requests", func() bool { return srv.n.Load() >= 3 })
	s.Stop(rolloutKey)
	if _, ok := s.Counts(rolloutKey); ok {
		t.Error("Counts still reports a sender after Stop")
	}
	assertStopped(t, srv)
	s.Stop(rolloutKey) // stopping twice is harmless
	s.Stop(types.NamespacedName{Namespace: testNS, Name: "other"})
}

func TestDeadline(t *testing.T) {
	srv := newServer(t, 0)
	s, _, _ := newSender(t, true, bodiesCM())
	j := job(srv.URL, 100)
	j.Deadline = time.Now().Add(300 * time.Millisecond)
	if err := s.Ensure(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "a request", func() bool { return srv.n.Load() >= 1 })
	time.Sleep(400 * time.Millisecond) // past the deadline
	assertStopped(t, srv)
	if n := srv.n.Load(); n > 40 {
		t.Errorf("server got %d requests in the 0.3 s before the deadline at 100/s", n)
	}
}

func TestDeadlinePassed(t *testing.T) {
	srv := newServer(t, 0)
	s, _, _ := newSender(t, true, bodiesCM())
	j := job(srv.URL, 100)
	j.Deadline = time.Now().Add(-time.Second)
	if err := s.Ensure(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := srv.n.Load(); n != 0 {
		t.Errorf("server got %d requests from a job whose deadline had passed", n)
	}
}

func TestCancelStartStopsEverything(t *testing.T) {
	srv := newServer(t, 0)
	other := types.NamespacedName{Namespace: testNS, Name: "other"}
	s, cancel, done := newSender(t, true, bodiesCM())
	if err := s.Ensure(context.Background(), job(srv.URL, 100)); err != nil {
		t.Fatal(err)
	}
	j2 := job(srv.URL, 100)
	j2.Rollout = other
	if err := s.Ensure(context.Background(), j2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "requests from both senders", func() bool {
		a, _ := s.Counts(rolloutKey)
		b, _ := s.Counts(other)
		return a.Sent >= 2 && b.Sent >= 2
	})
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Start did not return after its context ended")
	}
	for _, k := range []types.NamespacedName{rolloutKey, other} {
		if _, ok := s.Counts(k); ok {
			t.Errorf("Counts(%s) still reports a sender after Start returned", k)
		}
	}
	assertStopped(t, srv)
}

func TestEnsureBeforeStart(t *testing.T) {
	srv := newServer(t, 0)
	s, _, _ := newSender(t, false, bodiesCM())
	err := s.Ensure(context.Background(), job(srv.URL, 100))
	if err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("Ensure before Start: %v, want an error saying the sender is not running", err)
	}
	if _, ok := s.Counts(rolloutKey); ok {
		t.Error("a sender runs")
	}
	time.Sleep(50 * time.Millisecond)
	if n := srv.n.Load(); n != 0 {
		t.Errorf("server got %d requests", n)
	}
}

func TestEnsureSameJobKeepsRun(t *testing.T) {
	srv := newServer(t, 0)
	s, _, _ := newSender(t, true, bodiesCM())
	j := job(srv.URL, 50)
	if err := s.Ensure(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "5 sent", func() bool { return counts(t, s).Sent >= 5 })
	before := counts(t, s)
	// Same subset and spec: the deadline is recomputed by the caller each
	// time, and is not a reason to restart.
	j.Deadline = j.Deadline.Add(time.Second)
	if err := s.Ensure(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if after := counts(t, s); after.Sent < before.Sent {
		t.Errorf("Sent went from %d to %d: the same job restarted the sender", before.Sent, after.Sent)
	}
	// Even if the ConfigMap is gone, an unchanged job is left alone.
	s.cfg.Reader = fake.NewClientBuilder().Build()
	if err := s.Ensure(context.Background(), j); err != nil {
		t.Errorf("Ensure of the unchanged job read the ConfigMap again: %v", err)
	}
}

func TestEnsureChangedJobRestarts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Job)
		header string
	}{
		{name: "subset", change: func(j *Job) { j.Subset = "v3" }, header: "v3"},
		{name: "spec", change: func(j *Job) { j.Spec.ContentType = "text/plain" }, header: "v2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, 0)
			s, _, _ := newSender(t, true, bodiesCM())
			j := job(srv.URL, 20)
			if err := s.Ensure(context.Background(), j); err != nil {
				t.Fatal(err)
			}
			eventually(t, 2*time.Second, "5 sent", func() bool { return counts(t, s).Sent >= 5 })
			before := counts(t, s)
			tc.change(&j)
			if err := s.Ensure(context.Background(), j); err != nil {
				t.Fatal(err)
			}
			// The first tick of the new sender is 50 ms away.
			if after := counts(t, s); after.Sent >= before.Sent {
				t.Errorf("Sent went from %d to %d: the changed job did not restart the sender", before.Sent, after.Sent)
			}
			time.Sleep(150 * time.Millisecond) // the old sender's last request lands
			mark := len(srv.received())
			eventually(t, 2*time.Second, "3 requests of the new sender", func() bool { return len(srv.received()) >= mark+3 })
			for _, r := range srv.received()[mark:] {
				if r.Warmup != tc.header {
					t.Errorf("after the restart a request carries %s: %q, want %q", HeaderName, r.Warmup, tc.header)
				}
				if tc.name == "spec" && r.ContentType != "text/plain" {
					t.Errorf("after the restart a request has Content-Type %q, want text/plain", r.ContentType)
				}
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	s := NewSender(Config{AllowedHosts: []string{"gw.istio-system", "ingress.example.com:8443"}})
	model := []string{"fraud", "fraud.ml", "fraud.ml.svc", "fraud.ml.svc.cluster.local"}
	for _, tc := range []struct {
		url  string
		want string // "" = accepted; else a fragment of the error
	}{
		{url: "http://fraud.ml.svc.cluster.local/v1/models/fraud:predict"},
		{url: "http://fraud/predict"},
		{url: "https://fraud.ml:8080/predict"},
		{url: "http://gw.istio-system/predict"},
		{url: "http://gw.istio-system:80/predict"},
		{url: "https://ingress.example.com:8443/predict"},
		{url: "https://ingress.example.com/predict", want: "--warmup-gateways"},
		{url: "https://ingress.example.com:9443/predict", want: "--warmup-gateways"},
		{url: "http://metadata.google.internal/computeMetadata/v1/", want: "--warmup-gateways"},
		{url: "http://169.254.169.254/latest/meta-data", want: "--warmup-gateways"},
		{url: "http://fraud.other.svc.cluster.local/predict", want: "--warmup-gateways"},
		{url: "ftp://fraud/predict", want: "must be an http or https URL"},
		{url: "file:///etc/passwd", want: "must be an http or https URL"},
		{url: "fraud/predict", want: "must be an http or https URL"},
		{url: "http:///predict", want: "must be an http or https URL"},
		{url: "http://fraud\x7f/", want: "must be an http or https URL"},
	} {
		t.Run(url.PathEscape(tc.url), func(t *testing.T) {
			err := s.CheckURL(tc.url, model)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("CheckURL(%q): %v, want accepted", tc.url, err)
			case tc.want != "" && err == nil:
				t.Errorf("CheckURL(%q) accepted, want refused with %q", tc.url, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("CheckURL(%q): %q does not contain %q", tc.url, err, tc.want)
			}
		})
	}
}

func TestSlowServerBoundsInFlight(t *testing.T) {
	srv := newServer(t, 2*time.Second)
	s, _, _ := newSender(t, true, bodiesCM())
	if err := s.Ensure(context.Background(), job(srv.URL, 1000)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "excess ticks counted as failed", func() bool { return counts(t, s).Failed >= 20 })
	time.Sleep(200 * time.Millisecond)
	c := counts(t, s)
	if m := srv.maxSeen.Load(); m > 16 {
		t.Errorf("%d requests in flight at once, want at most 16", m)
	}
	if c.Sent > 16 {
		t.Errorf("Sent = %d while every answer takes 2 s: more than 16 started", c.Sent)
	}
	if !strings.Contains(c.LastError, fmt.Sprintf("%d warm-up requests still unanswered", maxInFlight)) {
		t.Errorf("LastError %q does not say requests are unanswered", c.LastError)
	}
	// Stopping cancels the slow requests rather than waiting 2 s for them.
	s.Stop(rolloutKey)
	eventually(t, time.Second, "in-flight requests to be cancelled", func() bool { return srv.cur.Load() == 0 })
}
