// Package router is what Fulcrum knows about the objects that carry a
// model's traffic. A Router reads the route object a ModelRollout names
// (an Istio VirtualService with its DestinationRule, or a Gateway API
// HTTPRoute or GRPCRoute with its backend Services), resolves the managed
// routes, lists the model's versions with their pods' selectors, and writes
// the weights (and, where the mesh can express them, mirrors and match
// routes). The controller, the admin API and the webhook all go through
// it, so a route resolves one way everywhere.
//
// Implementations live in router/istio and router/gatewayapi; a Set picks
// the one for a rollout's spec.
package router

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Router is one kind of route object.
type Router interface {
	// Kind is the route object's group, version and kind, at the version
	// the API server serves.
	Kind() schema.GroupVersionKind
	// Read reads the rollout's route object and its versions. A missing
	// or inconsistent object is State.Problem, with the fix; the error is
	// for reads that failed.
	Read(ctx context.Context, mr *v1alpha1.ModelRollout) (*State, error)
	// Write makes the route object read by Read carry want, reading it
	// again and recomputing on a conflict so that someone else's edit of
	// other fields survives. It reports whether it wrote.
	Write(ctx context.Context, mr *v1alpha1.ModelRollout, st *State, want Desired) (bool, error)
	// Weights resolves the named routes (empty: the only one) on a route
	// object as given, without reading anything, and returns their
	// weights. The webhook's guard compares an edit's before and after
	// with it, and the conflict check compares two rollouts' route keys.
	Weights(obj *unstructured.Unstructured, routes []string) (RouteWeights, error)
}

// RouteWeights are the weights on each managed route, by version. A
// route's key is its name, or "http[0]" for the only, unnamed HTTP route
// of a VirtualService ("rules[0]" for a Gateway API route's only rule).
// Weights are percentages summing to 100 on each route.
type RouteWeights map[string]map[string]int32

// Version is one version of the model.
type Version struct {
	// Selector selects the version's pods: the DestinationRule subset's
	// labels with the model Service's selector, or the version Service's
	// selector.
	Selector map[string]string
}

// State is what Read found.
type State struct {
	// Object is the route object as read; nil when Problem says why not.
	Object *unstructured.Unstructured
	// Versions the model has now, by name (a subset, or a Service).
	Versions map[string]Version
	// Weights on the managed routes.
	Weights RouteWeights
	// Service is the model's Service as metrics name it
	// (destination_service_name), "" when not known.
	Service string
	// Hosts the model answers on, for checking warm-up URLs.
	Hosts []string
	// Problem is a missing or inconsistent reference, with the fix.
	Problem string
	// Shapes, Changes and Shadowed are what the route object does to the
	// managed routes besides weights (Istio only; see router/istio).
	Shapes   []v1alpha1.RouteShape
	Changes  []string
	Shadowed []string

	// Impl is the implementation's own data (the DestinationRule, say).
	Impl any
}

// Desired is what Write makes the route object carry.
type Desired struct {
	// Weights of the managed routes; versions left out get 0.
	Weights []v1alpha1.SubsetWeight
	// Mirror to set (nil: none); ClearMirror is the version of a mirror
	// Fulcrum set before that must go.
	Mirror      *Mirror
	ClearMirror string
	// Warmup route to keep; nil with ClearWarmup removes the rollout's.
	Warmup      *WarmupRoute
	ClearWarmup bool
	// Experiment stickiness to keep; nil with ClearExperiment removes the
	// rollout's.
	Experiment      *Experiment
	ClearExperiment bool
	// ClearCookie is the cookie whose Set-Cookie the cleared stickiness
	// wrote.
	ClearCookie string
}

// Mirror is the copy of traffic the shadow stage sends to a version, on
// every managed route.
type Mirror struct {
	Subset  string
	Percent int32
}

// WarmupRoute is the route the warm-up gate needs: requests carrying
// Header with value Subset go to that version.
type WarmupRoute struct {
	// Name of the route.
	Name string
	// Header the warm-up requests carry, and the version they name.
	Header, Subset string
}

// Experiment is the stickiness of an experiment's arms: cookie
// stickiness sends requests carrying the arm's cookie back to the arm;
// header stickiness sends requests whose Header is the arm's name to it.
type Experiment struct {
	// Rollout names the experiment's routes.
	Rollout string
	// Arms are the versions compared.
	Arms []string
	// Cookie and MaxAge, for cookie stickiness.
	Cookie string
	MaxAge time.Duration
	// Header, for header stickiness.
	Header string
}

// WeightsEqual reports whether two weight sets are the same, treating
// absent versions as weight 0.
func WeightsEqual(a, b map[string]int32) bool {
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
