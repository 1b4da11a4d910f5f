package faults

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// One environment for the package. The cases that break the environment
// itself (TestAPIServerRestart..., TestEtcdPaused...) are not parallel: Go
// runs every non-parallel top-level test before it releases the parallel
// ones, so they run alone, first, and the other cases (each with its own
// namespace, fulcrum process, Prometheus when it flaps, and Lease) run two
// at a time after them. A second environment for the two would cost another
// control plane's CPU on this 2-core machine for the whole run (about 10 s of
// start-up, then etcd, kube-apiserver, controllers, kwok and Prometheus
// idling beside the parallel cases), against about 25 s of running them alone.
var (
	env *rig.Env
	// webhookProc serves admission for the whole environment.
	webhookProc *rig.Fulcrum
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The rig's clients log through controller-runtime, which prints a stack
	// trace when nobody set its logger; the tests' assertions tell the story.
	ctrllog.SetLogger(logr.Discard())
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var stack rig.Stack
	defer stack.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	opts := rig.LocalenvOptions()
	opts.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, "localenv: "+f+"\n", a...) }
	start := time.Now()
	kube, err := localenv.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start local environment:", err)
		return 1
	}
	stack.Cleanup(func() { _ = kube.Stop() })
	if env, err = rig.Setup(ctx, kube, kube.Dir); err != nil {
		fmt.Fprintln(os.Stderr, "rig:", err)
		return 1
	}
	// One webhook process for the environment: the configurations are
	// cluster-wide and the ModelRollout webhook fails closed.
	addr := rig.FreeAddr()
	if err := env.InstallWebhooks(ctx, addr); err != nil {
		fmt.Fprintln(os.Stderr, "webhooks:", err)
		return 1
	}
	webhookProc, err = env.StartFulcrum(ctx, &stack, rig.FulcrumConfig{Name: "webhook", Webhook: true, WebhookAddr: addr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "webhook process:", err)
		return 1
	}
	if err := env.WaitWebhook(ctx, time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "faults: environment ready in %s (%s)\n", time.Since(start).Round(time.Second), kube.Dir)
	return m.Run()
}

// waitLimit bounds each wait for something that must happen eventually:
// FULCRUM_E2E_TIMEOUT seconds, 120 by default. The bounds a case asserts
// (below) are separate: they are the product's promises, not patience.
func waitLimit() time.Duration {
	if s := os.Getenv("FULCRUM_E2E_TIMEOUT"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return 120 * time.Second
}

// The bounds the cases assert: how long after a fault is visible to the
// controller a request may still reach the subset it made unsafe, measured
// by the data plane (its last request toward that subset), not by the
// VirtualService.
const (
	// reactBound covers one reconcile after a watch event: the controller's
	// watch, its reconcile, the VirtualService write, the proxy's watch and
	// its new routing table, and requests in flight (the model answers in
	// about 2 ms). The same path takes 60–150 ms for a rollback on this
	// machine (docs/e2e.md); 2 s leaves room for a loaded 2-core machine
	// running two cases and Prometheus at once, and is still one analysis
	// interval: a fault is never left for a second round.
	reactBound = 2 * time.Second

	// takeoverBound is the Lease the rig's replicas hold (4 s, renewed every
	// 0.5 s) running out after the leader stops, the follower's next try
	// (0.5 s), then reactBound.
	takeoverBound = 4*time.Second + 500*time.Millisecond + 500*time.Millisecond + reactBound

	// finalizerBound is how long a deleted ModelRollout may stay once a
	// controller runs: one reconcile restores the routes and removes the
	// finalizer, even when the VirtualService is gone.
	finalizerBound = 3 * time.Second

	// quiet is how long the data plane must send nothing toward a subset
	// before a case calls it drained: at the rig's 200 requests/s a subset
	// that still had even 5% would get 10 requests in that time.
	quiet = time.Second
)

// watchRetryBound is how long after the API server answers again a watch
// that an outage of length outage broke may still be waiting to retry.
// client-go's reflector (under every informer: the controller's and the
// mesh control plane's, here the proxy's) retries with a backoff that
// starts at 0.8 s and doubles, each wait stretched by up to 2× jitter, and
// resets only after 2 minutes without a failure. After tries at a₁ < … <
// aₖ < T the next wait is at most 2·aₖ + 1.6 s, so the next try comes within
// 2T + 1.6 s of the API's return; and never later than 60 s (the 30 s cap,
// jittered). This holds for an outage with none other in the 2 minutes
// before; back-to-back restarts keep the backoff growing (see
// docs/reliability.md).
func watchRetryBound(outage time.Duration) time.Duration {
	return min(2*outage+1600*time.Millisecond, 60*time.Second)
}
