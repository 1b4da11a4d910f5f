package validation_test

import (
	"strings"
	"testing"

	networking "istio.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

// warmupRoute is the route Fulcrum writes in front of the managed routes
// while the warm-up gate holds.
func warmupRoute() *networking.HTTPRoute {
	return &networking.HTTPRoute{
		Name: "fulcrum-warmup-fraud",
		Match: []*networking.HTTPMatchRequest{{
			Headers: map[string]*networking.StringMatch{
				"x-fulcrum-warmup": {MatchType: &networking.StringMatch_Exact{Exact: "v2"}},
			},
		}},
		Route: []*networking.HTTPRouteDestination{dest("v2", 100)},
	}
}

func TestManagedRoutesSkipsWarmupRoute(t *testing.T) {
	vs := virtualService("fraud", warmupRoute(), httpRoute("", dest("v1", 100), dest("v2", 0)))
	got, errs := validation.ManagedRoutes(vs, v1alpha1.VirtualServiceRef{Name: "fraud"}, field.NewPath("spec", "virtualService"))
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	if len(got) != 1 {
		t.Fatalf("got %d routes %+v, want 1", len(got), got)
	}
	if got[0].Name != "" || got[0].Index != 1 {
		t.Errorf("got %+v, want the unnamed route at index 1", got[0])
	}
	// The router's key: the webhook and the controller name routes alike.
	if got[0].Key() != "http[0]" {
		t.Errorf("Key() = %q, want http[0]", got[0].Key())
	}
}

func TestManagedRoutesWarmupRouteDoesNotHideTwoUserRoutes(t *testing.T) {
	vs := virtualService("fraud", warmupRoute(),
		httpRoute("predict", dest("v1", 100), dest("v2", 0)),
		httpRoute("explain", dest("v1", 100)))
	got, errs := validation.ManagedRoutes(vs, v1alpha1.VirtualServiceRef{Name: "fraud"}, field.NewPath("spec", "virtualService"))
	if len(errs) != 1 {
		t.Fatalf("got routes %+v and errors %v, want one error", got, errs)
	}
	if got != nil {
		t.Errorf("got routes %+v alongside the error", got)
	}
	e := errs[0]
	if e.Field != "spec.virtualService.routes" || e.Type != field.ErrorTypeRequired {
		t.Errorf("error at %s (%s), want Required at spec.virtualService.routes: %v", e.Field, e.Type, e)
	}
	if !strings.Contains(e.Detail, "2 HTTP routes") {
		t.Errorf("detail %q should count the 2 user routes, not the warm-up route", e.Detail)
	}
	if strings.Contains(e.Detail, "fulcrum-warmup") {
		t.Errorf("detail %q names the warm-up route", e.Detail)
	}
}

// Unnamed routes are listed by their index in spec.http, warm-up routes
// counted: the index a user reads is the one they edit.
func TestManagedRoutesNamesUnnamedRoutesByTheirIndex(t *testing.T) {
	vs := virtualService("fraud", warmupRoute(),
		httpRoute("", dest("v1", 100), dest("v2", 0)),
		httpRoute("explain", dest("v1", 100)))
	_, errs := validation.ManagedRoutes(vs, v1alpha1.VirtualServiceRef{Name: "fraud"}, field.NewPath("spec", "virtualService"))
	if len(errs) != 1 || !strings.Contains(errs[0].Detail, `unnamed http[1], "explain"`) {
		t.Fatalf("errors %v, want one listing the unnamed route as http[1]", errs)
	}
}
