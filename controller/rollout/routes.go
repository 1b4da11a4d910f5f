package rollout

import (
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Managed routes are the user's. Fulcrum owns their weights only; a route put
// in front that catches their traffic, or a change to who gets it (match,
// mirror, fault, ...), is reported by the RoutesIntact condition rather than
// undone. The baseline (status.routeShapes) is taken when the rollout is
// first reconciled, when a rollout starts and when a person acts: a person
// who acted has seen the routes as they are.

// routeCondition sets RoutesIntact, and takes a new baseline when one is due.
func (x *decider) routeCondition(set func(typ string, status metav1.ConditionStatus, reason, msg string)) {
	changes := x.o.RouteChanges
	if x.o.RouteShapes != nil && (len(x.st.RouteShapes) == 0 || x.personActed()) {
		x.st.RouteShapes = x.o.RouteShapes
		changes = nil
	}
	switch {
	case len(x.o.Shadowed) > 0:
		set(v1alpha1.ConditionRoutesIntact, metav1.ConditionFalse, CondReasonRouteShadowed, strings.Join(append(slices.Clone(x.o.Shadowed), changes...), "; "))
	case len(changes) > 0:
		set(v1alpha1.ConditionRoutesIntact, metav1.ConditionFalse, CondReasonRouteChanged, strings.Join(changes, "; ")+
			" (since Fulcrum took its baseline; any action on the rollout takes a new one)")
	default:
		set(v1alpha1.ConditionRoutesIntact, metav1.ConditionTrue, CondReasonRoutesIntact, "every managed route gets its traffic as when Fulcrum took its baseline")
	}
}

// routeIssue is the first route problem, for the one-line message.
func (x *decider) routeIssue() string {
	if len(x.o.Shadowed) > 0 {
		return x.o.Shadowed[0]
	}
	if len(x.o.RouteChanges) > 0 && !x.personActed() {
		return x.o.RouteChanges[0]
	}
	return ""
}

// personActed reports whether this round applied an intent or started a
// rollout.
func (x *decider) personActed() bool {
	return x.st.ObservedIntent != x.r.Status.ObservedIntent || x.st.Candidate != x.r.Status.Candidate
}
