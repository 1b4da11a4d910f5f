package e2etest

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/fulcrum-ml/fulcrum/admin"
	"github.com/fulcrum-ml/fulcrum/admin/admintest"
	"github.com/fulcrum-ml/fulcrum/admin/auth"
	"github.com/fulcrum-ml/fulcrum/admin/dashboard"
	"github.com/fulcrum-ml/fulcrum/controller"
)

// startFulcrum runs what `fulcrum --controller --admin --dashboard` runs, in
// this process and wired the same way (cmd/fulcrum): one manager whose cache
// feeds both the controller and the admin API, the admin API authenticating
// with TokenReview and authorizing with SubjectAccessReview against the API
// server. No analyzer: rollouts without metrics advance on time. It returns
// the admin API's base URL on loopback; everything stops when the test ends.
func startFulcrum(t *testing.T) string {
	t.Helper()
	logger := testLogger(t)
	scheme := admintest.Scheme()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  scheme,
		Logger:  logger.WithName("manager"),
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   cache.Options{ByObject: controller.CacheByObject()},
		Client:  client.Options{Cache: &client.CacheOptions{Unstructured: true}},
	})
	if err != nil {
		t.Fatalf("create manager: %v", err)
	}
	version, err := controller.DetectIstioVersion(mgr.GetRESTMapper())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := controller.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := controller.New(controller.Config{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Recorder:     mgr.GetEventRecorder("fulcrum-controller"),
		IstioVersion: version,
		Metrics:      m,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetupWithManager(mgr, controller.Options{SkipNameValidation: true}); err != nil {
		t.Fatal(err)
	}

	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := admin.NewServer(admin.Config{
		Client:            mgr.GetClient(),
		APIReader:         mgr.GetAPIReader(),
		Informers:         mgr.GetCache(),
		Authenticator:     auth.NewTokenReview(auth.TokenReviewConfig{Reviewer: cs.AuthenticationV1().TokenReviews()}),
		Authorizer:        auth.NewSubjectAccessReview(auth.SARConfig{Reviewer: cs.AuthorizationV1().SubjectAccessReviews()}),
		Recorder:          mgr.GetEventRecorder("fulcrum-admin"),
		UI:                dashboard.Handler(),
		Logger:            logger.WithName("admin"),
		Registry:          reg,
		HeartbeatInterval: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("admin server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The binary adds the server itself (it listens on --admin-bind-address);
	// here it serves a listener on a free loopback port.
	if err := mgr.Add(runnable(func(ctx context.Context) error { return srv.Serve(ctx, ln) })); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("manager did not stop within 30s")
		}
	})

	url := "http://" + ln.Addr().String()
	deadline := time.Now().Add(timeout())
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin API at %s not ready after %s (last: %v)", url, timeout(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runnable is a manager Runnable that runs on every replica, as the admin
// server does.
type runnable func(context.Context) error

func (r runnable) Start(ctx context.Context) error { return r(ctx) }
func (runnable) NeedLeaderElection() bool          { return false }

// testLogger logs to t until the test's cleanups have run; lines after that
// are dropped. The manager's stop procedure may still log from a goroutine
// of its own after Start returned, and testing panics on a log after the
// test completed (seen once in a loaded make test).
func testLogger(t *testing.T) logr.Logger {
	var mu sync.Mutex
	open := true
	// Registered first, so it runs after every other cleanup (they run
	// last-in, first-out), the manager's stop included.
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		open = false
	})
	return funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		if open {
			t.Log(prefix, args)
		}
	}, funcr.Options{})
}
