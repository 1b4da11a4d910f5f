package scenarios

import (
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

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

// Given an idle rollout behind an HTTPRoute, when an engineer starts a
// canary, pins a split and rolls back with fulcrumctl, then each reaches the
// route's backendRef weights; and a hand edit of those weights is denied by
// the webhook's route guard, naming the rollout and the command to use.
func TestHTTPRouteManualActionsAndGuard(t *testing.T) {
	s := givenModel(t, rig.ModelConfig{Router: v1alpha1.RouteKindHTTPRoute,
		Versions: []rig.Version{{Name: "v1", Behavior: healthy}, {Name: "v2", Behavior: healthy}}})
	f := s.startFulcrum("fulcrum")
	s.createRollout(rig.RolloutConfig{MinStepDuration: time.Hour})
	s.waitPhase(v1alpha1.PhaseStable)
	alice := userToken(t, rig.EngineerUser)
	ctl := func(args ...string) {
		t.Helper()
		out, code, err := env.Fulcrumctl(s.ctx, f.AdminURL, alice, append(args, "-n", s.model.NS)...)
		if err != nil || code != 0 {
			t.Fatalf("fulcrumctl %v: exit %d, %v\n%s", args, code, err, out)
		}
	}

	ctl("start", "fraud", "--candidate", "fraud-v2", "--reason", "new scorer")
	s.waitWeights(map[string]int32{"v1": 80, "v2": 20})
	ctl("split", "fraud", "fraud-v1=70", "fraud-v2=30", "--reason", "A/B")
	s.waitWeights(map[string]int32{"v1": 70, "v2": 30})
	s.waitPhase(v1alpha1.PhaseManualSplit)
	s.assertShare(s.served(2000), "v2", 30)

	// A hand edit of the managed rule's weights, even by the cluster admin.
	hr := &unstructured.Unstructured{}
	hr.SetGroupVersionKind(schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"})
	if err := env.Client.Get(s.ctx, types.NamespacedName{Namespace: s.model.NS, Name: "fraud"}, hr); err != nil {
		t.Fatal(err)
	}
	rules, _, _ := unstructured.NestedSlice(hr.Object, "spec", "rules")
	refs := rules[0].(map[string]any)["backendRefs"].([]any)
	refs[0].(map[string]any)["weight"], refs[1].(map[string]any)["weight"] = int64(50), int64(50)
	_ = unstructured.SetNestedSlice(hr.Object, rules, "spec", "rules")
	err := env.Client.Update(s.ctx, hr)
	if err == nil || !strings.Contains(err.Error(), "managed by ModelRollout "+s.model.NS+"/fraud") || !strings.Contains(err.Error(), "fulcrumctl -n "+s.model.NS+" split fraud") {
		t.Fatalf("hand edit of the managed rule: %v, want the route guard's denial naming the rollout and fulcrumctl split", err)
	}

	ctl("rollback", "fraud", "--reason", "enough")
	s.waitWeights(map[string]int32{"v1": 100, "v2": 0})
	mr := s.waitPhase(v1alpha1.PhaseRolledBack)
	if last := mr.Status.History[len(mr.Status.History)-1]; last.Actor != rig.EngineerUser || last.Reason != "enough" {
		t.Errorf("last history entry %+v, want the rollback by alice with her reason", last)
	}
	s.assertShare(s.served(1000), "v1", 100)
}
