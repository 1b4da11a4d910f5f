package istio

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
)

// FuzzSetWeights runs SetWeights on arbitrary VirtualServices (issue 14: the
// router is the one piece that edits an object a user wrote), given as JSON,
// the form the API server hands the controller (YAML is only the fixtures'
// spelling of it, and YAML parsing is not the router's to test). Whatever
// the input, it never panics and never modifies its argument; when it
// accepts, reading back gives exactly the weights asked for on every managed
// route, applying again changes nothing, and nothing but the managed routes'
// destination weights changed (destinations appended for subsets that get
// traffic aside).
func FuzzSetWeights(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var fx fixture
		if err := yaml.Unmarshal(data, &fx); err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		f.Add([]byte(fx.Input), strings.Join(fx.Routes, ","), uint8(10), uint8(0))
	}
	f.Add([]byte(`{"spec":{"http":[{"route":[{"destination":{"host":"fraud","subset":"v1"}}]}]}}`), "", uint8(50), uint8(20))
	f.Add([]byte(`{"metadata":{"namespace":"ml"},"spec":{"http":[{"name":"a","route":[{"destination":{"host":"fraud","subset":"v1","port":{"number":8080}},"weight":"100"}]}]}}`), "a,a", uint8(100), uint8(0))
	f.Add([]byte(`{"spec":{"http":[null,{"name":"x"}]}}`), "x", uint8(1), uint8(1))

	dr := testDR(f)
	f.Fuzz(func(t *testing.T, doc []byte, routeList string, candidate, third uint8) {
		in := &unstructured.Unstructured{}
		if in.UnmarshalJSON(doc) != nil {
			return
		}
		var routes []string
		if routeList != "" {
			routes = strings.Split(routeList, ",")
		}
		c := int32(candidate) % 101
		v3 := int32(third) % (101 - c)
		weights := []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 100 - c - v3}, {Subset: "v2", Weight: c}}
		if v3 > 0 {
			weights = append(weights, v1alpha1.SubsetWeight{Subset: "v3", Weight: v3})
		}
		target := Target{Routes: routes, DestinationRule: dr}

		before := in.DeepCopy()
		out, changed, err := SetWeights(in, target, weights)
		if !equality.Semantic.DeepEqual(before.Object, in.Object) {
			t.Fatalf("SetWeights modified its input")
		}
		if err != nil {
			return
		}
		want := map[string]int32{}
		for _, w := range weights {
			want[w.Subset] = w.Weight
		}
		read, err := ReadWeights(out, target)
		if err != nil {
			t.Fatalf("ReadWeights refused what SetWeights wrote: %v", err)
		}
		for key, got := range read {
			if !router.WeightsEqual(got, want) {
				t.Fatalf("route %s reads %v after writing %v", key, got, want)
			}
		}
		if _, again, err := SetWeights(out, target, weights); err != nil || again {
			t.Fatalf("applying again: changed=%v err=%v", again, err)
		}
		if changed != !equality.Semantic.DeepEqual(before.Object, out.Object) {
			t.Fatalf("changed=%v disagrees with the objects", changed)
		}
		onlyWeightsChanged(t, before.Object, out.Object)
	})
}

// onlyWeightsChanged checks that out is in with nothing changed but the
// weights of HTTP route destinations and destinations appended at the end of
// a route list, each of which names a subset and gets traffic.
func onlyWeightsChanged(t *testing.T, in, out map[string]any) {
	t.Helper()
	strip := func(v any) any {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		c := deepCopyValue(m).(map[string]any)
		delete(c, "weight")
		return c
	}
	a, b := deepCopyValue(in).(map[string]any), deepCopyValue(out).(map[string]any)
	aHTTP, _, _ := unstructured.NestedFieldNoCopy(a, "spec", "http")
	bHTTP, _, _ := unstructured.NestedFieldNoCopy(b, "spec", "http")
	al, _ := aHTTP.([]any)
	bl, _ := bHTTP.([]any)
	if len(al) != len(bl) {
		t.Fatalf("spec.http had %d routes, has %d", len(al), len(bl))
	}
	for i := range al {
		ar, _ := al[i].(map[string]any)
		br, _ := bl[i].(map[string]any)
		ad, aok := ar["route"].([]any)
		bd, bok := br["route"].([]any)
		if aok != bok || len(bd) < len(ad) {
			t.Fatalf("spec.http[%d].route went from %v to %v", i, ar["route"], br["route"])
		}
		for j := range ad {
			if !equality.Semantic.DeepEqual(strip(ad[j]), strip(bd[j])) {
				t.Fatalf("spec.http[%d].route[%d] went from %v to %v", i, j, ad[j], bd[j])
			}
		}
		for _, extra := range bd[len(ad):] {
			m, _ := extra.(map[string]any)
			d, _ := m["destination"].(map[string]any)
			if s, _ := d["subset"].(string); s == "" || router.JSONInt(m["weight"]) <= 0 {
				t.Fatalf("spec.http[%d] gained a destination that is no subset getting traffic: %v", i, extra)
			}
		}
		if aok {
			ar["route"], br["route"] = nil, nil
		}
	}
	if !equality.Semantic.DeepEqual(a, b) {
		ay, _ := yaml.Marshal(a)
		by, _ := yaml.Marshal(b)
		t.Fatalf("more than route weights changed:\n%s\nwas:\n%s", by, ay)
	}
}
