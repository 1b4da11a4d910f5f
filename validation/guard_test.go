package validation_test

import (
	"testing"

	networking "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

func TestManagedRouteChanges(t *testing.T) {
	base := virtualService("fraud", httpRoute("predict", dest("v1", 90), dest("v2", 10)), httpRoute("explain", dest("v1", 100)))
	edit := func(f func(vs []*networking.HTTPRoute) []*networking.HTTPRoute) *istiov1.VirtualService {
		vs := base.DeepCopy()
		vs.Spec.Http = f(vs.Spec.Http)
		return vs
	}
	deleting := rollout()
	deleting.DeletionTimestamp = &metav1.Time{}
	tests := []struct {
		name     string
		vs       *istiov1.VirtualService
		rollouts []v1alpha1.ModelRollout
		want     []string // route keys changed
		removed  bool
	}{
		{"weight change", edit(func(h []*networking.HTTPRoute) []*networking.HTTPRoute {
			h[0].Route[0].Weight, h[0].Route[1].Weight = 50, 50
			return h
		}), []v1alpha1.ModelRollout{*rollout(inPhase(v1alpha1.PhaseProgressing))}, []string{"predict"}, false},
		{"destination subset change", edit(func(h []*networking.HTTPRoute) []*networking.HTTPRoute {
			h[0].Route[1].Destination.Subset = "v3"
			return h
		}), []v1alpha1.ModelRollout{*rollout()}, []string{"predict"}, false},
		{"timeout change passes", edit(func(h []*networking.HTTPRoute) []*networking.HTTPRoute {
			h[0].Timeout = nil
			h[0].Retries = &networking.HTTPRetry{Attempts: 3}
			return h
		}), []v1alpha1.ModelRollout{*rollout()}, nil, false},
		{"unmanaged route weights pass", edit(func(h []*networking.HTTPRoute) []*networking.HTTPRoute {
			h[1].Route = append(h[1].Route, dest("v2", 0))
			return h
		}), []v1alpha1.ModelRollout{*rollout()}, nil, false},
		{"route reorder passes", edit(func(h []*networking.HTTPRoute) []*networking.HTTPRoute {
			return []*networking.HTTPRoute{h[1], h[0]}
		}), []v1alpha1.ModelRollout{*rollout()}, nil, false},
		{"route removed", edit(func(h []*networking.HTTPRoute) []*networking.HTTPRoute { return h[1:] }),
			[]v1alpha1.ModelRollout{*rollout()}, []string{"predict"}, true},
		{"failed rollout does not manage", edit(func(h []*networking.HTTPRoute) []*networking.HTTPRoute {
			h[0].Route[0].Weight = 0
			return h
		}), []v1alpha1.ModelRollout{*rollout(inPhase(v1alpha1.PhaseFailed))}, nil, false},
		{"deleting rollout does not manage", edit(func(h []*networking.HTTPRoute) []*networking.HTTPRoute {
			h[0].Route[0].Weight = 0
			return h
		}), []v1alpha1.ModelRollout{*deleting}, nil, false},
		{"rollout of another virtual service", edit(func(h []*networking.HTTPRoute) []*networking.HTTPRoute {
			h[0].Route[0].Weight = 0
			return h
		}), []v1alpha1.ModelRollout{*rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService.Name = "other" })}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := validation.ManagedRouteChanges(base, tt.vs, tt.rollouts)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d changes %+v, want %v", len(got), got, tt.want)
			}
			for i, c := range got {
				if c.Route.Key() != tt.want[i] || c.Removed != tt.removed || c.Rollout.Name != "fraud" {
					t.Errorf("change %d = %+v", i, c)
				}
			}
		})
	}
}

func TestManagedRouteChangesReportsWeights(t *testing.T) {
	old := virtualService("single", httpRoute("", dest("v1", 0)))
	vs := virtualService("single", httpRoute("", dest("v1", 70), dest("v2", 30)))
	mr := rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService = &v1alpha1.VirtualServiceRef{Name: "single"} })
	got := validation.ManagedRouteChanges(old, vs, []v1alpha1.ModelRollout{*mr})
	if len(got) != 1 {
		t.Fatalf("got %+v", got)
	}
	c := got[0]
	// A lone destination without a weight gets 100%, as in Istio.
	if len(c.Old) != 1 || c.Old[0].Weight != 100 || len(c.New) != 2 || c.New[0] != (v1alpha1.SubsetWeight{Subset: "v1", Weight: 70}) {
		t.Errorf("weights: old %+v new %+v", c.Old, c.New)
	}
	if c.Route.String() != "the unnamed route spec.http[0]" {
		t.Errorf("route = %s", c.Route)
	}
}
