package notify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Test helpers: a real HTTP sink that records what it is sent, a client
// holding Notifiers and Secrets, and a running dispatcher.

type recorded struct {
	at     time.Time
	path   string
	header http.Header
	body   []byte
}

// sink is an HTTP server that records every request and answers the n-th
// (from 1) with respond.
type sink struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []recorded
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newSink(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *sink {
	t.Helper()
	s := &sink{respond: respond}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{at: time.Now(), path: r.URL.Path, header: r.Header.Clone(), body: b})
		n := len(s.reqs)
		s.mu.Unlock()
		if s.respond != nil {
			s.respond(n, w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// ok answers every request 200.
func ok(int, http.ResponseWriter, *http.Request) {}

func (s *sink) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

// waitFor waits until the sink has n requests, and returns them.
func (s *sink) waitFor(t *testing.T, n int) []recorded {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%d requests", n), func() bool { return len(s.requests()) >= n })
	return s.requests()
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// store is an in-memory client holding objs: the dispatcher's HTTP
// behaviour does not depend on the API server, which integration_test.go
// covers.
func store(t *testing.T, objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.Notifier{}, &v1alpha1.ClusterNotifier{}).Build()
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func notifier(ns, name string, sinks ...v1alpha1.NotifierSink) *v1alpha1.Notifier {
	return &v1alpha1.Notifier{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1},
		Spec: v1alpha1.NotifierSpec{Sinks: sinks}}
}

func webhookTo(name, url string) v1alpha1.NotifierSink {
	return v1alpha1.NotifierSink{Name: name, Webhook: &v1alpha1.WebhookSink{URL: url}}
}

// testPolicy retries fast.
var testPolicy = RetryPolicy{Attempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Timeout: 2 * time.Second}

// running starts a dispatcher on c until the test ends.
func running(t *testing.T, c client.Client, edit func(*Config)) *Dispatcher {
	t.Helper()
	cfg := Config{Client: c, Retry: testPolicy, StatusInterval: 50 * time.Millisecond,
		DashboardURL: "https://fulcrum.example.com", Registerer: prometheus.NewRegistry()}
	if edit != nil {
		edit(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Start(ctx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return d
}

var eventSeq atomic.Int64

// fresh is the example rollback, happening now, as a new entry.
func fresh(ev Event) Event {
	ev.Time = time.Now().UTC().Truncate(time.Second)
	ev.ID = fmt.Sprintf("test-%d", eventSeq.Add(1))
	return ev
}
