// Package gatewayapi routes a model's traffic through a Gateway API route:
// an HTTPRoute or GRPCRoute (gateway.networking.k8s.io/v1) whose rules
// name each version's Service in backendRefs with weights. Gateway API has
// no subsets: a version is a Service, and its pods are the ones the
// Service selects.
//
// As with Istio, the route is handled as unstructured data exactly as the
// API server returned it, and only the weight of backendRefs in managed
// rules is written (plus backendRefs appended for versions that get
// traffic and are not listed yet), so fields Fulcrum was not compiled
// with survive. What Gateway API cannot express portably (a mirror with a
// percentage on every implementation, cookie stickiness, a header route in
// front of the user's) is refused by the CRD for these routes; see
// docs/routers.md.
package gatewayapi

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
)

// Group is Gateway API's group; Version the one Fulcrum uses.
var (
	Group   = gatewayv1.GroupName
	Version = gatewayv1.GroupVersion.Version
)

// Served reports whether the API server serves kind (HTTPRoute or
// GRPCRoute) at gateway.networking.k8s.io/v1.
func Served(mapper meta.RESTMapper, kind string) (bool, error) {
	_, err := mapper.RESTMapping(schema.GroupKind{Group: Group, Kind: kind}, Version)
	if err == nil {
		return true, nil
	}
	if meta.IsNoMatchError(err) {
		return false, nil
	}
	return false, fmt.Errorf("discover %s.%s/%s: %w", kind, Group, Version, err)
}

// Config is what the router reads and writes with.
type Config struct {
	// Kind is HTTPRoute or GRPCRoute.
	Kind string
	// Reader reads (from a cache, where it has one).
	Reader client.Reader
	// Writer updates the route object; nil for a router that only reads
	// (the webhook's).
	Writer client.Writer
	// Fresh reads the API server directly, for the fresh read after a
	// write conflict; Reader when nil.
	Fresh client.Reader
	// OnWrite, when set, learns the result of every update sent.
	OnWrite func(error)
}

// Router routes through an HTTPRoute or a GRPCRoute.
type Router struct{ cfg Config }

var _ router.Router = (*Router)(nil)

// New returns the router of cfg.Kind.
func New(cfg Config) *Router {
	if cfg.Fresh == nil {
		cfg.Fresh = cfg.Reader
	}
	return &Router{cfg: cfg}
}

// Kind implements router.Router.
func (r *Router) Kind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: Group, Version: Version, Kind: r.cfg.Kind}
}

// New returns an empty route object for reads and watches.
func (r *Router) New() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(r.Kind())
	return u
}

// Read implements router.Router.
func (r *Router) Read(ctx context.Context, mr *v1alpha1.ModelRollout) (*router.State, error) {
	st := &router.State{}
	ns, ref := mr.Namespace, mr.Spec.RouteRef()
	obj := r.New()
	if err := r.cfg.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, obj); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get %s %s/%s: %w", r.cfg.Kind, ns, ref.Name, err)
		}
		st.Problem = fmt.Sprintf("%s %s/%s not found: create it with a rule whose backendRefs are the versions' Services (%s.name)", r.cfg.Kind, ns, ref.Name, ref.Field())
		return st, nil
	}
	st.Object = obj
	st.Service = mr.Spec.Service
	if st.Service == "" {
		st.Service = parentService(obj)
	}
	rw, err := readWeights(obj, ref.Routes)
	if err != nil {
		st.Problem = err.Error()
		return st, nil
	}
	st.Weights = rw
	// The versions are Services: those in play for the rollout and those
	// the managed rules list.
	names := mr.VersionsInPlay()
	for _, w := range rw {
		for s := range w {
			names = append(names, s)
		}
	}
	st.Versions = map[string]router.Version{}
	for _, name := range names {
		if _, done := st.Versions[name]; done {
			continue
		}
		svc := &corev1.Service{}
		if err := r.cfg.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, svc); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("get Service %s/%s: %w", ns, name, err)
		}
		if len(svc.Spec.Selector) == 0 {
			st.Problem = fmt.Sprintf("Service %s/%s (a version of %s %s/%s) has no selector: Fulcrum counts a version's Ready pods through its Service's selector; give the Service one", ns, name, r.cfg.Kind, ns, ref.Name)
			return st, nil
		}
		st.Versions[name] = router.Version{Selector: svc.Spec.Selector}
	}
	if _, ok := st.Versions[mr.Spec.Stable]; !ok {
		st.Problem = fmt.Sprintf("Service %s/%s not found: spec.stable names the stable version's Service, whose selector picks its pods; create it or fix spec.stable", ns, mr.Spec.Stable)
		return st, nil
	}
	return st, nil
}

// parentService is the Service a mesh route (GAMMA) is attached to: the
// model's Service, as mesh metrics name the front door. "" when the route
// is attached to Gateways only.
func parentService(obj *unstructured.Unstructured) string {
	parents, _, _ := unstructured.NestedSlice(obj.Object, "spec", "parentRefs")
	for _, p := range parents {
		m, _ := p.(map[string]any)
		group, _ := m["group"].(string)
		kind, _ := m["kind"].(string)
		ns, _ := m["namespace"].(string)
		if group == "" && kind == "Service" && (ns == "" || ns == obj.GetNamespace()) {
			name, _ := m["name"].(string)
			return name
		}
	}
	return ""
}

// Write implements router.Router. Mirrors, warm-up routes and experiment
// stickiness are refused: the CRD keeps rollouts that need them on Istio.
func (r *Router) Write(ctx context.Context, mr *v1alpha1.ModelRollout, st *router.State, want router.Desired) (bool, error) {
	if r.cfg.Writer == nil {
		return false, fmt.Errorf("the %s router was built to read only", r.cfg.Kind)
	}
	if st.Object == nil {
		return false, fmt.Errorf("%s of ModelRollout %s/%s was not read: %s", r.cfg.Kind, mr.Namespace, mr.Name, st.Problem)
	}
	if want.Mirror != nil || want.Warmup != nil || want.Experiment != nil {
		return false, fmt.Errorf("%s %s/%s: mirrors, warm-up routes and experiments need an Istio VirtualService (see docs/routers.md)", r.cfg.Kind, mr.Namespace, st.Object.GetName())
	}
	routes := mr.Spec.RouteRef().Routes
	obj, first, wrote := st.Object, true, false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			fresh := r.New()
			if err := r.cfg.Fresh.Get(ctx, client.ObjectKeyFromObject(st.Object), fresh); err != nil {
				return fmt.Errorf("re-read %s %s/%s: %w", r.cfg.Kind, st.Object.GetNamespace(), st.Object.GetName(), err)
			}
			obj = fresh
		}
		first = false
		next, changed, err := setWeights(obj, routes, want.Weights)
		if err != nil {
			return fmt.Errorf("compute weights for %s %s/%s: %w", r.cfg.Kind, obj.GetNamespace(), obj.GetName(), err)
		}
		if !changed {
			return nil
		}
		err = r.cfg.Writer.Update(ctx, next)
		if r.cfg.OnWrite != nil {
			r.cfg.OnWrite(err)
		}
		if err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("update %s %s/%s: %w", r.cfg.Kind, obj.GetNamespace(), obj.GetName(), err)
		}
		wrote = err == nil
		return err
	})
	return wrote, err
}

// Weights implements router.Router.
func (r *Router) Weights(obj *unstructured.Unstructured, routes []string) (router.RouteWeights, error) {
	return readWeights(obj, routes)
}
