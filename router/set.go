package router

import (
	"fmt"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Set holds the routers of one cluster, one per kind of route object, and
// picks a rollout's.
type Set struct {
	byKind map[string]Router
}

// NewSet returns a Set of the given routers; nil ones are left out (a
// cluster that serves no Gateway API has no router for it).
func NewSet(routers ...Router) *Set {
	s := &Set{byKind: map[string]Router{}}
	for _, r := range routers {
		if r != nil {
			s.byKind[r.Kind().Kind] = r
		}
	}
	return s
}

// For returns the router of the rollout's route object. The error says
// what is missing and how to fix it.
func (s *Set) For(mr *v1alpha1.ModelRollout) (Router, error) {
	ref := mr.Spec.RouteRef()
	if ref.Kind == "" {
		return nil, fmt.Errorf("ModelRollout %s/%s names no route object: set spec.virtualService (with spec.destinationRule), spec.httpRoute or spec.grpcRoute", mr.Namespace, mr.Name)
	}
	return s.Kind(ref.Kind)
}

// Kind returns the router of a kind of route object (a RouteKind constant).
func (s *Set) Kind(kind string) (Router, error) {
	r, ok := s.byKind[kind]
	if !ok {
		return nil, fmt.Errorf("the cluster serves no %s API that Fulcrum can use: install its CRDs (Istio's networking.istio.io, or Gateway API's gateway.networking.k8s.io v1) and restart Fulcrum", kind)
	}
	return r, nil
}

// All returns every router of the set.
func (s *Set) All() []Router {
	out := make([]Router, 0, len(s.byKind))
	for _, k := range []string{v1alpha1.RouteKindVirtualService, v1alpha1.RouteKindHTTPRoute, v1alpha1.RouteKindGRPCRoute} {
		if r, ok := s.byKind[k]; ok {
			out = append(out, r)
		}
	}
	return out
}
