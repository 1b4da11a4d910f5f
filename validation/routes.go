package validation

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	networking "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

// ManagedRoute is one HTTP route of a VirtualService whose weights a
// ModelRollout manages, as the router resolves it (istio.ResolveRoutes).
type ManagedRoute struct {
	// Name of the route; empty for the single unnamed route.
	Name string
	// Index of the route in spec.http.
	Index int
	// key is the router's key of the route.
	key string
}

// Key identifies the route within its VirtualService as the router keys it:
// the name, or "http[0]" for the only, unnamed route.
func (r ManagedRoute) Key() string {
	if r.key != "" {
		return r.key
	}
	return r.Name
}

// String names the route for messages.
func (r ManagedRoute) String() string {
	if r.Name != "" {
		return strconv.Quote(r.Name)
	}
	return fmt.Sprintf("the unnamed route spec.http[%d]", r.Index)
}

// ManagedRoutes resolves ref against the VirtualService through the router
// (istio.ResolveRoutes): each named route, or the only HTTP route when ref
// names none. Errors are reported at basePath (spec.virtualService) and its
// routes.
func ManagedRoutes(vs *istiov1.VirtualService, ref v1alpha1.VirtualServiceRef, basePath *field.Path) ([]ManagedRoute, field.ErrorList) {
	vsName := vs.Namespace + "/" + vs.Name
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(vs)
	if err != nil {
		return nil, field.ErrorList{field.InternalError(basePath, fmt.Errorf("VirtualService %s: %w", vsName, err))}
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetNamespace(vs.Namespace)
	u.SetName(vs.Name)
	routes, err := istio.ResolveRoutes(u, ref.Routes)
	var rerr *istio.RouteError
	switch {
	case err == nil:
		out := make([]ManagedRoute, len(routes))
		for i, r := range routes {
			out[i] = ManagedRoute{Name: r.Name, Index: r.Index, key: r.Key}
		}
		return out, nil
	case !errors.As(err, &rerr):
		return nil, field.ErrorList{field.Invalid(basePath.Child("name"), ref.Name, err.Error())}
	case len(ref.Routes) == 0 && rerr.UserRoutes == 0:
		return nil, field.ErrorList{field.Invalid(basePath.Child("name"), ref.Name, fmt.Sprintf(
			"VirtualService %s has no HTTP routes; add an http route whose destinations are the model's subsets", vsName))}
	case len(ref.Routes) == 0:
		return nil, field.ErrorList{field.Required(basePath.Child("routes"), fmt.Sprintf(
			"VirtualService %s has %d HTTP routes (%s): name the ones Fulcrum manages in spec.virtualService.routes (unnamed routes need a name first)",
			vsName, rerr.UserRoutes, strings.Join(rerr.Routes, ", ")))}
	}
	var errs field.ErrorList
	have := "none"
	if len(rerr.Routes) > 0 {
		have = strings.Join(rerr.Routes, ", ")
	}
	for _, i := range rerr.Missing {
		name := ref.Routes[i]
		errs = append(errs, field.Invalid(basePath.Child("routes").Index(i), name, fmt.Sprintf(
			"VirtualService %s has no HTTP route named %q (it has: %s); fix the name or add the route", vsName, name, have)))
	}
	return nil, errs
}

// RouteWeights returns the weight of each destination of an HTTP route,
// keyed by "host/subset[:port]". Istio reads a missing weight as 100 when
// the route has a single destination and 0 otherwise; this does the same.
func RouteWeights(r *networking.HTTPRoute) map[string]int32 {
	out := make(map[string]int32, len(r.GetRoute()))
	dests := r.GetRoute()
	for _, d := range dests {
		w := d.GetWeight()
		if len(dests) == 1 && w == 0 {
			w = 100
		}
		out[destinationKey(d.GetDestination())] += w
	}
	return out
}

func destinationKey(d *networking.Destination) string {
	k := d.GetHost() + "/" + d.GetSubset()
	if p := d.GetPort().GetNumber(); p != 0 {
		k += ":" + strconv.FormatUint(uint64(p), 10)
	}
	return k
}

// SubsetWeights returns a route's weights by subset name, for messages and
// suggested commands.
func SubsetWeights(r *networking.HTTPRoute) []v1alpha1.SubsetWeight {
	var out []v1alpha1.SubsetWeight
	dests := r.GetRoute()
	for _, d := range dests {
		w := d.GetWeight()
		if len(dests) == 1 && w == 0 {
			w = 100
		}
		out = append(out, v1alpha1.SubsetWeight{Subset: d.GetDestination().GetSubset(), Weight: w})
	}
	return out
}
