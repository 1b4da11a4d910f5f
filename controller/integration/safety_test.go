package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fulcrum-ml/fulcrum/analysis"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
)

// Invariants of docs/reliability.md on the real API server, with the
// controller in process. The fault suite (e2e/faults) repeats them with the
// real binary and live traffic.

// at30 is a rollout whose candidate v2 holds 30%: steps [30, 100] with a
// step too long to end during the test.
func at30(f *fixture, name string, opts ...rolloutOpt) {
	f.t.Helper()
	opts = append([]rolloutOpt{func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Strategy.Canary.Steps = []int32{30, 100}
	}, minStep(time.Hour)}, opts...)
	f.rollout(name, opts...)
	f.waitWeights(name, map[string]int32{"v1": 70, "v2": 30})
}

func (f *fixture) waitGone(name string) {
	f.t.Helper()
	f.eventually(name+" deleted", func() bool {
		err := f.c.Get(f.ctx(), types.NamespacedName{Namespace: f.ns, Name: name}, &v1alpha1.ModelRollout{})
		return apierrors.IsNotFound(err)
	})
}

func (f *fixture) delete(name string) {
	f.t.Helper()
	mr := &v1alpha1.ModelRollout{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns}}
	if err := f.c.Delete(f.ctx(), mr); err != nil {
		f.t.Fatal(err)
	}
}

func TestDeletingARolloutRestoresStable(t *testing.T) {
	f := newFixture(t)
	startController(f, nil)
	at30(f, "fraud")
	if fin := f.get("fraud").Finalizers; len(fin) != 1 || fin[0] != controller.Finalizer {
		t.Fatalf("finalizers %v", fin)
	}
	f.delete("fraud")
	f.waitGone("fraud")
	if w := f.weights("fraud"); !sameMap(w, map[string]int32{"v1": 100, "v2": 0}) {
		t.Fatalf("weights after delete %v", w)
	}
	if n := f.eventReasons("fraud")[rollout.ReasonRestoredStable]; n != 1 {
		t.Fatalf("RestoredStable events %d", n)
	}
}

func TestDeletingWithOnDeleteKeepLeavesWeights(t *testing.T) {
	f := newFixture(t)
	startController(f, nil)
	at30(f, "fraud", func(mr *v1alpha1.ModelRollout) { mr.Spec.OnDelete = v1alpha1.OnDeleteKeep })
	if fin := f.get("fraud").Finalizers; len(fin) != 0 {
		t.Fatalf("finalizers %v with onDelete Keep", fin)
	}
	f.delete("fraud")
	f.waitGone("fraud")
	if w := f.weights("fraud"); !sameMap(w, map[string]int32{"v1": 70, "v2": 30}) {
		t.Fatalf("weights after delete %v", w)
	}
}

func TestMissingVirtualServiceNeverBlocksDeletion(t *testing.T) {
	f := newFixture(t)
	startController(f, nil)
	at30(f, "fraud")
	if err := f.c.Delete(f.ctx(), f.vs("fraud")); err != nil {
		t.Fatal(err)
	}
	f.waitPhase("fraud", v1alpha1.PhaseFailed)
	f.delete("fraud")
	f.waitGone("fraud")
}

func TestCandidateWithoutPodsLosesItsTraffic(t *testing.T) {
	f := newFixture(t)
	startController(f, nil)
	at30(f, "fraud")
	if err := f.c.Delete(f.ctx(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "fraud-v2", Namespace: f.ns}}); err != nil {
		t.Fatal(err)
	}
	f.waitWeights("fraud", map[string]int32{"v1": 100, "v2": 0})
	mr := f.waitPhase("fraud", v1alpha1.PhaseRolledBack)
	h := mr.Status.History[len(mr.Status.History)-1]
	if h.Actor != rollout.ActorController || !strings.Contains(h.Reason, "subset v2 has 0 Ready pod(s)") {
		t.Fatalf("history %+v", h)
	}
}

func TestCandidateRemovedFromDestinationRuleLosesItsTraffic(t *testing.T) {
	f := newFixture(t)
	startController(f, nil)
	at30(f, "fraud")
	dr := istioObj("DestinationRule")
	if err := f.c.Get(f.ctx(), types.NamespacedName{Namespace: f.ns, Name: "fraud"}, dr); err != nil {
		t.Fatal(err)
	}
	subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
	_ = unstructured.SetNestedSlice(dr.Object, []any{subsets[0], subsets[2]}, "spec", "subsets")
	if err := f.c.Update(f.ctx(), dr); err != nil {
		t.Fatal(err)
	}
	mr := f.waitPhase("fraud", v1alpha1.PhaseRolledBack)
	if !strings.Contains(mr.Status.History[len(mr.Status.History)-1].Reason, "subset v2 is no longer in DestinationRule fraud") {
		t.Fatalf("history %+v", mr.Status.History)
	}
	// The VirtualService still lists v2 (at 0): Istio accepts a weight-0
	// destination; what matters is that no weight is on it.
	if w := f.weights("fraud"); w["v2"] != 0 || w["v1"] != 100 {
		t.Fatalf("weights %v", w)
	}
}

// TestOriginExampleIsAdopted creates the article's VirtualService
// (networking.istio.io/v1alpha3, one unnamed route at 70/30) and then a
// rollout over it: nothing moves.
func TestOriginExampleIsAdopted(t *testing.T) {
	f := newFixture(t)
	host := "model"
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1alpha3", Kind: "VirtualService"})
	vs.SetName("model-vs")
	vs.SetNamespace(f.ns)
	vs.Object["spec"] = map[string]any{
		"hosts": []any{"model.example.com"},
		"http": []any{map[string]any{"route": []any{
			map[string]any{"destination": map[string]any{"host": host, "subset": "v1"}, "weight": int64(70)},
			map[string]any{"destination": map[string]any{"host": host, "subset": "v2"}, "weight": int64(30)},
		}}},
	}
	f.create(vs)
	dr := istioObj("DestinationRule")
	dr.SetName("model")
	dr.SetNamespace(f.ns)
	dr.Object["spec"] = map[string]any{"host": host, "subsets": []any{
		map[string]any{"name": "v1", "labels": map[string]any{"version": "v1"}},
		map[string]any{"name": "v2", "labels": map[string]any{"version": "v2"}},
	}}
	f.create(dr)
	startController(f, nil)
	f.create(&v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Name: "model", Namespace: f.ns},
		Spec: v1alpha1.ModelRolloutSpec{
			VirtualService: &v1alpha1.VirtualServiceRef{Name: "model-vs"}, DestinationRule: "model", Stable: "v1",
		},
	})
	mr := f.waitPhase("model", v1alpha1.PhaseManualSplit)
	if got := historyTypes(mr); len(got) != 1 || got[0] != rollout.HistoryAdopted {
		t.Fatalf("history %v", got)
	}
	if h := mr.Status.History[0]; !strings.Contains(h.Reason, "v1=70 v2=30") {
		t.Fatalf("adopted entry %+v", h)
	}
	time.Sleep(2 * time.Second) // a few reconciles: nothing may move
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(vs.GroupVersionKind())
	if err := f.c.Get(f.ctx(), types.NamespacedName{Namespace: f.ns, Name: "model-vs"}, got); err != nil {
		t.Fatal(err)
	}
	if w := routeWeight(got.Object, "v2"); w != 30 || got.GetGeneration() != 1 {
		t.Fatalf("v2 weight %d, generation %d: the VirtualService was written", w, got.GetGeneration())
	}
}

func TestSecondRolloutOnARouteWritesNothingUntilTheFirstIsGone(t *testing.T) {
	f := newFixture(t)
	startController(f, nil)
	at30(f, "fraud")
	f.rollout("fraud-two", func(mr *v1alpha1.ModelRollout) {
		mr.Spec.VirtualService.Name = "fraud"
		mr.Spec.Candidate = "v3"
	})
	f.eventually("a RouteConflict condition on the later rollout", func() bool {
		c := meta.FindStatusCondition(f.get("fraud-two").Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Reason == rollout.CondReasonRouteConflict && strings.Contains(c.Message, "fraud")
	})
	time.Sleep(time.Second)
	if w := f.weights("fraud"); !sameMap(w, map[string]int32{"v1": 70, "v2": 30}) {
		t.Fatalf("weights %v: the later rollout wrote", w)
	}
	// The first goes: it restores stable; the second takes the route over.
	f.delete("fraud")
	f.waitGone("fraud")
	f.eventually("the later rollout recovered", func() bool {
		c := meta.FindStatusCondition(f.get("fraud-two").Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionTrue
	})
}

// erroring is an analyzer whose every metric errors with a long message, as
// a provider that is down with a verbose error page would.
type erroring struct{ metrics int }

func (e erroring) Analyze(context.Context, analysis.Request) (v1alpha1.AnalysisRound, error) {
	r := v1alpha1.AnalysisRound{Verdict: v1alpha1.VerdictError}
	for i := 0; i < e.metrics; i++ {
		r.Metrics = append(r.Metrics, v1alpha1.MetricResult{
			Name: fmt.Sprintf("metric-%02d", i), Verdict: v1alpha1.VerdictError,
			Message: "query failed: " + strings.Repeat("prometheus said ünavailable; ", 400),
		})
	}
	return r, nil
}

func TestStatusStaysWritableWithManyLongErrorsAndRollbackFires(t *testing.T) {
	f := newFixture(t)
	startController(f, erroring{metrics: 32})
	f.rollout("fraud", minStep(time.Hour), func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Strategy.Canary.Steps = []int32{30, 100}
		mr.Spec.OnMetricsUnavailable = v1alpha1.MetricsUnavailableRollback
		mr.Spec.Analysis = &v1alpha1.Analysis{Interval: metav1Duration(time.Second), FailureLimit: 10, InconclusiveLimit: 20}
		for i := 0; i < 32; i++ {
			max := 1.0
			mr.Spec.Analysis.Metrics = append(mr.Spec.Analysis.Metrics, v1alpha1.Metric{
				Name: fmt.Sprintf("metric-%02d", i), Template: "istio-error-rate", Threshold: &v1alpha1.ThresholdJudge{Max: &max},
			})
		}
	})
	mr := f.waitPhase("fraud", v1alpha1.PhaseRolledBack)
	f.waitWeights("fraud", map[string]int32{"v1": 100, "v2": 0})
	if n := len(mr.Status.Analysis.RecentRounds); n < 10 {
		t.Fatalf("%d rounds recorded", n)
	}
	for _, m := range mr.Status.Analysis.RecentRounds[0].Metrics {
		if len(m.Message) > v1alpha1.MaxMetricMessage {
			t.Fatalf("metric message %d bytes", len(m.Message))
		}
	}
}

func sameMap(a, b map[string]int32) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}
