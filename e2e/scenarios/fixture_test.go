package scenarios

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/loadgen"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// rate is the load of every scenario, requests per second: enough for the
// sequential judge to decide within a few 2 s rounds at a 20% step.
const rate = 300

// Behaviours of the model versions.
var (
	healthy = modelserver.Behavior{
		Latency: modelserver.Latency{Median: 2 * time.Millisecond, P99: 10 * time.Millisecond},
		Score:   modelserver.Score{Dist: "beta", A: 2, B: 5},
	}
	erroring = func() modelserver.Behavior { b := healthy; b.ErrorRate = 0.3; return b }()
	slow     = func() modelserver.Behavior {
		b := healthy
		b.Latency = modelserver.Latency{Median: 400 * time.Millisecond, P99: 900 * time.Millisecond}
		return b
	}()
	drifted = func() modelserver.Behavior {
		b := healthy
		b.Score = modelserver.Score{Dist: "beta", A: 5, B: 2}
		return b
	}()
)

// scenario is one model with live load and a fulcrum process of its own.
type scenario struct {
	t       *testing.T
	ctx     context.Context
	model   *rig.Model
	fulcrum *rig.Fulcrum
	load    *loadgen.Generator
	loadCfg loadgen.Config
}

// given starts a model with the versions (v1 stable, then the others),
// waits until every version without a node selector has a Ready backend,
// and starts load through the proxy.
func given(t *testing.T, versions ...rig.Version) *scenario {
	t.Helper()
	return givenModel(t, rig.ModelConfig{Versions: versions})
}

// givenModel is given with a full model configuration.
func givenModel(t *testing.T, mc rig.ModelConfig) *scenario {
	t.Helper()
	return givenSetup(t, setup{Model: mc})
}

// setup is a scenario's model and its users' load.
type setup struct {
	Model rig.ModelConfig
	// Load is how the users send (Rate, Duration, Users, Cookies, a group
	// header); the URL is the model's. Rate is rate and Duration 6 minutes
	// when zero.
	Load loadgen.Config
	// LoadLater leaves starting the load to the test (startLoad), e.g.
	// for users who must first arrive once an experiment runs.
	LoadLater bool
	// Limit bounds the whole scenario; 8 minutes when zero.
	Limit time.Duration
}

// givenSetup is given with a model configuration and a load of its own.
func givenSetup(t *testing.T, su setup) *scenario {
	t.Helper()
	mc := su.Model
	versions := mc.Versions
	mc.NamespacePrefix = "sc"
	if env == nil {
		t.Skip("needs the local Kubernetes environment (not under -short)")
	}
	t.Parallel()
	if su.Limit == 0 {
		su.Limit = 8 * time.Minute
	}
	if su.Load.Rate == 0 {
		su.Load.Rate = rate
	}
	if su.Load.Duration == 0 {
		su.Load.Duration = 6 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), su.Limit)
	t.Cleanup(cancel)
	s := &scenario{t: t, ctx: ctx, loadCfg: su.Load}
	m, err := env.NewModel(ctx, t, mc)
	if err != nil {
		t.Fatal(err)
	}
	s.model = m
	var ready []string
	for _, v := range versions {
		if v.NodeSelector == nil {
			ready = append(ready, v.Name)
		}
	}
	if err := m.WaitBackends(ctx, waitLimit(), ready...); err != nil {
		t.Fatal(err)
	}
	t.Logf("namespace %s, proxy %s", m.NS, m.Proxy.Addrs[0])
	if !su.LoadLater {
		s.startLoad()
	}
	return s
}

// startLoad starts the scenario's load through the proxy.
func (s *scenario) startLoad() {
	s.t.Helper()
	if s.load != nil {
		s.t.Fatal("startLoad: the scenario's load already runs")
	}
	var err error
	if s.load, err = s.model.LoadWith(s.ctx, s.t, s.loadCfg); err != nil {
		s.t.Fatal(err)
	}
}

// startFulcrum runs a fulcrum process (controller and admin API) for the
// scenario's namespace.
func (s *scenario) startFulcrum(name string, mut ...func(*rig.FulcrumConfig)) *rig.Fulcrum {
	s.t.Helper()
	cfg := rig.FulcrumConfig{Name: s.model.NS + "-" + name, Namespaces: []string{s.model.NS}, Controller: true, Admin: true}
	for _, f := range mut {
		f(&cfg)
	}
	f, err := env.StartFulcrum(s.ctx, s.t, cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	if s.fulcrum == nil {
		s.fulcrum = f
	}
	s.t.Logf("fulcrum %s: admin %s, log %s", name, f.AdminURL, f.Log)
	return f
}

// admin is an admin-API client for token.
func (s *scenario) admin(f *rig.Fulcrum, token string) *client.Client {
	return &client.Client{Server: f.AdminURL, Token: token}
}

func (s *scenario) createRollout(cfg rig.RolloutConfig) {
	s.t.Helper()
	if _, err := s.model.CreateRollout(s.ctx, cfg); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) rollout() *v1alpha1.ModelRollout {
	s.t.Helper()
	mr, err := s.model.Rollout(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return mr
}

func (s *scenario) weights() map[string]int32 {
	s.t.Helper()
	w, err := s.model.Weights(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return w
}

// eventually polls cond until it holds or the wait limit passes.
func (s *scenario) eventually(what string, cond func() bool) {
	s.t.Helper()
	s.eventuallyWithin(what, waitLimit(), cond)
}

// eventuallyWithin is eventually with its own limit, for waits known to be
// longer than most (an experiment's decision).
func (s *scenario) eventuallyWithin(what string, limit time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			mr := s.rollout()
			s.t.Fatalf("%s: not within %s; phase %s, VirtualService %v, message %q\nverdicts:\n%s", what, limit, mr.Status.Phase, s.weights(), mr.Status.Message, rig.Verdicts(mr))
		}
		select {
		case <-s.ctx.Done():
			s.t.Fatalf("%s: %v", what, s.ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// holds checks cond every 100 ms for d: a property that must stay true
// while time passes (the rollout held, no weight moved).
func (s *scenario) holds(what string, d time.Duration, cond func() bool) {
	s.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if !cond() {
			mr := s.rollout()
			s.t.Fatalf("%s stopped holding; phase %s, VirtualService %v, message %q", what, mr.Status.Phase, s.weights(), mr.Status.Message)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *scenario) waitPhase(p v1alpha1.Phase) *v1alpha1.ModelRollout {
	s.t.Helper()
	var mr *v1alpha1.ModelRollout
	s.eventually("phase "+string(p), func() bool { mr = s.rollout(); return mr.Status.Phase == p })
	return mr
}

func (s *scenario) waitWeights(want map[string]int32) {
	s.t.Helper()
	s.eventually(fmt.Sprintf("VirtualService weights %v", want), func() bool { return sameWeights(s.weights(), want) })
}

func sameWeights(got, want map[string]int32) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && v != 0 {
			return false
		}
	}
	return true
}

// served measures what each version served over the next n answers, once
// the proxy routes by the VirtualService as it is now.
func (s *scenario) served(n int) loadgen.Report {
	s.t.Helper()
	current, err := s.model.ProxyCurrent(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	s.eventually("proxy routing by the current route object", current)
	// Answers to requests sent before the switch may still arrive (a slow
	// candidate's take up to a second): skip two seconds of load first.
	sent := s.load.Snapshot().Sent
	s.eventually("two seconds of load after the switch", func() bool { return s.load.Snapshot().Completed >= sent+2*rate })
	w0 := s.load.Snapshot()
	var w loadgen.Report
	s.eventually(fmt.Sprintf("%d answers", n), func() bool { w = s.load.Snapshot().Sub(w0); return w.Completed >= n })
	return w
}

// assertShare checks the observed share of version against the expected
// weight, within 4 binomial standard deviations.
func (s *scenario) assertShare(w loadgen.Report, version string, weight int32) {
	s.t.Helper()
	p, n := float64(weight)/100, float64(w.Completed)
	sd := math.Sqrt(p * (1 - p) / n)
	if got := w.Share(version); math.Abs(got-p) > 4*sd+1e-9 {
		s.t.Fatalf("%s served %.3f of %d answers, want %.2f ± %.3f (%s)", version, got, w.Completed, p, 4*sd, w)
	}
}

// weightRecorder records every distinct candidate weight the VirtualService
// had, polled every 50 ms.
type weightRecorder struct {
	sample func()
	mu     sync.Mutex
	seen   []int32
	stop   chan struct{}
	done   chan struct{}
}

func (s *scenario) recordWeights(subset string) *weightRecorder {
	r := &weightRecorder{stop: make(chan struct{}), done: make(chan struct{})}
	r.sample = func() {
		if w, err := s.model.Weights(s.ctx); err == nil {
			r.mu.Lock()
			if len(r.seen) == 0 || r.seen[len(r.seen)-1] != w[subset] {
				r.seen = append(r.seen, w[subset])
			}
			r.mu.Unlock()
		}
	}
	// The first look is taken before returning, so that it precedes
	// whatever the test does next (a rollout the controller may step at
	// once).
	r.sample()
	go func() {
		defer close(r.done)
		for {
			select {
			case <-r.stop:
				return
			case <-s.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			r.sample()
		}
	}()
	s.t.Cleanup(r.end)
	return r
}

func (r *weightRecorder) end() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

// Seen stops recording, after one last look, and returns the weights seen,
// in order.
func (r *weightRecorder) Seen() []int32 {
	r.end()
	r.sample()
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// metricVerdicts collects every verdict of the named metric in the recent
// rounds.
func metricVerdicts(mr *v1alpha1.ModelRollout, name string) []v1alpha1.Verdict {
	var out []v1alpha1.Verdict
	if mr.Status.Analysis == nil {
		return nil
	}
	for _, r := range mr.Status.Analysis.RecentRounds {
		for _, m := range r.Metrics {
			if m.Name == name {
				out = append(out, m.Verdict)
			}
		}
	}
	return out
}
