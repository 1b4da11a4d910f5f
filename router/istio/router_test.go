package istio

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
)

// fixture is one router case in testdata/*.yaml.
type fixture struct {
	Routes  []string                `json:"routes"`
	Weights []v1alpha1.SubsetWeight `json:"weights"`
	Changed bool                    `json:"changed"`
	Error   string                  `json:"error"`
	Input   json.RawMessage         `json:"input"`
	Want    json.RawMessage         `json:"want"`
}

const fixtureDR = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: fraud, namespace: ml}
spec:
  host: fraud.ml.svc.cluster.local
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
    - {name: v3, labels: {version: v3}}
`

func decodeUnstructured(t testing.TB, raw []byte) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return u
}

func testDR(t testing.TB) *networkingv1.DestinationRule {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(fixtureDR))
	if err != nil {
		t.Fatal(err)
	}
	dr, err := DecodeDestinationRule(decodeUnstructured(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	return dr
}

func TestSetWeightsFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) < 15 {
		t.Fatalf("want at least 15 fixtures, got %d (%v)", len(files), err)
	}
	dr := testDR(t)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var f fixture
			if err := yaml.Unmarshal(data, &f); err != nil {
				t.Fatalf("parse fixture: %v", err)
			}
			in := decodeUnstructured(t, f.Input)
			before := in.DeepCopy()
			got, changed, err := SetWeights(in, Target{Routes: f.Routes, DestinationRule: dr}, f.Weights)
			if !equality.Semantic.DeepEqual(before.Object, in.Object) {
				t.Fatalf("SetWeights modified its input")
			}
			if f.Error != "" {
				if err == nil || !strings.Contains(err.Error(), f.Error) {
					t.Fatalf("error = %v, want one containing %q", err, f.Error)
				}
				if _, rerr := ReadWeights(in, Target{Routes: f.Routes, DestinationRule: dr}); rerr == nil && !strings.Contains(f.Error, "subset") && !strings.Contains(f.Error, "sum") {
					t.Fatalf("ReadWeights accepted a VirtualService SetWeights refused")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if changed != f.Changed {
				t.Fatalf("changed = %v, want %v", changed, f.Changed)
			}
			want := before
			if len(f.Want) > 0 {
				want = decodeUnstructured(t, f.Want)
			}
			if !equality.Semantic.DeepEqual(want.Object, got.Object) {
				gy, _ := yaml.Marshal(got.Object)
				wy, _ := yaml.Marshal(want.Object)
				t.Fatalf("got:\n%s\nwant:\n%s", gy, wy)
			}
			// Reading back gives the desired weights on every managed route.
			rw, err := ReadWeights(got, Target{Routes: f.Routes, DestinationRule: dr})
			if err != nil {
				t.Fatalf("ReadWeights: %v", err)
			}
			wantW := map[string]int32{}
			for _, w := range f.Weights {
				wantW[w.Subset] = w.Weight
			}
			for route, w := range rw {
				if !router.WeightsEqual(w, wantW) {
					t.Fatalf("route %s reads %v, want %v", route, w, wantW)
				}
			}
			// Applying again is a no-op.
			if _, again, err := SetWeights(got, Target{Routes: f.Routes, DestinationRule: dr}, f.Weights); err != nil || again {
				t.Fatalf("second SetWeights: changed=%v err=%v", again, err)
			}
		})
	}
}

func TestCheckSubsets(t *testing.T) {
	dr := testDR(t)
	if err := CheckSubsets(dr, "v1", "v2", ""); err != nil {
		t.Fatalf("existing subsets: %v", err)
	}
	err := CheckSubsets(dr, "v1", "v8", "v9")
	if err == nil || !strings.Contains(err.Error(), `"v8", "v9"`) || !strings.Contains(err.Error(), "ml/fraud") {
		t.Fatalf("missing subsets error = %v", err)
	}
	if l, ok := SubsetLabels(dr, "v2"); !ok || l["version"] != "v2" {
		t.Fatalf("SubsetLabels(v2) = %v, %v", l, ok)
	}
}
