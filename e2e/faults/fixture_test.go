package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/loadgen"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// rate is the live load of a case, requests per second: at 30% on the
// candidate that is a request to it every ~17 ms, fine enough to time when
// the last one went, and light enough for two cases at once on 2 cores.
const rate = 200

var healthy = modelserver.Behavior{
	Latency: modelserver.Latency{Median: 2 * time.Millisecond, P99: 10 * time.Millisecond},
	Score:   modelserver.Score{Dist: "beta", A: 2, B: 5},
}

// faultCase is one model (v1 stable, v2 candidate) behind the proxy, with
// live load, the data plane's counts sampled over time, and fulcrum
// processes of its own.
type faultCase struct {
	t       testing.TB
	ctx     context.Context
	model   *rig.Model
	traffic *Traffic
	load    *loadgen.Generator // nil without load
	prom    *ownProm           // the case's own Prometheus, if any
	fulcrum *rig.Fulcrum       // the one whose admin API the case talks to
}

// caseConfig says what a case needs beyond the defaults.
type caseConfig struct {
	// noLoad runs the case without live load (it asserts on objects only).
	noLoad bool
	// prom is a Prometheus of the case's own that scrapes the model.
	prom *ownProm
}

// given runs the case in parallel with the others and sets it up.
func given(t *testing.T, cfg caseConfig) *faultCase {
	t.Helper()
	if env == nil {
		t.Skip("needs the local Kubernetes environment (not under -short)")
	}
	t.Parallel()
	return setup(t, cfg)
}

// givenAlone sets a case up without t.Parallel: for faults of the shared
// environment (see TestMain).
func givenAlone(t *testing.T, cfg caseConfig) *faultCase {
	t.Helper()
	if env == nil {
		t.Skip("needs the local Kubernetes environment (not under -short)")
	}
	return setup(t, cfg)
}

// setup starts the model with Ready backends for v1 and v2, the load, and
// the traffic recorder.
func setup(tb testing.TB, cfg caseConfig) *faultCase {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	tb.Cleanup(cancel)
	var scrape *rig.Scrape
	if cfg.prom != nil {
		scrape = cfg.prom.scrape
	}
	m, err := env.NewModel(ctx, tb, rig.ModelConfig{NamespacePrefix: "fault", Scrape: scrape,
		Reporters: []string{"destination", "source"},
		Versions:  []rig.Version{{Name: "v1", Behavior: healthy}, {Name: "v2", Behavior: healthy}}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.WaitBackends(ctx, waitLimit(), "v1", "v2"); err != nil {
		tb.Fatal(err)
	}
	c := &faultCase{t: tb, ctx: ctx, model: m, prom: cfg.prom}
	c.traffic = RecordTraffic(ctx, m.Proxy.MetricsHandler(), 25*time.Millisecond)
	tb.Cleanup(c.traffic.Stop)
	if !cfg.noLoad {
		if c.load, err = m.Load(ctx, tb, rate, 6*time.Minute); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Logf("namespace %s, proxy %s", m.NS, m.Proxy.Addrs[0])
	return c
}

// startFulcrum runs a fulcrum process (controller and admin API unless mut
// says otherwise) for the case's namespace.
func (c *faultCase) startFulcrum(name string, mut ...func(*rig.FulcrumConfig)) *rig.Fulcrum {
	c.t.Helper()
	cfg := rig.FulcrumConfig{Name: c.model.NS + "-" + name, Namespaces: []string{c.model.NS}, Controller: true, Admin: true}
	for _, f := range mut {
		f(&cfg)
	}
	f, err := env.StartFulcrum(c.ctx, c.t, cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.fulcrum == nil && cfg.Admin {
		c.fulcrum = f
	}
	c.t.Logf("fulcrum %s: admin %s, log %s", name, f.AdminURL, f.Log)
	return f
}

// act asks for an action through the admin API as the ML engineer alice.
func (c *faultCase) act(f *rig.Fulcrum, action string, req client.ActionRequest) (*v1alpha1.ModelRollout, error) {
	tok, err := env.Kube.UserToken(rig.EngineerUser)
	if err != nil {
		c.t.Fatal(err)
	}
	cl := &client.Client{Server: f.AdminURL, Token: tok}
	return cl.Act(c.ctx, c.model.NS, c.model.Name, action, req)
}

// mustAct is act that fails the case unless the action is accepted.
func (c *faultCase) mustAct(f *rig.Fulcrum, action string, req client.ActionRequest) *v1alpha1.ModelRollout {
	c.t.Helper()
	mr, err := c.act(f, action, req)
	if err != nil {
		c.t.Fatalf("%s: %v", action, err)
	}
	return mr
}

// canary creates the rollout (mut may change it) and waits until the
// VirtualService has want, the rollout's status records it (the controller
// writes the route first, then status), and the proxy routes by it.
func (c *faultCase) canary(cfg rig.RolloutConfig, want map[string]int32, mut ...func(*v1alpha1.ModelRollout)) {
	c.t.Helper()
	mr := c.model.NewRollout(cfg)
	for _, f := range mut {
		f(mr)
	}
	if err := env.Client.Create(c.ctx, mr); err != nil {
		c.t.Fatalf("create ModelRollout: %v", err)
	}
	c.waitWeights(want)
	c.eventually(fmt.Sprintf("status.weights %v", want), func() bool {
		return sameWeights(weightMap(c.rollout().Status.Weights), want)
	})
	c.waitProxy()
}

// at30 is a canary of v2 held at 30%: one step before 100 that lasts an
// hour, and no metrics, so nothing but the fault moves it.
func at30() rig.RolloutConfig {
	return rig.RolloutConfig{Candidate: "v2", Steps: []int32{30, 100}, MinStepDuration: time.Hour, Metrics: []v1alpha1.Metric{}}
}

var split70 = map[string]int32{"v1": 70, "v2": 30}

func (c *faultCase) rollout() *v1alpha1.ModelRollout {
	c.t.Helper()
	mr, err := c.model.Rollout(c.ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	return mr
}

func (c *faultCase) weights() map[string]int32 {
	c.t.Helper()
	w, err := c.model.Weights(c.ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	return w
}

// eventually polls cond every 50 ms until it holds or the wait limit passes.
func (c *faultCase) eventually(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(waitLimit())
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %s; %s", what, waitLimit(), c.state())
		}
		select {
		case <-c.ctx.Done():
			c.t.Fatalf("%s: %v", what, c.ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// holds checks cond every 100 ms for d.
func (c *faultCase) holds(what string, d time.Duration, cond func() bool) {
	c.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if !cond() {
			c.t.Fatalf("%s stopped holding; %s", what, c.state())
		}
	}
}

// state describes the rollout and routes for failure messages.
func (c *faultCase) state() string {
	w, err := c.model.Weights(c.ctx)
	mr, err2 := c.model.Rollout(c.ctx)
	if err2 != nil {
		return fmt.Sprintf("VirtualService %v (%v); rollout: %v; traffic %s", w, err, err2, c.traffic.Now())
	}
	return fmt.Sprintf("phase %s, VirtualService %v (%v), message %q, history %v; traffic %s",
		mr.Status.Phase, w, err, mr.Status.Message, rig.HistoryTypes(mr), c.traffic.Now())
}

func (c *faultCase) waitPhase(p v1alpha1.Phase) *v1alpha1.ModelRollout {
	c.t.Helper()
	var mr *v1alpha1.ModelRollout
	c.eventually("phase "+string(p), func() bool { mr = c.rollout(); return mr.Status.Phase == p })
	return mr
}

func (c *faultCase) waitWeights(want map[string]int32) {
	c.t.Helper()
	c.eventually(fmt.Sprintf("VirtualService weights %v", want), func() bool {
		w, err := c.model.Weights(c.ctx)
		return err == nil && sameWeights(w, want)
	})
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

// waitProxy waits until the proxy routes by the VirtualService as it is now.
func (c *faultCase) waitProxy() {
	c.t.Helper()
	vs, err := c.model.Istio.NetworkingV1().VirtualServices(c.model.NS).Get(c.ctx, c.model.Name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.eventually("proxy routing by the current VirtualService", func() bool {
		v, _ := c.model.Proxy.Table().VirtualServiceVersion(c.model.NS, c.model.Name)
		return v == vs.ResourceVersion
	})
}

// scale sets a version's Deployment replicas.
func (c *faultCase) scale(version string, replicas int32) {
	c.t.Helper()
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	_, err := env.Kube.Client.AppsV1().Deployments(c.model.NS).Patch(c.ctx, c.model.Name+"-"+version, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
}

// deploymentReady waits until a version's Deployment has all its replicas
// Ready and the proxy has a backend for it.
func (c *faultCase) deploymentReady(version string) {
	c.t.Helper()
	c.eventually(version+" Deployment Ready", func() bool {
		d, err := env.Kube.Client.AppsV1().Deployments(c.model.NS).Get(c.ctx, c.model.Name+"-"+version, metav1.GetOptions{})
		return err == nil && ready(d)
	})
	if err := c.model.WaitBackends(c.ctx, waitLimit(), version); err != nil {
		c.t.Fatal(err)
	}
}

func ready(d *appsv1.Deployment) bool {
	return d.Spec.Replicas != nil && d.Status.ReadyReplicas == *d.Spec.Replicas && d.Status.UpdatedReplicas == *d.Spec.Replicas
}

// historyIntact fails the case when the history after a fault lost,
// rewrote or duplicated anything recorded before it (HistoryProblems).
func (c *faultCase) historyIntact(before, after *v1alpha1.ModelRollout) {
	c.t.Helper()
	if p := HistoryProblems(before.Status, after.Status); len(p) > 0 {
		c.t.Fatalf("history broke its invariant:\n  %s\nhistory now:\n%s", strings.Join(p, "\n  "), historyText(after))
	}
}

// logHistory puts the rollout's history in the test log: what an on-call
// engineer would read after the fault.
func (c *faultCase) logHistory(mr *v1alpha1.ModelRollout) {
	c.t.Helper()
	c.t.Logf("history:\n%s", historyText(mr))
}

// logEvents puts the namespace's Events about ModelRollouts in the test
// log: after a deletion they are the only record left.
func (c *faultCase) logEvents() {
	c.t.Helper()
	evs, err := env.Kube.Client.CoreV1().Events(c.model.NS).List(c.ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=ModelRollout"})
	if err != nil {
		c.t.Logf("events: %v", err)
		return
	}
	var b strings.Builder
	for _, e := range evs.Items {
		fmt.Fprintf(&b, "  %s %s: %s\n", e.Type, e.Reason, e.Message)
	}
	c.t.Logf("events:\n%s", b.String())
}

// historyText renders a rollout's history, one entry a line.
func historyText(mr *v1alpha1.ModelRollout) string {
	var b strings.Builder
	for _, h := range mr.Status.History {
		b.WriteString("  " + describe(h) + "\n")
	}
	return b.String()
}

// lastEntry is the newest history entry of type typ, or nil.
func lastEntry(mr *v1alpha1.ModelRollout, typ string) *v1alpha1.HistoryEntry {
	for i := len(mr.Status.History) - 1; i >= 0; i-- {
		if mr.Status.History[i].Type == typ {
			return &mr.Status.History[i]
		}
	}
	return nil
}
