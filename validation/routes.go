package validation

import (
	"fmt"
	"strconv"
	"strings"

	networking "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

// ManagedRoute is one HTTP route of a VirtualService whose weights a
// ModelRollout manages.
type ManagedRoute struct {
	// Name of the route; empty for the single unnamed route.
	Name string
	// Index of the route in spec.http.
	Index int
}

// Key identifies the route within its VirtualService: the name, or "#INDEX"
// for an unnamed route.
func (r ManagedRoute) Key() string {
	if r.Name != "" {
		return r.Name
	}
	return "#" + strconv.Itoa(r.Index)
}

// String names the route for messages.
func (r ManagedRoute) String() string {
	if r.Name != "" {
		return strconv.Quote(r.Name)
	}
	return fmt.Sprintf("the unnamed route spec.http[%d]", r.Index)
}

// ManagedRoutes resolves ref against the VirtualService: each named route,
// or the only HTTP route when ref names none. Errors are reported at
// basePath (spec.virtualService) and its routes.
func ManagedRoutes(vs *istiov1.VirtualService, ref v1alpha1.VirtualServiceRef, basePath *field.Path) ([]ManagedRoute, field.ErrorList) {
	all := vs.Spec.GetHttp()
	vsName := vs.Namespace + "/" + vs.Name
	var errs field.ErrorList
	if len(ref.Routes) == 0 {
		// The warm-up routes Fulcrum writes in front of a managed route are
		// never the user's.
		var http []*networking.HTTPRoute
		index := map[*networking.HTTPRoute]int{}
		for i, r := range all {
			if !istio.IsOwnedRoute(r.GetName()) {
				http, index[r] = append(http, r), i
			}
		}
		switch len(http) {
		case 1:
			return []ManagedRoute{{Name: http[0].GetName(), Index: index[http[0]]}}, nil
		case 0:
			return nil, field.ErrorList{field.Invalid(basePath.Child("name"), ref.Name, fmt.Sprintf(
				"VirtualService %s has no HTTP routes; add an http route whose destinations are the model's subsets", vsName))}
		default:
			return nil, field.ErrorList{field.Required(basePath.Child("routes"), fmt.Sprintf(
				"VirtualService %s has %d HTTP routes (%s): name the ones Fulcrum manages in spec.virtualService.routes (unnamed routes need a name first)",
				vsName, len(http), routeNames(all, true)))}
		}
	}
	http := all
	var out []ManagedRoute
	for i, name := range ref.Routes {
		idx := -1
		for j, r := range http {
			if r.GetName() == name {
				idx = j
				break
			}
		}
		if idx < 0 {
			errs = append(errs, field.Invalid(basePath.Child("routes").Index(i), name, fmt.Sprintf(
				"VirtualService %s has no HTTP route named %q (it has: %s); fix the name or add the route", vsName, name, routeNames(http, false))))
			continue
		}
		out = append(out, ManagedRoute{Name: name, Index: idx})
	}
	return out, errs
}

// routeNames lists the routes for a message, unnamed ones by their index in
// spec.http; userOnly leaves out Fulcrum's warm-up routes.
func routeNames(http []*networking.HTTPRoute, userOnly bool) string {
	var names []string
	for i, r := range http {
		switch {
		case userOnly && istio.IsOwnedRoute(r.GetName()):
		case r.GetName() == "":
			names = append(names, fmt.Sprintf("unnamed http[%d]", i))
		default:
			names = append(names, strconv.Quote(r.GetName()))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
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
