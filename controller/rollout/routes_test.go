package rollout

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func routesIntact(t *testing.T, s *sim) *metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(s.r.Status.Conditions, v1alpha1.ConditionRoutesIntact)
	if c == nil {
		t.Fatal("no RoutesIntact condition")
	}
	return c
}

func TestRouteBaselineTakenOnFirstLook(t *testing.T) {
	s := newSim(t)
	s.reconcile(nil)
	if len(s.r.Status.RouteShapes) != 1 || s.r.Status.RouteShapes[0].Route != "predict" {
		t.Fatalf("baseline %+v", s.r.Status.RouteShapes)
	}
	if c := routesIntact(t, s); c.Status != metav1.ConditionTrue {
		t.Fatalf("RoutesIntact %+v", c)
	}
}

func TestShadowedRouteIsReportedAndNothingElseChanges(t *testing.T) {
	s := atStep2(t)
	s.shadowed = []string{`route "predict" is shadowed by route "catch-all" in front of it`}
	s.reconcile(nil)
	c := routesIntact(t, s)
	if c.Status != metav1.ConditionFalse || c.Reason != CondReasonRouteShadowed || !strings.Contains(c.Message, "catch-all") {
		t.Fatalf("RoutesIntact %+v", c)
	}
	if !strings.Contains(s.r.Status.Message, "shadowed") {
		t.Fatalf("message %q", s.r.Status.Message)
	}
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
}

func TestRouteChangeIsReportedUntilAPersonActs(t *testing.T) {
	s := atStep2(t)
	s.changes = []string{`route "predict": fault added`}
	s.reconcile(nil)
	if c := routesIntact(t, s); c.Status != metav1.ConditionFalse || c.Reason != CondReasonRouteChanged {
		t.Fatalf("RoutesIntact %+v", c)
	}
	// A person acts (pause): they have seen the route; a new baseline.
	s.intent("p", v1alpha1.IntentPause)
	s.reconcile(nil)
	if c := routesIntact(t, s); c.Status != metav1.ConditionTrue {
		t.Fatalf("RoutesIntact after an action %+v", c)
	}
}
