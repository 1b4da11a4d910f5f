package istio

import (
	"context"
	"fmt"
	"strings"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
)

// Group is Istio's networking API group.
const Group = "networking.istio.io"

// Versions are the networking.istio.io versions Fulcrum reads and writes,
// newest first. Istio serves them from one schema; v1 needs Istio 1.22.
var Versions = []string{"v1", "v1beta1", "v1alpha3"}

// DetectVersion returns the networking.istio.io version the API server
// serves for VirtualServices, preferring the newest.
func DetectVersion(mapper meta.RESTMapper) (string, error) {
	for _, v := range Versions {
		_, err := mapper.RESTMapping(schema.GroupKind{Group: Group, Kind: "VirtualService"}, v)
		if err == nil {
			return v, nil
		}
		if !meta.IsNoMatchError(err) {
			return "", fmt.Errorf("discover networking.istio.io versions: %w", err)
		}
	}
	return "", fmt.Errorf("the API server serves no networking.istio.io VirtualService: install Istio's CRDs")
}

// Config is what the Istio router reads and writes with.
type Config struct {
	// Reader reads (from a cache, where it has one).
	Reader client.Reader
	// Writer updates the route object; nil for a router that only reads
	// (the webhook's).
	Writer client.Writer
	// Fresh reads the API server directly, for the fresh read after a
	// write conflict; Reader when nil.
	Fresh client.Reader
	// Version of networking.istio.io the API server serves ("v1" when
	// empty; see DetectVersion).
	Version string
	// Domain is the cluster's DNS domain.
	Domain ClusterDomain
	// OnWrite, when set, learns the result of every update sent.
	OnWrite func(error)
}

// Router routes through an Istio VirtualService whose destinations are
// the subsets of a DestinationRule.
type Router struct{ cfg Config }

var _ router.Router = (*Router)(nil)

// New returns the Istio router.
func New(cfg Config) *Router {
	if cfg.Version == "" {
		cfg.Version = "v1"
	}
	if cfg.Fresh == nil {
		cfg.Fresh = cfg.Reader
	}
	return &Router{cfg: cfg}
}

// Kind implements router.Router.
func (r *Router) Kind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: Group, Version: r.cfg.Version, Kind: "VirtualService"}
}

// New returns an empty object of an Istio networking kind at the served
// version, for reads and watches.
func (r *Router) New(kind string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: Group, Version: r.cfg.Version, Kind: kind})
	return u
}

// state is the Istio router's part of router.State.
type state struct {
	dr     *networkingv1.DestinationRule
	target Target
}

// Read implements router.Router.
func (r *Router) Read(ctx context.Context, mr *v1alpha1.ModelRollout) (*router.State, error) {
	st := &router.State{}
	ns := mr.Namespace
	ref := mr.Spec.RouteRef()
	vs := r.New("VirtualService")
	if err := r.cfg.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, vs); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get VirtualService %s/%s: %w", ns, ref.Name, err)
		}
		st.Problem = fmt.Sprintf("VirtualService %s/%s not found: create it with an HTTP route to the model's host (spec.virtualService.name)", ns, ref.Name)
		return st, nil
	}
	st.Object = vs
	dr, versions, problem, err := r.versions(ctx, mr)
	if err != nil {
		return nil, err
	}
	if problem != "" {
		st.Problem = problem
		return st, nil
	}
	t := Target{Routes: ref.Routes, DestinationRule: dr, Domain: r.cfg.Domain}
	st.Impl = &state{dr: dr, target: t}
	st.Versions = versions
	st.Service = r.service(mr, dr)
	st.Hosts = modelHosts(vs, dr, r.cfg.Domain)
	// Only a missing stable subset stops the rollout: a missing candidate
	// (or pinned) subset is the state machine's to handle, by holding its
	// weight at 0 or draining it to stable.
	if err := CheckSubsets(dr, mr.Spec.Stable); err != nil {
		st.Problem = err.Error()
		return st, nil
	}
	rw, err := ReadWeights(vs, t)
	if err != nil {
		st.Problem = err.Error()
		return st, nil
	}
	st.Weights = rw
	// A shadow stage under way needs the managed routes' mirror: a route
	// that mirrors elsewhere (someone else's mirror) stops the rollout
	// with a message rather than being overwritten.
	if sh := mr.Status.Shadow; sh != nil && (mr.Status.Phase == v1alpha1.PhaseProgressing || mr.Status.Phase == v1alpha1.PhasePaused) {
		if msg := ForeignMirror(vs, t, sh.Subset); msg != "" {
			st.Problem = msg
			return st, nil
		}
	}
	// Routes stay the user's: a route shadowed or re-steered is reported,
	// not undone (status.routeShapes is the baseline). The shadow stage's
	// own mirror is Fulcrum's doing, not a change of the routes' shape by
	// someone else.
	shaped := vs
	if sh := mr.Status.Shadow; sh != nil {
		if cleared, _, err := ClearMirror(vs, t, sh.Subset); err == nil {
			shaped = cleared
		}
	}
	if shapes, err := Shapes(shaped, t); err == nil {
		st.Shapes = shapes
		st.Changes = ShapeChanges(mr.Status.RouteShapes, shapes)
	}
	st.Shadowed = Shadowed(vs, t)
	return st, nil
}

// Versions reads the rollout's DestinationRule and returns its subsets
// with their pods' selectors. A missing or undecodable DestinationRule is
// a problem, with the fix.
func (r *Router) Versions(ctx context.Context, mr *v1alpha1.ModelRollout) (versions map[string]router.Version, problem string, err error) {
	_, versions, problem, err = r.versions(ctx, mr)
	return versions, problem, err
}

func (r *Router) versions(ctx context.Context, mr *v1alpha1.ModelRollout) (*networkingv1.DestinationRule, map[string]router.Version, string, error) {
	ns := mr.Namespace
	dru := r.New("DestinationRule")
	if err := r.cfg.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: mr.Spec.DestinationRule}, dru); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, nil, "", fmt.Errorf("get DestinationRule %s/%s: %w", ns, mr.Spec.DestinationRule, err)
		}
		return nil, nil, fmt.Sprintf("DestinationRule %s/%s not found: create it with one subset per model version (spec.destinationRule)", ns, mr.Spec.DestinationRule), nil
	}
	dr, err := DecodeDestinationRule(dru)
	if err != nil {
		return nil, nil, err.Error(), nil
	}
	sel, err := r.serviceSelector(ctx, ns, r.service(mr, dr))
	if err != nil {
		return nil, nil, "", err
	}
	versions := map[string]router.Version{}
	for _, s := range dr.Spec.GetSubsets() {
		labels := map[string]string{}
		for k, v := range sel {
			labels[k] = v
		}
		for k, v := range s.GetLabels() {
			labels[k] = v
		}
		versions[s.GetName()] = router.Version{Selector: labels}
	}
	return dr, versions, "", nil
}

// service is the model's Service: spec.service, or the Service of the
// rollout's namespace that the DestinationRule's host names ("" when the
// host is outside it).
func (r *Router) service(mr *v1alpha1.ModelRollout, dr *networkingv1.DestinationRule) string {
	if mr.Spec.Service != "" {
		return mr.Spec.Service
	}
	return r.cfg.Domain.Service(dr.Spec.GetHost(), dr.Namespace)
}

// serviceSelector returns the selector of the model's Service, or nil when
// there is no such Service in the namespace: then the subset labels alone
// select pods.
func (r *Router) serviceSelector(ctx context.Context, ns, name string) (map[string]string, error) {
	if name == "" {
		return nil, nil
	}
	svc := &corev1.Service{}
	if err := r.cfg.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get Service %s/%s: %w", ns, name, err)
	}
	return svc.Spec.Selector, nil
}

// modelHosts are the names the model answers on: its DestinationRule's
// host in every form DNS resolves, and the VirtualService's own hosts.
func modelHosts(vs *unstructured.Unstructured, dr *networkingv1.DestinationRule, domain ClusterDomain) []string {
	out := domain.DNSNames(dr.Spec.GetHost(), dr.Namespace)
	hosts, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "hosts")
	for _, h := range hosts {
		if h != "*" && !strings.HasPrefix(h, "*.") {
			out = append(out, strings.ToLower(h))
		}
	}
	return out
}

// Write implements router.Router.
func (r *Router) Write(ctx context.Context, mr *v1alpha1.ModelRollout, st *router.State, want router.Desired) (bool, error) {
	s, ok := st.Impl.(*state)
	if r.cfg.Writer == nil {
		return false, fmt.Errorf("the Istio router was built to read only")
	}
	if !ok || st.Object == nil {
		return false, fmt.Errorf("VirtualService of ModelRollout %s/%s was not read: %s", mr.Namespace, mr.Name, st.Problem)
	}
	vs := st.Object
	first, wrote := true, false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			fresh := r.New("VirtualService")
			if err := r.cfg.Fresh.Get(ctx, client.ObjectKeyFromObject(st.Object), fresh); err != nil {
				return fmt.Errorf("re-read VirtualService %s/%s: %w", st.Object.GetNamespace(), st.Object.GetName(), err)
			}
			vs = fresh
		}
		first = false
		next, changed, err := apply(vs, s.target, mr.Name, want)
		if err != nil {
			return err
		}
		if !changed {
			return nil
		}
		err = r.cfg.Writer.Update(ctx, next)
		if r.cfg.OnWrite != nil {
			r.cfg.OnWrite(err)
		}
		if err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("update VirtualService %s/%s: %w", vs.GetNamespace(), vs.GetName(), err)
		}
		wrote = err == nil
		return err
	})
	return wrote, err
}

// edit is one change apply makes to a VirtualService.
type edit struct {
	what string
	do   func(*unstructured.Unstructured) (*unstructured.Unstructured, bool, error)
}

// apply computes the VirtualService that carries want: the weights, then
// the mirror, warm-up route and experiment edits it asks for.
func apply(vs *unstructured.Unstructured, t Target, rollout string, want router.Desired) (*unstructured.Unstructured, bool, error) {
	ref := vs.GetNamespace() + "/" + vs.GetName()
	next, changed, err := SetWeights(vs, t, want.Weights)
	if err != nil {
		return nil, false, fmt.Errorf("compute weights for VirtualService %s: %w", ref, err)
	}
	var edits []edit
	if want.ClearMirror != "" {
		edits = append(edits, edit{"shadow mirror", func(u *unstructured.Unstructured) (*unstructured.Unstructured, bool, error) {
			return ClearMirror(u, t, want.ClearMirror)
		}})
	}
	if want.Mirror != nil {
		edits = append(edits, edit{"shadow mirror", func(u *unstructured.Unstructured) (*unstructured.Unstructured, bool, error) {
			return SetMirror(u, t, *want.Mirror)
		}})
	}
	switch {
	case want.Warmup != nil:
		edits = append(edits, edit{"warm-up route", func(u *unstructured.Unstructured) (*unstructured.Unstructured, bool, error) {
			return SetWarmupRoute(u, t, *want.Warmup)
		}})
	case want.ClearWarmup:
		edits = append(edits, edit{"warm-up route", func(u *unstructured.Unstructured) (*unstructured.Unstructured, bool, error) {
			return ClearWarmupRoute(u, WarmupRouteName(rollout))
		}})
	}
	switch {
	case want.Experiment != nil:
		edits = append(edits, edit{"experiment", func(u *unstructured.Unstructured) (*unstructured.Unstructured, bool, error) {
			return SetExperiment(u, t, *want.Experiment)
		}})
	case want.ClearExperiment:
		edits = append(edits, edit{"experiment", func(u *unstructured.Unstructured) (*unstructured.Unstructured, bool, error) {
			return ClearExperiment(u, t, rollout, want.ClearCookie)
		}})
	}
	for _, e := range edits {
		n, c, err := e.do(next)
		if err != nil {
			return nil, false, fmt.Errorf("%s on VirtualService %s: %w", e.what, ref, err)
		}
		next, changed = n, changed || c
	}
	return next, changed, nil
}

// Weights implements router.Router. Without a DestinationRule the
// destinations' hosts are not checked.
func (r *Router) Weights(obj *unstructured.Unstructured, routes []string) (router.RouteWeights, error) {
	return ReadWeights(obj, Target{Routes: routes, Domain: r.cfg.Domain})
}
