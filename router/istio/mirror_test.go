package istio

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"
)

const mirrorVS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: fraud, namespace: ml}
spec:
  hosts: [fraud]
  http:
    - name: explain
      match: [{uri: {prefix: /explain}}]
      mirror: {host: audit.ml.svc.cluster.local}
      route:
        - destination: {host: fraud, subset: v1}
    - name: predict
      route:
        - destination: {host: fraud, subset: v1, port: {number: 8080}}
          weight: 100
        - destination: {host: fraud, subset: v2, port: {number: 8080}}
          weight: 0
`

func vsFrom(t *testing.T, y string) map[string]any {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return decodeUnstructured(t, raw).Object
}

// SetMirror writes mirror and mirrorPercentage on the managed route only,
// with the route's port; applying it again changes nothing; ClearMirror
// takes exactly that away and leaves the user's mirror on another route.
func TestSetAndClearMirror(t *testing.T) {
	in := decodeUnstructured(t, mustJSON(t, mirrorVS))
	target := Target{Routes: []string{"predict"}, DestinationRule: testDR(t)}
	out, changed, err := SetMirror(in, target, Mirror{Subset: "v2", Percent: 25})
	if err != nil || !changed {
		t.Fatalf("SetMirror: changed=%v err=%v", changed, err)
	}
	want := vsFrom(t, strings.Replace(mirrorVS, "    - name: predict\n", "    - name: predict\n      mirror: {host: fraud, subset: v2, port: {number: 8080}}\n      mirrorPercentage: {value: 25}\n", 1))
	if !equality.Semantic.DeepEqual(normal(t, out.Object), normal(t, want)) {
		got, _ := yaml.Marshal(out.Object)
		t.Fatalf("got:\n%s", got)
	}
	if _, again, err := SetMirror(out, target, Mirror{Subset: "v2", Percent: 25}); err != nil || again {
		t.Fatalf("second SetMirror: changed=%v err=%v", again, err)
	}
	back, changed, err := ClearMirror(out, target, "v2")
	if err != nil || !changed || !equality.Semantic.DeepEqual(normal(t, back.Object), normal(t, in.Object)) {
		t.Fatalf("ClearMirror: changed=%v err=%v", changed, err)
	}
	// A mirror to another subset is not the one to clear.
	if _, changed, _ := ClearMirror(out, target, "v3"); changed {
		t.Fatal("ClearMirror of v3 removed the mirror to v2")
	}
}

// A managed route that mirrors elsewhere already keeps its mirror: the
// shadow stage is refused, naming the route.
func TestSetMirrorRefusesAUsersMirror(t *testing.T) {
	in := decodeUnstructured(t, mustJSON(t, mirrorVS))
	dr := testDR(t)
	_, _, err := SetMirror(in, Target{Routes: []string{"explain"}, DestinationRule: dr}, Mirror{Subset: "v2", Percent: 100})
	if err == nil || !strings.Contains(err.Error(), `route "explain" already mirrors`) {
		t.Fatalf("err = %v, want a refusal naming route explain", err)
	}
	if _, _, err := SetMirror(in, Target{Routes: []string{"predict"}, DestinationRule: dr}, Mirror{Subset: "v9", Percent: 100}); err == nil {
		t.Fatal("a mirror to a subset the DestinationRule lacks was accepted")
	}
}

func mustJSON(t *testing.T, y string) []byte {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// normal round-trips through JSON so numbers compare equal whatever their Go
// type.
func normal(t *testing.T, obj map[string]any) map[string]any {
	t.Helper()
	raw, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return vsFrom(t, string(raw))
}

func TestForeignMirror(t *testing.T) {
	in := decodeUnstructured(t, mustJSON(t, mirrorVS))
	dr := testDR(t)
	if msg := ForeignMirror(in, Target{Routes: []string{"explain", "predict"}, DestinationRule: dr}, "v2"); !strings.Contains(msg, `route "explain" already mirrors`) {
		t.Fatalf("ForeignMirror = %q, want route explain named", msg)
	}
	own, _, err := SetMirror(in, Target{Routes: []string{"predict"}, DestinationRule: dr}, Mirror{Subset: "v2", Percent: 10})
	if err != nil {
		t.Fatal(err)
	}
	if msg := ForeignMirror(own, Target{Routes: []string{"predict"}, DestinationRule: dr}, "v2"); msg != "" {
		t.Fatalf("Fulcrum's own mirror reported as foreign: %s", msg)
	}
}
