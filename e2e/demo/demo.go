// Package demo is `make demo`: a local environment with a model in two
// versions behind the data-plane proxy, live traffic, Fulcrum (controller,
// admin API, dashboard, webhook) as its own process, and a canary from v1 to
// v2 whose progress is shown in the terminal by `fulcrumctl watch`.
package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// Options tune the demo.
type Options struct {
	// Rate of requests per second through the proxy (200 when zero).
	Rate float64
	// CandidateErrorRate makes v2 answer this share of requests with 500,
	// so the canary is rolled back instead of promoted.
	CandidateErrorRate float64
	// ExitAfter ends the demo by itself this long after the canary started
	// (0: run until ctx ends, i.e. Ctrl-C). It counts from the canary, not
	// from the start, which a first run spends minutes building.
	ExitAfter time.Duration
	// Out receives what a person reads.
	Out io.Writer
}

// Result is what ran, for tests that check the demo cleaned up.
type Result struct {
	DashboardURL string
	// Pids of every process the demo started (environment, fulcrum,
	// fulcrumctl watch); all have exited when Run returns.
	Pids []int
}

// Run brings everything up, starts the canary, shows its progress, and
// waits for ctx or ExitAfter; then it stops every process it started.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Rate == 0 {
		o.Rate = 200
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.CandidateErrorRate < 0 || o.CandidateErrorRate > 1 {
		return nil, fmt.Errorf("-candidate-error-rate %v: must be a share between 0 and 1, e.g. 0.05", o.CandidateErrorRate)
	}
	if o.Rate < 1 || o.Rate > 2000 {
		return nil, fmt.Errorf("-rate %v: must be between 1 and 2000 requests per second", o.Rate)
	}
	routeLogs()
	processLog.hold()
	res := &Result{}
	var stack rig.Stack
	defer stack.Run()
	say := func(f string, a ...any) { fmt.Fprintf(o.Out, f+"\n", a...) }

	say("Starting the local Kubernetes environment (the first run builds etcd, kube-apiserver, controller-manager, scheduler and kwok: about 5-7 minutes on 2 cores; later runs start in about 10 s)...")
	opts := rig.LocalenvOptions()
	opts.Logf = func(f string, a ...any) { say("  "+f, a...) }
	start := time.Now()
	kube, err := localenv.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("local environment: %w", err)
	}
	stack.Cleanup(func() { _ = kube.Stop() })
	for _, pid := range kube.Pids() {
		res.Pids = append(res.Pids, pid)
	}
	if err := processLog.open(filepath.Join(kube.Dir, "demo.log")); err != nil {
		return nil, err
	}
	stack.Cleanup(processLog.close) // before the folder goes
	say("Environment ready in %s (folder %s, with every component's log; the demo's own in demo.log).", time.Since(start).Round(time.Second), kube.Dir)

	say("Building fulcrum and fulcrumctl, applying Fulcrum's RBAC...")
	env, err := rig.Setup(ctx, kube, kube.Dir)
	if err != nil {
		return nil, err
	}
	webhookAddr := rig.FreeAddr()
	if err := env.InstallWebhooks(ctx, webhookAddr); err != nil {
		return nil, err
	}
	f, err := env.StartFulcrum(ctx, &stack, rig.FulcrumConfig{Name: "fulcrum", Controller: true, Admin: true, Webhook: true, WebhookAddr: webhookAddr})
	if err != nil {
		return nil, err
	}
	res.Pids = append(res.Pids, f.Pid())
	if err := env.WaitWebhook(ctx, time.Minute); err != nil {
		return nil, err
	}

	say("Deploying model fraud: v1 (stable) and v2 (candidate, slightly different scores%s)...", errNote(o.CandidateErrorRate))
	v1 := modelserver.Behavior{
		Latency: modelserver.Latency{Median: 3 * time.Millisecond, P99: 15 * time.Millisecond},
		Score:   modelserver.Score{Dist: "beta", A: 2, B: 5},
	}
	v2 := v1
	v2.Score.A = 2.2
	v2.Latency.Median = 4 * time.Millisecond
	v2.ErrorRate = o.CandidateErrorRate
	m, err := env.NewModel(ctx, &stack, rig.ModelConfig{Name: "fraud", NamespacePrefix: "ml", Versions: []rig.Version{{Name: "v1", Behavior: v1}, {Name: "v2", Behavior: v2}}})
	if err != nil {
		return nil, err
	}
	if err := m.WaitBackends(ctx, 2*time.Minute, "v1", "v2"); err != nil {
		return nil, err
	}
	loadFor := 12 * time.Hour
	if o.ExitAfter > 0 {
		loadFor = o.ExitAfter
	}
	if _, err := m.Load(ctx, &stack, o.Rate, loadFor); err != nil {
		return nil, err
	}
	if _, err := m.CreateRollout(ctx, rig.RolloutConfig{
		Candidate: "v2", Steps: []int32{5, 25, 50, 100},
		MinStepDuration: 20 * time.Second, Interval: 5 * time.Second, MinSamples: 100,
	}); err != nil {
		return nil, err
	}
	res.DashboardURL = f.AdminURL + "/"

	say("")
	say("Fulcrum is running a canary of fraud v1 → v2 in namespace %s, with %.0f requests/s through the proxy.", m.NS, o.Rate)
	say("  Dashboard:     %s  (paste a token below when asked)", res.DashboardURL)
	say("  Admin API:     %s/api/v1", f.AdminURL)
	say("  Admin token:   %s   (user %s, ClusterRole fulcrum-admin)", env.AdminToken, rig.AdminAPIUser)
	say("  Viewer token:  %s   (user %s, ClusterRole fulcrum-viewer)", env.ViewerToken, rig.ViewerAPIUser)
	say("  Prometheus:    %s", kube.PrometheusURL)
	say("  Kubeconfig:    %s", kube.Kubeconfig)
	say("  fulcrumctl:    FULCRUM_SERVER=%s FULCRUM_TOKEN=%s %s -n %s get fraud", f.AdminURL, env.AdminToken, env.FulcrumctlBin, m.NS)
	say("                 (also: split fraud v1=70 v2=30, pause, resume, promote, rollback, history)")
	say("Press Ctrl-C to stop and clean up.")
	say("")

	watch := exec.Command(env.FulcrumctlBin, "watch", "fraud", "-n", m.NS)
	watch.Env = append(os.Environ(), "FULCRUM_SERVER="+f.AdminURL, "FULCRUM_TOKEN="+env.ViewerToken)
	watch.Stdout, watch.Stderr = o.Out, o.Out
	// Its own process group: Ctrl-C reaches the demo, which stops it first.
	watch.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := watch.Start(); err != nil {
		return nil, fmt.Errorf("fulcrumctl watch: %w", err)
	}
	res.Pids = append(res.Pids, watch.Process.Pid)
	watched := make(chan struct{})
	go func() { _ = watch.Wait(); close(watched) }()
	stack.Cleanup(func() {
		_ = watch.Process.Kill()
		<-watched
	})

	var exitAfter <-chan time.Time
	if o.ExitAfter > 0 {
		exitAfter = time.After(o.ExitAfter)
	}
	select {
	case <-ctx.Done():
	case <-exitAfter:
	}
	say("")
	say("Stopping: fulcrumctl watch, load, proxy, model servers, fulcrum, Prometheus and the environment...")
	return res, nil
}

func errNote(rate float64) string {
	if rate == 0 {
		return ""
	}
	return fmt.Sprintf(", and %.1f%% errors: expect a rollback", 100*rate)
}
