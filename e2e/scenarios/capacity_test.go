package scenarios

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// Given 300 requests/s and pods that carry 120 each
// (spec.readiness.requestsPerPod), when a canary of a candidate with one
// Ready pod starts, then its first step (20%, about 60/s) is applied, the
// second (50%, about 150/s) waits and says it needs 2 Ready pods until a
// second pod is Ready, and promotion (about 300/s) waits for a third. The
// candidate's weight is never more than its Ready pods carry.
func TestStepWaitsForCapacity(t *testing.T) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v2", Behavior: healthy})
	s.startFulcrum("fulcrum")
	rec := s.recordWeights("v2")
	mr := s.model.NewRollout(rig.RolloutConfig{Candidate: "v2", Steps: []int32{20, 50, 100}})
	mr.Spec.Readiness.RequestsPerPod = ptr.To(120.0)
	if err := env.Client.Create(s.ctx, mr); err != nil {
		t.Fatal(err)
	}

	s.waitWeights(map[string]int32{"v1": 80, "v2": 20})
	s.eventually("the second step waiting for 2 Ready pods", func() bool { return strings.Contains(s.readyMessage(), "waiting for 2 Ready pods") })
	t.Logf("waiting: %s", s.readyMessage())
	s.holds("20% while v2 has one Ready pod", 6*time.Second, func() bool { return s.weights()["v2"] == 20 })

	scaled := time.Now()
	s.scale("v2", 2)
	s.waitWeights(map[string]int32{"v1": 50, "v2": 50})
	t.Logf("50%% applied %s after v2 was scaled to 2", time.Since(scaled).Round(100*time.Millisecond))
	s.eventually("promotion waiting for 3 Ready pods", func() bool { return strings.Contains(s.readyMessage(), "waiting for 3 Ready pods") })
	s.holds("50% while v2 has two Ready pods", 4*time.Second, func() bool { return s.weights()["v2"] == 50 })

	s.scale("v2", 3)
	s.waitPhase(v1alpha1.PhasePromoted)
	s.waitWeights(map[string]int32{"v1": 0, "v2": 100})
	if got := rec.Seen(); !slices.Equal(got, []int32{0, 20, 50, 100}) {
		t.Errorf("candidate weights seen %v, want 0,20,50,100", got)
	}
}

// readyMessage is the SubsetsReady condition's message (why traffic waits).
func (s *scenario) readyMessage() string {
	c := meta.FindStatusCondition(s.rollout().Status.Conditions, v1alpha1.ConditionSubsetsReady)
	if c == nil {
		return ""
	}
	return c.Message
}

// scale sets the replicas of a version's Deployment.
func (s *scenario) scale(version string, replicas int) {
	s.t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas))
	if _, err := env.Kube.Client.AppsV1().Deployments(s.model.NS).Patch(s.ctx, s.model.Name+"-"+version, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		s.t.Fatal(err)
	}
}
