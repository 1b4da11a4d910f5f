package istio_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/istio/istiod"
	"github.com/fulcrum-ml/fulcrum/e2e/istio/xdsload"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// meshRate is the load of every mesh scenario, requests per second.
const meshRate = 200

var (
	healthy = modelserver.Behavior{
		Latency: modelserver.Latency{Median: 2 * time.Millisecond, P99: 10 * time.Millisecond},
		Score:   modelserver.Score{Dist: "beta", A: 2, B: 5},
	}
	erroring = func() modelserver.Behavior { b := healthy; b.ErrorRate = 0.3; return b }()
)

// mesh is one model on real Istio: gRPC versions on loopback behind
// WorkloadEntries, kwok pods for Fulcrum's readiness gate, live load through
// gRPC's xDS client, an Envoy-sidecar view of the routes, and a fulcrum
// process for the namespace.
type mesh struct {
	t       *testing.T
	ctx     context.Context
	model   *grpcModel
	rm      *rig.Model // names only: NewRollout
	load    *xdsload.Generator
	routes  *istiod.RouteWatch
	fulcrum *rig.Fulcrum
}

func givenMesh(t *testing.T, v2 modelserver.Behavior) *mesh {
	t.Helper()
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	t.Cleanup(cancel)
	s := &mesh{t: t, ctx: ctx}
	s.model = newGRPCModel(ctx, t, map[string]modelserver.Behavior{"v1": healthy, "v2": v2})
	ns := s.model.ns
	s.rm = &rig.Model{NS: ns, Name: "model"}
	for _, v := range []string{"v1", "v2"} {
		if _, err := kube.Client.AppsV1().Deployments(ns).Create(ctx, podsOf(ns, v), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	srcMetrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srcMetrics.Close)
	jobs := modelserver.ScrapeConfig("models-"+ns, ns, time.Second, s.model.servers["v1"].Addr, s.model.servers["v2"].Addr) +
		modelserver.ScrapeConfig("loadgen-"+ns, ns, time.Second, strings.TrimPrefix(srcMetrics.URL, "http://"))
	if err := rigs.Scrape.Set(ns, jobs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rigs.Scrape.Remove(ns) })
	var err error
	if s.routes, err = istio.WatchSidecarRoute(ctx, ns, "80"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.routes.Close)
	s.load, err = xdsload.Start(ctx, xdsload.Config{XDSAddr: istio.XDSAddr, Namespace: ns, Host: s.model.host, Port: 80,
		Model: "model", ModelNamespace: ns, Rate: meshRate, Duration: 5 * time.Minute, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.load.Stop)
	waitAnswers(ctx, t, s.load, "v1")
	s.fulcrum, err = rigs.StartFulcrum(ctx, t, rig.FulcrumConfig{Name: ns + "-fulcrum", Namespaces: []string{ns}, Controller: true, Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("namespace %s, fulcrum log %s", ns, s.fulcrum.Log)
	return s
}

// podsOf is a Deployment whose kwok pod carries the version's labels, so
// Fulcrum's readiness gate sees a Ready pod; it receives no traffic (no
// EndpointSlices: the loopback WorkloadEntries are the endpoints).
func podsOf(ns, v string) *appsv1.Deployment {
	lbl := map[string]string{"app": "model", "version": v}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "model-" + v, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "model", Image: "fulcrum-e2e/grpc-model:" + v}}},
			},
		},
	}
}

func (s *mesh) createRollout(cfg rig.RolloutConfig) {
	s.t.Helper()
	mr := s.rm.NewRollout(cfg)
	mr.Spec.VirtualService.Name = "model-vs"
	mr.Spec.DestinationRule = "model"
	mr.Spec.Service = "model"
	if err := rigs.Client.Create(s.ctx, mr); err != nil {
		s.t.Fatal(err)
	}
}

func (s *mesh) rollout() *v1alpha1.ModelRollout {
	s.t.Helper()
	var mr v1alpha1.ModelRollout
	if err := rigs.Client.Get(s.ctx, types.NamespacedName{Namespace: s.model.ns, Name: "model"}, &mr); err != nil {
		s.t.Fatal(err)
	}
	return &mr
}

func (s *mesh) waitPhase(p v1alpha1.Phase) *v1alpha1.ModelRollout {
	s.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		mr := s.rollout()
		if mr.Status.Phase == p {
			return mr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("phase %s, want %s; history %v\n%s\nfulcrum log %s", mr.Status.Phase, p, rig.HistoryTypes(mr), rig.Verdicts(mr), s.fulcrum.Log)
		}
		sleep(s.ctx, 100*time.Millisecond)
	}
}

// envoyWeights waits until the sidecar's route carries want and returns
// when it arrived.
func (s *mesh) envoyWeights(want map[string]uint32) time.Time {
	s.t.Helper()
	return waitWeights(s.ctx, s.t, s.routes, s.model.host, s.model.host, "predict", want).At
}

// candidateSteps are the distinct candidate weights the sidecar's route
// carried, in order.
func (s *mesh) candidateSteps() []uint32 {
	var out []uint32
	for _, p := range s.routes.Pushes() {
		w, err := istiod.Weights(p.Route, s.model.host, s.model.host, "predict")
		if err != nil {
			continue
		}
		if len(out) == 0 || out[len(out)-1] != w["v2"] {
			out = append(out, w["v2"])
		}
	}
	return out
}

// lastAnswers counts the versions of the last d of answers.
func (s *mesh) lastAnswers(d time.Duration) (map[string]int, int) {
	return countVersions(s.load.Answers(time.Now().Add(-d)))
}

func (s *mesh) noStrayDials() {
	if r := s.load.Refused(); len(r) > 0 {
		s.t.Errorf("clients tried to dial non-loopback addresses %q", r)
	}
}

// Given a healthy gRPC candidate under load routed by istiod, when a canary
// starts, then Envoy's route carries each step in turn (20, 50, 100), the
// rollout is promoted, and the clients end on v2 alone.
func TestMeshCanaryPromoted(t *testing.T) {
	s := givenMesh(t, healthy)
	pushes0, _ := istio.Pushes(s.ctx)
	s.createRollout(rig.RolloutConfig{Candidate: "v2"})
	mr := s.waitPhase(v1alpha1.PhasePromoted)
	s.envoyWeights(map[string]uint32{"v2": 100})
	pushes1, _ := istio.Pushes(s.ctx)
	if got := s.candidateSteps(); !slices.Equal(got, []uint32{0, 20, 50, 100}) {
		t.Errorf("Envoy's route carried candidate weights %v, want 0,20,50,100", got)
	}
	sleep(s.ctx, 2*time.Second)
	if c, failed := s.lastAnswers(time.Second); c["v1"] > 0 || c["v2"] == 0 || failed > 0 {
		t.Errorf("after promotion the last second's answers were %v (%d failed), want v2 only", c, failed)
	}
	s.noStrayDials()
	t.Logf("history %v; istiod pushes during the rollout: %.0f over 3 weight writes\n%s", rig.HistoryTypes(mr), pushes1-pushes0, rig.Verdicts(mr))
}

// Given a gRPC candidate that fails 30% of calls (INTERNAL, which Envoy
// reports as response_code 200 with grpc_response_status 13), when a canary
// starts, then the error rate fails, the rollout rolls back, Envoy's route
// returns to v1 alone and no client is answered by v2 after the switch.
func TestMeshBadCandidateRolledBack(t *testing.T) {
	s := givenMesh(t, erroring)
	s.createRollout(rig.RolloutConfig{Candidate: "v2", Steps: []int32{20, 40, 60, 100}})
	mr := s.waitPhase(v1alpha1.PhaseRolledBack)
	at := s.envoyWeights(map[string]uint32{"v1": 100})
	if got := s.candidateSteps(); slices.Max(got) > 40 {
		t.Errorf("Envoy's route carried candidate weights %v: past the second step before the rollback", got)
	}
	if !strings.Contains(rig.Verdicts(mr), "error-rate=Fail") {
		t.Errorf("no error-rate Fail in status:\n%s", rig.Verdicts(mr))
	}
	sleep(s.ctx, 2*time.Second)
	if c, _ := countVersions(s.load.Answers(at.Add(time.Second))); c["v2"] > 0 || c["v1"] == 0 {
		t.Errorf("answers from a second after the rollback reached Envoy's route: %v, want v1 only", c)
	}
	s.noStrayDials()
	t.Logf("history %v\n%s", rig.HistoryTypes(mr), rig.Verdicts(mr))
}

// Given a canary at its first step, when an engineer pins 70/30 through the
// admin API, then Envoy's route carries 70/30 and the clients' answers
// follow it (chi-square at α=0.001 over 5 s).
func TestMeshManualSplit(t *testing.T) {
	s := givenMesh(t, healthy)
	s.createRollout(rig.RolloutConfig{Candidate: "v2", MinStepDuration: time.Hour})
	s.envoyWeights(map[string]uint32{"v1": 80, "v2": 20})
	c := &client.Client{Server: s.fulcrum.AdminURL, Token: engineerToken(t)}
	if _, err := c.Act(s.ctx, s.model.ns, "model", "split", client.ActionRequest{
		Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 70}, {Subset: "v2", Weight: 30}}, Reason: "A/B test"}); err != nil {
		t.Fatal(err)
	}
	at := s.envoyWeights(map[string]uint32{"v1": 70, "v2": 30})
	s.waitPhase(v1alpha1.PhaseManualSplit)
	sleep(s.ctx, 7*time.Second)
	counts, failed := countVersions(window(s.load.Answers(at), at.Add(time.Second), 5*time.Second))
	chi := chiSquare(counts, map[string]float64{"v1": 0.7, "v2": 0.3})
	t.Logf("70/30 split: clients' answers %v (%d failed), chi-square %.2f", counts, failed, chi)
	if chi > chiSquare001 || failed > 0 {
		t.Errorf("answers %v (%d failed) do not follow 70/30 (chi-square %.2f > %.2f)", counts, failed, chi, chiSquare001)
	}
	s.noStrayDials()
}

// Given a canary at its first step, when an engineer rolls back through the
// admin API (five times, restarting the canary in between), then each
// rollback reaches Envoy's route and the clients within a second; the
// median and worst times from the request are logged.
func TestMeshRollbackLatency(t *testing.T) {
	s := givenMesh(t, healthy)
	s.createRollout(rig.RolloutConfig{Candidate: "v2", MinStepDuration: time.Hour})
	c := &client.Client{Server: s.fulcrum.AdminURL, Token: engineerToken(t)}
	var toEnvoy, toClients []time.Duration
	for i := range 5 {
		if i > 0 {
			if _, err := c.Act(s.ctx, s.model.ns, "model", "start", client.ActionRequest{Candidate: "v2", Reason: "again"}); err != nil {
				t.Fatal(err)
			}
		}
		s.envoyWeights(map[string]uint32{"v1": 80, "v2": 20})
		waitMix(s.ctx, t, s.load, "v2")
		observed(s)
		asked := time.Now()
		if _, err := c.Act(s.ctx, s.model.ns, "model", "rollback", client.ActionRequest{Reason: "measure"}); err != nil {
			t.Fatal(err)
		}
		envoyAt := s.envoyWeights(map[string]uint32{"v1": 100})
		sleep(s.ctx, 3*time.Second)
		answers := s.load.Answers(asked)
		switched := changePoint(answers, map[string]float64{"v1": 0.8, "v2": 0.2}, map[string]float64{"v1": 1})
		toEnvoy, toClients = append(toEnvoy, envoyAt.Sub(asked)), append(toClients, switched.Sub(asked))
		if c, _ := countVersions(window(answers, switched.Add(100*time.Millisecond), time.Hour)); c["v2"] > 0 {
			t.Errorf("rollback %d: v2 answered %d requests after the switch", i, c["v2"])
		}
		observed(s)
	}
	slices.Sort(toEnvoy)
	slices.Sort(toClients)
	t.Logf("rollback request → Envoy's route at v1 100%%: %v; → clients switched: %v", toEnvoy, toClients)
	if med := toClients[len(toClients)/2]; med > time.Second {
		t.Errorf("median rollback reached the clients after %s, want within a second", med)
	}
	s.noStrayDials()
}

// observed waits until the controller has applied the last intent (a
// rollback asked before is refused as pending).
func observed(s *mesh) {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		mr := s.rollout()
		if mr.Spec.Intent == nil || mr.Status.ObservedIntent == mr.Spec.Intent.ID {
			return
		}
		sleep(s.ctx, 20*time.Millisecond)
	}
	s.t.Fatal("the controller never applied the last intent")
}

// waitMix waits until the last second's answers include version.
func waitMix(ctx context.Context, t *testing.T, load *xdsload.Generator, version string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, _ := countVersions(load.Answers(time.Now().Add(-time.Second))); c[version] > 0 {
			return
		}
		sleep(ctx, 100*time.Millisecond)
	}
	t.Fatalf("clients never got an answer from %s", version)
}

func engineerToken(t *testing.T) string {
	t.Helper()
	tok, err := kube.UserToken(rig.EngineerUser)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Given a canary with a shadow stage (half the requests copied to v2 for
// 4 s, no metrics), when it starts, then Envoy's route mirrors 50% to v2's
// cluster while every client is answered by v1 (istiod's webhook validated
// the mirror Fulcrum wrote), and the first step replaces the mirror with
// the 80/20 weights.
func TestMeshShadowMirrorsThenSteps(t *testing.T) {
	s := givenMesh(t, healthy)
	mr := s.rm.NewRollout(rig.RolloutConfig{Candidate: "v2", MinStepDuration: time.Hour, Metrics: []v1alpha1.Metric{}})
	mr.Spec.VirtualService.Name, mr.Spec.DestinationRule, mr.Spec.Service = "model-vs", "model", "model"
	mr.Spec.Strategy.Canary.Shadow = &v1alpha1.ShadowStage{Percent: 50, MinDuration: metav1.Duration{Duration: 4 * time.Second}}
	if err := rigs.Client.Create(s.ctx, mr); err != nil {
		t.Fatal(err)
	}
	var last string
	p, err := s.routes.WaitFor(s.ctx, time.Minute, func(rc *routev3.RouteConfiguration) bool {
		m, err := istiod.Mirrors(rc, s.model.host, s.model.host, "predict")
		last = fmt.Sprint(m, err)
		return err == nil && len(m) == 1 && m[0].Subset == "v2" && m[0].Percent == 50
	})
	if err != nil {
		t.Fatalf("Envoy's route never mirrored 50%% to v2 (last: %s): %v", last, err)
	}
	mirrorAt := p.At
	stepAt := s.envoyWeights(map[string]uint32{"v1": 80, "v2": 20})
	if m, _ := istiod.Mirrors(s.routes.Pushes()[len(s.routes.Pushes())-1].Route, s.model.host, s.model.host, "predict"); len(m) != 0 {
		t.Errorf("Envoy's route still mirrors %v at the first step", m)
	}
	if c, _ := countVersions(window(s.load.Answers(mirrorAt), mirrorAt, stepAt.Sub(mirrorAt))); c["v2"] > 0 || c["v1"] == 0 {
		t.Errorf("answers while in shadow: %v, want v1 only", c)
	}
	if got := rig.HistoryTypes(s.rollout()); !slices.Contains(got, v1alpha1.HistoryShadowPassed) {
		t.Errorf("history %v, want ShadowPassed", got)
	}
	t.Logf("mirror in Envoy's route for %s, then the first step", stepAt.Sub(mirrorAt).Round(time.Millisecond))
}
