package validation_test

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

// vsWith is VirtualService name in namespace ml with the given spec.http,
// written in YAML flow style.
func vsWith(t *testing.T, name, http string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	doc := fmt.Sprintf("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: %s, namespace: ml}\nspec: {hosts: [fraud], http: %s}\n", name, http)
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return u
}

const (
	dests      = `route: [{destination: {host: fraud, subset: v1}, weight: 90}, {destination: {host: fraud, subset: v2}, weight: 10}]`
	predict    = `{name: predict, match: [{uri: {prefix: /predict}}], ` + dests + `}`
	explain    = `{name: explain, match: [{uri: {prefix: /explain}}], ` + dests + `}`
	catchAll   = `{name: all, ` + dests + `}`
	withFault  = `{name: predict, match: [{uri: {prefix: /predict}}], fault: {abort: {httpStatus: 503, percentage: {value: 10}}}, ` + dests + `}`
	withMirror = `{name: predict, match: [{uri: {prefix: /predict}}], mirror: {host: shadow}, mirrorPercentage: {value: 5}, ` + dests + `}`
)

func TestManagedRouteSteering(t *testing.T) {
	list := func(routes ...string) string { return "[" + strings.Join(routes, ", ") + "]" }
	failed := rollout(inPhase(v1alpha1.PhaseFailed))
	deleting := rollout()
	deleting.DeletionTimestamp = &metav1.Time{}
	tests := []struct {
		name     string
		old, new string // spec.http
		rollouts []v1alpha1.ModelRollout
		fields   string // the blocking field changes
		released string
		shadow   string // the route that newly shadows predict
	}{
		{"fault added", list(predict, explain), list(withFault, explain), nil, `[route "predict": fault added]`, "[]", ""},
		{"fault changed", list(withFault), list(`{name: predict, match: [{uri: {prefix: /predict}}], fault: {abort: {httpStatus: 500, percentage: {value: 10}}}, ` + dests + `}`), nil,
			`[route "predict": fault changed]`, "[]", ""},
		{"fault removed is a release", list(withFault), list(predict), nil, "[]", `[route "predict": fault removed]`, ""},
		{"match removed widens the route", list(predict), list(`{name: predict, ` + dests + `}`), nil, `[route "predict": match removed]`, "[]", ""},
		{"match changed", list(predict), list(`{name: predict, match: [{uri: {prefix: /p}}], ` + dests + `}`), nil, `[route "predict": match changed]`, "[]", ""},
		{"mirror percentage removed while the mirror stays", list(withMirror), list(`{name: predict, match: [{uri: {prefix: /predict}}], mirror: {host: shadow}, ` + dests + `}`), nil,
			`[route "predict": mirrorPercentage removed]`, "[]", ""},
		{"mirror removed with its percentage is a release", list(withMirror), list(predict), nil,
			"[]", `[route "predict": mirror removed route "predict": mirrorPercentage removed]`, ""},
		{"existing fault, other edits pass", list(withFault), list(`{name: predict, timeout: 3s, match: [{uri: {prefix: /predict}}], fault: {abort: {percentage: {value: 10}, httpStatus: 503}}, route: [{destination: {host: fraud, subset: v1}, weight: 50}, {destination: {host: fraud, subset: v2}, weight: 50}]}`), nil,
			"", "", ""},
		{"catch-all inserted in front", list(predict, explain), list(catchAll, predict, explain), nil, "[]", "[]", "all"},
		{"equal match in front", list(predict), list(`{name: copy, match: [{uri: {prefix: /predict}}], `+dests+`}`, predict), nil, "[]", "[]", "copy"},
		{"managed route moved behind a catch-all", list(predict, catchAll), list(catchAll, predict), nil, "[]", "[]", "all"},
		{"narrower route in front", list(predict), list(`{name: beta, match: [{uri: {prefix: /predict}, headers: {x-beta: {exact: "1"}}}], `+dests+`}`, predict), nil, "", "", ""},
		{"route added behind", list(predict), list(predict, catchAll), nil, "", "", ""},
		{"already shadowed, other edits pass", list(catchAll, predict), list(`{name: everything, `+dests+`}`, `{name: predict, timeout: 2s, match: [{uri: {prefix: /predict}}], `+dests+`}`), nil, "", "", ""},
		{"unmanaged route gets a fault", list(predict, explain), list(predict, `{name: explain, fault: {delay: {fixedDelay: 1s, percentage: {value: 100}}}, match: [{uri: {prefix: /explain}}], `+dests+`}`), nil, "", "", ""},
		{"managed route removed is not a steering change", list(predict), list(explain), nil, "", "", ""},
		{"failed rollout does not manage", list(predict), list(withFault), []v1alpha1.ModelRollout{*failed}, "", "", ""},
		{"deleting rollout does not manage", list(predict), list(catchAll, predict), []v1alpha1.ModelRollout{*deleting}, "", "", ""},
		{"rollout of another VirtualService", list(predict), list(withFault), []v1alpha1.ModelRollout{*rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService.Name = "other" })}, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rollouts := tt.rollouts
			if rollouts == nil {
				rollouts = []v1alpha1.ModelRollout{*rollout(inPhase(v1alpha1.PhaseProgressing))}
			}
			got := validation.ManagedRouteSteering(vsWith(t, "fraud", tt.old), vsWith(t, "fraud", tt.new), rollouts)
			if tt.fields == "" {
				if len(got) != 0 {
					t.Fatalf("got %+v, want nothing", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d changes %+v, want 1", len(got), got)
			}
			c := got[0]
			if c.Rollout.Name != "fraud" || c.Route.Name != "predict" {
				t.Errorf("rollout %s route %s", c.Rollout.Name, c.Route)
			}
			if f := fmt.Sprint(c.Fields); f != tt.fields {
				t.Errorf("fields %s, want %s", f, tt.fields)
			}
			if r := fmt.Sprint(c.Released); r != tt.released {
				t.Errorf("released %s, want %s", r, tt.released)
			}
			switch {
			case tt.shadow == "" && c.Shadow != nil:
				t.Errorf("unexpected shadow %+v", c.Shadow)
			case tt.shadow != "" && (c.Shadow == nil || c.Shadow.By != tt.shadow || c.Shadow.Route != "predict"):
				t.Errorf("shadow %+v, want by %s", c.Shadow, tt.shadow)
			}
			if c.Blocks() != (tt.fields != "[]" || tt.shadow != "") {
				t.Errorf("Blocks() = %v", c.Blocks())
			}
		})
	}
}

func TestManagedRouteSteeringUnnamedRoute(t *testing.T) {
	mr := rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService = &v1alpha1.VirtualServiceRef{Name: "single"} })
	old := vsWith(t, "single", `[{route: [{destination: {host: fraud, subset: v1}}]}]`)
	vs := vsWith(t, "single", `[{fault: {delay: {fixedDelay: 5s, percentage: {value: 100}}}, route: [{destination: {host: fraud, subset: v1}}]}]`)
	got := validation.ManagedRouteSteering(old, vs, []v1alpha1.ModelRollout{*mr})
	if len(got) != 1 || fmt.Sprint(got[0].Fields) != `[route "http[0]": fault added]` || got[0].Route.String() != "the unnamed route spec.http[0]" {
		t.Fatalf("got %+v", got)
	}
	// A route put in front of the single unnamed route makes it ambiguous:
	// that is a removal for ManagedRouteChanges, not a steering change.
	front := vsWith(t, "single", `[{name: all, route: [{destination: {host: fraud, subset: v1}}]}, {route: [{destination: {host: fraud, subset: v1}}]}]`)
	if got := validation.ManagedRouteSteering(old, front, []v1alpha1.ModelRollout{*mr}); len(got) != 0 {
		t.Fatalf("got %+v", got)
	}
}
