package v1alpha1

// Kinds of route object a ModelRollout can manage.
const (
	RouteKindVirtualService = "VirtualService"
	RouteKindHTTPRoute      = "HTTPRoute"
	RouteKindGRPCRoute      = "GRPCRoute"
)

// RouteRef is the route object a rollout manages, whichever of
// spec.virtualService, spec.httpRoute and spec.grpcRoute names it.
type RouteRef struct {
	// Kind is one of the RouteKind constants; empty when the spec names none.
	Kind string
	// Name of the object in the rollout's namespace.
	Name string
	// Routes are the managed HTTP routes (VirtualService) or rules (Gateway
	// API routes) by name; empty means the object's only one.
	Routes []string
}

// RouteRef returns the route object the spec names (the CRD admits exactly
// one).
func (s *ModelRolloutSpec) RouteRef() RouteRef {
	switch {
	case s.VirtualService != nil:
		return RouteRef{Kind: RouteKindVirtualService, Name: s.VirtualService.Name, Routes: s.VirtualService.Routes}
	case s.HTTPRoute != nil:
		return RouteRef{Kind: RouteKindHTTPRoute, Name: s.HTTPRoute.Name, Routes: s.HTTPRoute.Rules}
	case s.GRPCRoute != nil:
		return RouteRef{Kind: RouteKindGRPCRoute, Name: s.GRPCRoute.Name, Routes: s.GRPCRoute.Rules}
	}
	return RouteRef{}
}

// String names the object for messages, such as "VirtualService fraud".
func (r RouteRef) String() string {
	if r.Kind == "" {
		return "no route object"
	}
	return r.Kind + " " + r.Name
}

// Field is the spec field that names the object, for messages.
func (r RouteRef) Field() string {
	switch r.Kind {
	case RouteKindHTTPRoute:
		return "spec.httpRoute"
	case RouteKindGRPCRoute:
		return "spec.grpcRoute"
	}
	return "spec.virtualService"
}

// RoutesField is the field that lists the managed routes or rules.
func (r RouteRef) RoutesField() string {
	if r.Kind == RouteKindVirtualService || r.Kind == "" {
		return "spec.virtualService.routes"
	}
	return r.Field() + ".rules"
}

// VersionsInPlay are the versions the rollout may send traffic to now:
// stable, the candidate, an experiment's arms, a split's versions, and
// those status says carry weight.
func (r *ModelRollout) VersionsInPlay() []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	add(r.Spec.Stable)
	add(r.Spec.Candidate)
	if e := r.Spec.Strategy.Experiment; e != nil && r.Spec.Candidate != "" {
		// An experiment sends traffic to every arm, not only the candidate.
		for _, a := range e.Arms {
			add(a.Subset)
		}
	}
	if in := r.Spec.Intent; in != nil && in.Action == IntentSplit {
		for _, w := range in.Weights {
			add(w.Subset)
		}
	}
	for _, w := range r.Status.Weights {
		if w.Weight > 0 {
			add(w.Subset)
		}
	}
	return out
}

// GatewayRouted reports whether the rollout routes through a Gateway API
// route, whose versions are Services rather than subsets.
func (s *ModelRolloutSpec) GatewayRouted() bool {
	return s.HTTPRoute != nil || s.GRPCRoute != nil
}
