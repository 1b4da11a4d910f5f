package istio

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

const unnamedVS = `
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: model-vs, namespace: ml}
spec:
  hosts: [model.example.com]
  http:
    - route:
        - destination: {host: fraud, subset: v1, port: {number: 8080}}
          weight: 70
        - destination: {host: fraud, subset: v2, port: {number: 8080}}
          weight: 30
`

// The warm-up route goes right in front of the managed route, matches only
// the warm-up header naming the subset, and keeps the route's port; with
// it in place the VirtualService's single unnamed route is still "the only
// HTTP route" (key http[0]) for weights, and clearing it gives back exactly
// the original.
func TestWarmupRouteInFrontOfTheManagedRoute(t *testing.T) {
	for _, tc := range []struct {
		name, vs string
		routes   []string
		at       int
	}{
		{"unnamed single route", unnamedVS, nil, 0},
		{"named route after another", mirrorVS, []string{"predict"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := decodeUnstructured(t, mustJSON(t, tc.vs))
			target := Target{Routes: tc.routes, DestinationRule: testDR(t)}
			before, err := ReadWeights(in, target)
			if err != nil {
				t.Fatal(err)
			}
			wr := WarmupRoute{Name: WarmupRouteName("fraud"), Header: "x-fulcrum-warmup", Subset: "v2"}
			out, changed, err := SetWarmupRoute(in, target, wr)
			if err != nil || !changed {
				t.Fatalf("SetWarmupRoute: changed=%v err=%v", changed, err)
			}
			http := out.Object["spec"].(map[string]any)["http"].([]any)
			got, _ := yaml.Marshal(http[tc.at])
			want := "match:\n- headers:\n    x-fulcrum-warmup:\n      exact: v2\nname: fulcrum-warmup-fraud\nroute:\n- destination:\n    host: fraud\n    port:\n      number: 8080\n    subset: v2\n"
			if string(got) != want {
				t.Fatalf("spec.http[%d]:\n%s\nwant:\n%s", tc.at, got, want)
			}
			after, err := ReadWeights(out, target)
			if err != nil || !equality.Semantic.DeepEqual(before, after) {
				t.Fatalf("weights with the warm-up route: %v (err %v), before %v", after, err, before)
			}
			if _, again, err := SetWarmupRoute(out, target, wr); err != nil || again {
				t.Fatalf("second SetWarmupRoute: changed=%v err=%v", again, err)
			}
			// Weights are written around it; it stays.
			stepped, _, err := SetWeights(out, target, []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 80}, {Subset: "v2", Weight: 20}})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(stepped.Object["spec"].(map[string]any)["http"].([]any)); n != len(http) {
				t.Fatalf("SetWeights left %d routes, want %d", n, len(http))
			}
			back, changed, err := ClearWarmupRoute(out, wr.Name)
			if err != nil || !changed || !equality.Semantic.DeepEqual(normal(t, back.Object), normal(t, in.Object)) {
				b, _ := yaml.Marshal(back.Object)
				t.Fatalf("ClearWarmupRoute: changed=%v err=%v\n%s", changed, err, b)
			}
			if _, changed, _ := ClearWarmupRoute(back, wr.Name); changed {
				t.Fatal("clearing an absent warm-up route changed the VirtualService")
			}
			if !equality.Semantic.DeepEqual(normal(t, in.Object), normal(t, decodeUnstructured(t, mustJSON(t, tc.vs)).Object)) {
				t.Fatal("the input was modified")
			}
		})
	}
}

// Only routes with the prefix are cleared, and a bad route is refused.
func TestWarmupRouteRefusesOthers(t *testing.T) {
	in := decodeUnstructured(t, mustJSON(t, mirrorVS))
	if _, changed, _ := ClearWarmupRoute(in, "predict"); changed {
		t.Fatal("ClearWarmupRoute removed a user's route")
	}
	target := Target{Routes: []string{"predict"}, DestinationRule: testDR(t)}
	if _, _, err := SetWarmupRoute(in, target, WarmupRoute{Name: "predict", Header: "h", Subset: "v2"}); err == nil {
		t.Fatal("SetWarmupRoute accepted a name without the prefix")
	}
	if _, _, err := SetWarmupRoute(in, target, WarmupRoute{Name: WarmupRouteName("x"), Header: "h", Subset: "v9"}); err == nil {
		t.Fatal("SetWarmupRoute accepted a subset missing from the DestinationRule")
	}
}
