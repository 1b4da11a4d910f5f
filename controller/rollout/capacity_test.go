package rollout

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func withCapacity(perPod float64) func(*v1alpha1.ModelRollout) {
	return func(r *v1alpha1.ModelRollout) {
		r.Spec.Readiness.RequestsPerPod = ptr.To(perPod)
		r.Spec.Strategy.Canary.Steps = []int32{20, 50, 100}
	}
}

func (s *sim) wantWaiting(t *testing.T, part string) {
	t.Helper()
	c := meta.FindStatusCondition(s.r.Status.Conditions, v1alpha1.ConditionSubsetsReady)
	if c == nil || !strings.Contains(c.Message, part) {
		t.Fatalf("SubsetsReady %+v, want a message containing %q", c, part)
	}
}

// Given 300 requests/s and 100 per pod, a candidate with one Ready pod gets
// its first step (60/s) but waits at the second (150/s) until a second pod
// is Ready, and at promotion (300/s) for a third.
func TestCapacityGateWaitsForPods(t *testing.T) {
	s := newSim(t, withCapacity(100))
	s.rate = ptr.To(300.0)
	s.ready["v2"] = 1
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})

	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})
	s.wantWaiting(t, "subset v2 at 50% would serve about 150 requests/s (50% of 300); its 1 Ready pod(s) carry 100 at 100 each (spec.readiness.requestsPerPod): waiting for 2 Ready pods")
	s.steady()

	s.ready["v2"] = 2
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})

	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
	s.wantWaiting(t, "waiting for 3 Ready pods")

	s.ready["v2"] = 3
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePromoted)
	s.wantWeights(map[string]int32{"v2": 100})
}

// A rate that cannot be read holds rising weights, saying why.
func TestCapacityGateHoldsWithoutTraffic(t *testing.T) {
	s := newSim(t, withCapacity(100))
	s.trafficProblem = "the model's traffic cannot be read: Prometheus unreachable"
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	s.wantWaiting(t, "subset v2 stays at 0%: the model's traffic cannot be read: Prometheus unreachable")
	s.trafficProblem = ""
	s.rate = ptr.To(10.0)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})
}

// A split that overloads a version waits; a rollback never does, even when
// stable's pods are short of the whole traffic.
func TestCapacityGateSplitWaitsRollbackDoesNot(t *testing.T) {
	s := newSim(t, withCapacity(100))
	s.rate = ptr.To(300.0)
	s.ready["v2"] = 2
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})

	s.intent("split-1", v1alpha1.IntentSplit, v1alpha1.SubsetWeight{Subset: "v1", Weight: 30}, v1alpha1.SubsetWeight{Subset: "v2", Weight: 70})
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})
	if s.r.Status.ObservedIntent == "split-1" {
		t.Fatal("an overloading split was applied")
	}
	s.wantWaiting(t, "subset v2 at 70% would serve about 210 requests/s")

	s.ready["v1"] = 1 // stable alone cannot carry 300/s
	s.intent("rb-1", v1alpha1.IntentRollback)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseRolledBack)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
}

// A capacity measured by spec.readiness.requestsPerPodQuery gates like a
// stated one, and scales ahead with it; one that cannot be measured holds
// rising weights, saying why.
func TestMeasuredCapacity(t *testing.T) {
	s := newSim(t, withCapacity(100), func(r *v1alpha1.ModelRollout) {
		r.Spec.Readiness.RequestsPerPod = nil
		r.Spec.Readiness.RequestsPerPodQuery = "min(model_capacity_rps)"
	})
	s.capacityProblem = "one pod's capacity cannot be measured: spec.readiness.requestsPerPodQuery returned no data"
	s.rate = ptr.To(300.0)
	s.ready["v2"] = 1
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	s.wantWaiting(t, "subset v2 stays at 0%: one pod's capacity cannot be measured: spec.readiness.requestsPerPodQuery returned no data")

	s.capacityProblem, s.perPod = "", ptr.To(100.0)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantWaiting(t, "its 1 Ready pod(s) carry 100 at 100 each (measured by spec.readiness.requestsPerPodQuery): waiting for 2 Ready pods")
}
