package validation

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
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
	u, err := toUnstructured(vs)
	if err != nil {
		return nil, field.ErrorList{field.InternalError(basePath, fmt.Errorf("VirtualService %s: %w", vsName, err))}
	}
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
