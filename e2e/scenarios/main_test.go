// Package scenarios runs Fulcrum end to end: the real fulcrum binary as its
// own process, model servers behind the data-plane proxy, Prometheus
// scraping every second and live load, on one local environment shared by
// every scenario (one namespace each). Skipped under go test -short.
//
// FULCRUM_E2E_TIMEOUT (seconds, default 120) bounds each wait.
package scenarios

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
	// cluster-wide, and a ModelRollout webhook that is down (failure policy
	// Fail) would block every scenario. Configurations first, so the
	// process publishes its caBundle into them at start.
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
	fmt.Fprintf(os.Stderr, "scenarios: environment ready in %s (%s)\n", time.Since(start).Round(time.Second), kube.Dir)
	return m.Run()
}

// waitLimit bounds each wait: FULCRUM_E2E_TIMEOUT seconds, 120 by default.
func waitLimit() time.Duration {
	if s := os.Getenv("FULCRUM_E2E_TIMEOUT"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return 120 * time.Second
}
