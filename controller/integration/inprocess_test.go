package integration

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/fulcrum-ml/fulcrum/analysis"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller"
)

// scripted is an Analyzer whose verdict per (rollout, step) the test sets.
type scripted struct {
	mu      sync.Mutex
	verdict func(name string, step int32) v1alpha1.Verdict
	calls   map[string][]int32
}

func (s *scripted) Analyze(_ context.Context, req analysis.Request) (v1alpha1.AnalysisRound, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	step := int32(req.Weights[req.Candidate])
	if s.calls == nil {
		s.calls = map[string][]int32{}
	}
	s.calls[req.Name] = append(s.calls[req.Name], step)
	v := v1alpha1.VerdictPass
	if s.verdict != nil {
		v = s.verdict(req.Name, step)
	}
	return v1alpha1.AnalysisRound{Verdict: v, Metrics: []v1alpha1.MetricResult{{Name: "error-rate", Verdict: v, Message: "scripted"}}}, nil
}

func (s *scripted) weightsJudged(name string) []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int32(nil), s.calls[name]...)
}

// startController runs the controller in this process, watching only the
// fixture's namespace, with analyzer a.
func startController(f *fixture, a analysis.Analyzer) {
	f.t.Helper()
	startControllerWith(f, a, nil)
}

// startControllerWith is startController with a reader of the model's
// traffic, for capacity checks (spec.readiness.requestsPerPod).
func startControllerWith(f *fixture, a analysis.Analyzer, traffic analysis.TrafficReader) {
	f.t.Helper()
	startControllerConfig(f, controller.Config{Analyzer: a, Traffic: traffic})
}

// startControllerConfig runs a controller for the fixture's namespace with
// cfg's collaborators (the client, recorder and Istio version are set here).
// Each with may add collaborators that need the manager, before the
// controller is built.
func startControllerConfig(f *fixture, cfg controller.Config, with ...func(ctrl.Manager, *controller.Config)) *controller.Reconciler {
	f.t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  scheme(),
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{
			DefaultNamespaces: map[string]cache.Config{f.ns: {}},
			ByObject:          controller.CacheByObject(),
		},
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: true}},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	cfg.Client, cfg.APIReader = mgr.GetClient(), mgr.GetAPIReader()
	cfg.Recorder, cfg.IstioVersion = mgr.GetEventRecorder("fulcrum-test"), "v1"
	for _, w := range with {
		w(mgr, &cfg)
	}
	r, err := controller.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := r.SetupWithManager(mgr, controller.Options{SkipNameValidation: true}); err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	f.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("manager: %v", err)
		}
	})
	return r
}

func withAnalysis(mr *v1alpha1.ModelRollout) {
	max := 0.01
	mr.Spec.Analysis = &v1alpha1.Analysis{
		Interval: metav1Duration(time.Second), FailureLimit: 2, InconclusiveLimit: 10,
		Metrics: []v1alpha1.Metric{{Name: "error-rate", Template: "istio-error-rate", Threshold: &v1alpha1.ThresholdJudge{Max: &max}}},
	}
}

func minStep(d time.Duration) rolloutOpt {
	return func(mr *v1alpha1.ModelRollout) { mr.Spec.Strategy.Canary.MinStepDuration = metav1Duration(d) }
}

// recordWeights polls the VirtualService and returns the distinct candidate
// weights seen, in order, when stop is called.
func recordWeights(f *fixture, name, subset string) (stop func() []int32) {
	var seen []int32
	halt := pollVirtualService(f, name, func(vs map[string]any) {
		if w := routeWeight(vs, subset); len(seen) == 0 || seen[len(seen)-1] != w {
			seen = append(seen, w)
		}
	})
	return func() []int32 {
		halt()
		return seen
	}
}

// pollVirtualService calls fn with the VirtualService every 20ms, from one
// goroutine, and once more when stop is called, so that what a test waited
// for before stopping (a promotion's 100%) is always seen.
func pollVirtualService(f *fixture, name string, fn func(vs map[string]any)) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	look := func() {
		vs := istioObj("VirtualService")
		if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, vs); err == nil {
			fn(vs.Object)
		}
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				look()
				return
			case <-time.After(20 * time.Millisecond):
			}
			look()
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

func routeWeight(obj map[string]any, subset string) int32 {
	spec, _ := obj["spec"].(map[string]any)
	http, _ := spec["http"].([]any)
	for _, r := range http {
		route, _ := r.(map[string]any)["route"].([]any)
		for _, d := range route {
			dm := d.(map[string]any)
			if dm["destination"].(map[string]any)["subset"] == subset {
				switch w := dm["weight"].(type) {
				case int64:
					return int32(w)
				case float64:
					return int32(w)
				}
			}
		}
	}
	return 0
}

// Given a rollout with analysis and a scripted analyzer that passes,
// when the controller runs, then the candidate goes through every step and
// is promoted, with each step judged and every other field of the route kept.
func TestFullCanaryWithScriptedAnalysis(t *testing.T) {
	f := newFixture(t)
	a := &scripted{}
	stop := recordWeights(f, "fraud", "v2")
	startController(f, a)
	f.rollout("fraud", withAnalysis)
	mr := f.waitPhase("fraud", v1alpha1.PhasePromoted)
	seen := stop()

	if got, want := fmtInts(seen), "0,10,30,60,100"; got != want {
		t.Fatalf("candidate weights seen %s, want %s", got, want)
	}
	if mr.Spec.Stable != "v2" || mr.Spec.Candidate != "" {
		t.Fatalf("after promotion: stable %q candidate %q", mr.Spec.Stable, mr.Spec.Candidate)
	}
	if got := strings.Join(historyTypes(mr), ","); got != "Started,StepAdvanced,StepAdvanced,Promoted" {
		t.Fatalf("history %s", got)
	}
	judged := map[int32]bool{}
	for _, w := range a.weightsJudged("fraud") {
		judged[w] = true
	}
	for _, w := range []int32{10, 30, 60} {
		if !judged[w] {
			t.Fatalf("step at %d%% never analysed (judged %v)", w, a.weightsJudged("fraud"))
		}
	}
	http := f.vs("fraud").Object["spec"].(map[string]any)["http"].([]any)[0].(map[string]any)
	if http["timeout"] != "2s" || http["retries"] == nil {
		t.Fatalf("route lost fields: %v", http)
	}
	f.eventually("promotion event", func() bool { return f.eventReasons("fraud")["RolloutPromoted"] == 1 })
}

// Given a scripted analyzer that fails at 30%, the rollout rolls back.
func TestAnalysisFailureRollsBack(t *testing.T) {
	f := newFixture(t)
	a := &scripted{verdict: func(_ string, w int32) v1alpha1.Verdict {
		if w == 30 {
			return v1alpha1.VerdictFail
		}
		return v1alpha1.VerdictPass
	}}
	startController(f, a)
	f.rollout("fraud", withAnalysis)
	mr := f.waitPhase("fraud", v1alpha1.PhaseRolledBack)
	f.waitWeights("fraud", map[string]int32{"v1": 100, "v2": 0})
	if mr.Spec.Candidate != "v2" || mr.Status.Analysis == nil || mr.Status.Analysis.ConsecutiveFailures != 2 {
		t.Fatalf("rolled back rollout: candidate %q analysis %+v", mr.Spec.Candidate, mr.Status.Analysis)
	}
	f.eventually("rollback event", func() bool { return f.eventReasons("fraud")["RolloutRolledBack"] == 1 })
}

func TestPauseAndResume(t *testing.T) {
	f := newFixture(t)
	startController(f, nil)
	f.rollout("fraud", minStep(2*time.Second))
	f.waitWeights("fraud", map[string]int32{"v1": 90, "v2": 10})
	f.intent("fraud", "pause-1", v1alpha1.IntentPause)
	f.waitPhase("fraud", v1alpha1.PhasePaused)
	time.Sleep(3 * time.Second) // longer than minStepDuration: a paused rollout must not move
	if w := f.weights("fraud"); w["v2"] != 10 {
		t.Fatalf("paused rollout moved to %v", w)
	}
	f.intent("fraud", "resume-1", v1alpha1.IntentResume)
	mr := f.waitPhase("fraud", v1alpha1.PhasePromoted)
	var paused *v1alpha1.HistoryEntry
	for i := range mr.Status.History {
		if mr.Status.History[i].Type == "Paused" {
			paused = &mr.Status.History[i]
		}
	}
	if paused == nil || paused.Actor != "alice@example.com" || paused.Reason != "test pause-1" || paused.IntentID != "pause-1" {
		t.Fatalf("pause history %+v", paused)
	}
}

func TestManualSplitThenPromoteNow(t *testing.T) {
	f := newFixture(t)
	startController(f, nil)
	f.rollout("fraud", minStep(time.Hour))
	f.waitWeights("fraud", map[string]int32{"v1": 90, "v2": 10})
	f.intent("fraud", "split-1", v1alpha1.IntentSplit, v1alpha1.SubsetWeight{Subset: "v1", Weight: 70}, v1alpha1.SubsetWeight{Subset: "v2", Weight: 30})
	f.waitPhase("fraud", v1alpha1.PhaseManualSplit)
	f.waitWeights("fraud", map[string]int32{"v1": 70, "v2": 30})
	f.intent("fraud", "promote-1", v1alpha1.IntentPromote)
	mr := f.waitPhase("fraud", v1alpha1.PhasePromoted)
	f.waitWeights("fraud", map[string]int32{"v1": 0, "v2": 100})
	if mr.Status.ObservedIntent != "promote-1" || f.get("fraud").Spec.Stable != "v2" {
		t.Fatalf("observedIntent %q stable %q", mr.Status.ObservedIntent, mr.Spec.Stable)
	}
}

func TestNewCandidateMidRollout(t *testing.T) {
	f := newFixture(t)
	f.pod("fraud-v3", "v3")
	startController(f, nil)
	f.rollout("fraud", minStep(time.Hour), func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Strategy.Canary.Steps = []int32{20, 100}
	})
	f.waitWeights("fraud", map[string]int32{"v1": 80, "v2": 20})
	f.update("fraud", func(mr *v1alpha1.ModelRollout) { mr.Spec.Candidate = "v3" })
	f.waitWeights("fraud", map[string]int32{"v1": 80, "v2": 0, "v3": 20})
	// The VirtualService is written before the status: wait for the status.
	f.eventually("status naming v3 at step 0", func() bool {
		mr := f.get("fraud")
		return mr.Status.Candidate == "v3" && mr.Status.Step != nil && *mr.Status.Step == 0 && mr.Status.Phase == v1alpha1.PhaseProgressing
	})
}

func TestDriftIsReverted(t *testing.T) {
	f := newFixture(t)
	startController(f, nil)
	f.rollout("fraud", minStep(time.Hour))
	f.waitWeights("fraud", map[string]int32{"v1": 90, "v2": 10})
	// The VirtualService is written before the status. Drift is judged
	// against status.weights, so edit only once the status records 90/10: an
	// edit in between is put back too, but cannot be told from the
	// controller's own step.
	f.eventually("status weights 90/10", func() bool {
		mr := f.get("fraud")
		for _, w := range mr.Status.Weights {
			if w.Subset == "v2" {
				return w.Weight == 10
			}
		}
		return false
	})
	vs := f.vs("fraud")
	route := vs.Object["spec"].(map[string]any)["http"].([]any)[0].(map[string]any)["route"].([]any)
	route[0].(map[string]any)["weight"] = int64(50)
	route[1].(map[string]any)["weight"] = int64(50)
	if err := f.c.Update(f.ctx(), vs); err != nil {
		t.Fatal(err)
	}
	f.waitWeights("fraud", map[string]int32{"v1": 90, "v2": 10})
	f.eventually("drift event", func() bool { return f.eventReasons("fraud")["WeightDriftReverted"] >= 1 })
}

func TestReadinessHold(t *testing.T) {
	f := newFixture(t)
	startController(f, nil)
	// An hour per step: with the default second, a loaded machine could poll
	// the weights after the rollout had already moved past 10.
	f.rollout("fraud", minStep(time.Hour), func(mr *v1alpha1.ModelRollout) { mr.Spec.Candidate = "v3" })
	f.eventually("SubsetsReady=False", func() bool {
		mr := f.get("fraud")
		for _, c := range mr.Status.Conditions {
			if c.Type == v1alpha1.ConditionSubsetsReady && c.Status == "False" && strings.Contains(c.Message, "subset v3 has 0 Ready pod(s)") {
				return true
			}
		}
		return false
	})
	if w := f.weights("fraud"); w["v3"] != 0 || w["v1"] != 100 {
		t.Fatalf("weight sent to a subset without Ready pods: %v", w)
	}
	f.pod("fraud-v3", "v3")
	f.waitWeights("fraud", map[string]int32{"v1": 90, "v2": 0, "v3": 10})
}

func TestMissingDestinationRuleFailsThenRecovers(t *testing.T) {
	f := newFixture(t)
	startController(f, nil)
	f.createVS("other")
	f.rollout("other", minStep(time.Hour), func(mr *v1alpha1.ModelRollout) { mr.Spec.DestinationRule = "missing" })
	mr := f.waitPhase("other", v1alpha1.PhaseFailed)
	if !strings.Contains(mr.Status.Message, "DestinationRule "+f.ns+"/missing not found: create it") {
		t.Fatalf("message %q", mr.Status.Message)
	}
	if w := f.weights("other"); w["v2"] != 0 {
		t.Fatalf("failed rollout wrote weights %v", w)
	}
	f.update("other", func(mr *v1alpha1.ModelRollout) { mr.Spec.DestinationRule = "fraud" })
	f.waitWeights("other", map[string]int32{"v1": 90, "v2": 10})
}

func fmtInts(xs []int32) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, itoa(x))
	}
	return strings.Join(parts, ",")
}
