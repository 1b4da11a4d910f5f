package scenarios

import (
	"slices"
	"strings"
	"testing"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// Routed by a Gateway API HTTPRoute (versions fraud-v1 and fraud-v2 are
// Services named in the "predict" rule's backendRefs, as in Istio's ambient
// mode), the same canaries run as through a VirtualService: the
// controller writes the backendRef weights, the stand-in data plane routes
// by them, and the gateway-* templates judge each version by
// destination_service_name.

// Given a healthy candidate behind an HTTPRoute, when a canary starts, then
// it goes through every step and is promoted, and users are then served by
// it alone.
func TestHTTPRouteCanaryPromotes(t *testing.T) {
	s := givenModel(t, rig.ModelConfig{Router: v1alpha1.RouteKindHTTPRoute,
		Versions: []rig.Version{{Name: "v1", Behavior: healthy}, {Name: "v2", Behavior: healthy}}})
	s.startFulcrum("fulcrum")
	rec := s.recordWeights("v2")

	s.createRollout(rig.RolloutConfig{Candidate: "v2"})

	mr := s.waitPhase(v1alpha1.PhasePromoted)
	if mr.Spec.Stable != "fraud-v2" || mr.Spec.Candidate != "" {
		t.Fatalf("after promotion spec.stable=%q spec.candidate=%q, want fraud-v2 and empty", mr.Spec.Stable, mr.Spec.Candidate)
	}
	s.waitWeights(map[string]int32{"v1": 0, "v2": 100})
	if got := rec.Seen(); !slices.Equal(got, []int32{0, 20, 50, 100}) {
		t.Errorf("candidate weights seen %v, want 0,20,50,100", got)
	}
	if v := metricVerdicts(mr, "error-rate"); len(v) == 0 || v[len(v)-1] != v1alpha1.VerdictPass {
		t.Errorf("error-rate verdicts %v, want a Pass last\n%s", v, rig.Verdicts(mr))
	}
	w := s.served(600)
	s.assertShare(w, "v2", 100)
	if w.Errors("") != 0 {
		t.Errorf("errors after promotion: %s", w)
	}
}

// Given a candidate answering 30% of requests with 500 behind an
// HTTPRoute, when a canary starts, then gateway-error-rate fails it and it
// is rolled back before the third step, stable serving everything again.
func TestHTTPRouteCanaryRollsBack(t *testing.T) {
	s := givenModel(t, rig.ModelConfig{Router: v1alpha1.RouteKindHTTPRoute,
		Versions: []rig.Version{{Name: "v1", Behavior: healthy}, {Name: "v2", Behavior: erroring}}})
	s.startFulcrum("fulcrum")
	rec := s.recordWeights("v2")

	s.createRollout(rig.RolloutConfig{Candidate: "v2", Steps: []int32{20, 40, 60, 100}})

	mr := s.waitPhase(v1alpha1.PhaseRolledBack)
	s.waitWeights(map[string]int32{"v1": 100, "v2": 0})
	if seen := rec.Seen(); slices.Max(seen) > 40 {
		t.Errorf("candidate weights seen %v: reached the third step (60) before the rollback", seen)
	}
	last := mr.Status.History[len(mr.Status.History)-1]
	if last.Type != "RolledBack" || !strings.Contains(last.Reason, "error-rate") {
		t.Errorf("last history entry %+v, want RolledBack naming error-rate", last)
	}
	w := s.served(600)
	s.assertShare(w, "v1", 100)
}
