package istio

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// shapeFixture is one case in testdata/shapes/*.yaml: the changes between
// the shapes of before and after.
type shapeFixture struct {
	Routes  []string        `json:"routes"`
	Changes []string        `json:"changes"`
	Error   string          `json:"error"`
	Before  json.RawMessage `json:"before"`
	After   json.RawMessage `json:"after"`
}

// shadowFixture is one case in testdata/shadows/*.yaml: for each managed
// route in order, the route that shadows it ("" or left out: none).
type shadowFixture struct {
	Routes   []string        `json:"routes"`
	Shadowed []string        `json:"shadowed"`
	Input    json.RawMessage `json:"input"`
}

func readFixture(t *testing.T, file string, into any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("parse fixture: %v", err)
	}
}

func fixtureFiles(t *testing.T, dir string, min int) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil || len(files) < min {
		t.Fatalf("want at least %d fixtures in testdata/%s, got %d (%v)", min, dir, len(files), err)
	}
	out := map[string]string{}
	for _, f := range files {
		out[strings.TrimSuffix(filepath.Base(f), ".yaml")] = f
	}
	return out
}

func TestShapeFixtures(t *testing.T) {
	for name, file := range fixtureFiles(t, "shapes", 9) {
		t.Run(name, func(t *testing.T) {
			var f shapeFixture
			readFixture(t, file, &f)
			target := Target{Routes: f.Routes}
			before := decodeUnstructured(t, f.Before)
			kept := before.DeepCopy()
			baseline, err := Shapes(before, target)
			if !equality.Semantic.DeepEqual(kept.Object, before.Object) {
				t.Fatal("Shapes modified its input")
			}
			if f.Error != "" {
				if err == nil || !strings.Contains(err.Error(), f.Error) {
					t.Fatalf("error = %v, want one containing %q", err, f.Error)
				}
				return
			}
			if err != nil {
				t.Fatalf("Shapes(before): %v", err)
			}
			if again, _ := Shapes(before, target); !equality.Semantic.DeepEqual(baseline, again) {
				t.Fatalf("Shapes is not deterministic: %v then %v", baseline, again)
			}
			if got := ShapeChanges(baseline, baseline); len(got) != 0 {
				t.Fatalf("a shape differs from itself: %q", got)
			}
			now, err := Shapes(decodeUnstructured(t, f.After), target)
			if err != nil {
				t.Fatalf("Shapes(after): %v", err)
			}
			if got := ShapeChanges(baseline, now); !slices.Equal(got, f.Changes) {
				t.Fatalf("changes:\n got %q\nwant %q\nbaseline %v\nnow %v", got, f.Changes, baseline, now)
			}
		})
	}
}

// TestShapeChangesEveryField adds, changes and removes each steering field
// on a managed route, and edits each non-steering field.
func TestShapeChangesEveryField(t *testing.T) {
	values := map[string][2]string{
		"match":            {`[{"uri":{"prefix":"/a"}}]`, `[{"uri":{"prefix":"/b"}}]`},
		"mirror":           {`{"host":"shadow"}`, `{"host":"shadow","subset":"v9"}`},
		"mirrors":          {`[{"destination":{"host":"shadow"}}]`, `[{"destination":{"host":"shadow"},"percentage":{"value":5}}]`},
		"mirrorPercentage": {`{"value":5}`, `{"value":50}`},
		"mirror_percent":   {`5`, `50`},
		"mirrorPercent":    {`5`, `50`},
		"fault":            {`{"abort":{"httpStatus":503,"percentage":{"value":1}}}`, `{"abort":{"httpStatus":500,"percentage":{"value":1}}}`},
		"redirect":         {`{"uri":"/a"}`, `{"uri":"/b"}`},
		"directResponse":   {`{"status":503}`, `{"status":200}`},
		"delegate":         {`{"name":"a"}`, `{"name":"b"}`},
		// Not steering: every edit passes unreported.
		"timeout":    {`"1s"`, `"2s"`},
		"retries":    {`{"attempts":1}`, `{"attempts":3}`},
		"headers":    {`{"request":{"set":{"a":"1"}}}`, `{"request":{"set":{"a":"2"}}}`},
		"corsPolicy": {`{"allowMethods":["GET"]}`, `{"allowMethods":["POST"]}`},
		"rewrite":    {`{"uri":"/a"}`, `{"uri":"/b"}`},
	}
	if len(SteeringFields) != 10 {
		t.Fatalf("SteeringFields has %d fields; give every new one values here", len(SteeringFields))
	}
	withField := func(field, value string) *unstructured.Unstructured {
		vs := decodeUnstructured(t, []byte(`{"apiVersion":"networking.istio.io/v1","kind":"VirtualService",
			"metadata":{"name":"fraud","namespace":"ml"},
			"spec":{"http":[{"name":"predict","route":[{"destination":{"host":"fraud","subset":"v1"}}]}]}}`))
		if value != "" {
			var v any
			if err := json.Unmarshal([]byte(value), &v); err != nil {
				t.Fatal(err)
			}
			vs.Object["spec"].(map[string]any)["http"].([]any)[0].(map[string]any)[field] = v
		}
		return vs
	}
	shapes := func(vs *unstructured.Unstructured) []v1alpha1.RouteShape {
		s, err := Shapes(vs, Target{Routes: []string{"predict"}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for field, v := range values {
		steering := slices.Contains(SteeringFields, field)
		for _, tt := range []struct {
			change        string
			before, after string
		}{
			{FieldAdded, "", v[0]},
			{FieldChanged, v[0], v[1]},
			{FieldRemoved, v[1], ""},
		} {
			t.Run(field+" "+tt.change, func(t *testing.T) {
				got := ShapeChanges(shapes(withField(field, tt.before)), shapes(withField(field, tt.after)))
				var want []string
				if steering {
					want = []string{`route "predict": ` + field + " " + tt.change}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("got %q, want %q", got, want)
				}
			})
		}
	}
}

func TestShapesFingerprintCanonicalJSON(t *testing.T) {
	vs := decodeUnstructured(t, []byte(`{"kind":"VirtualService","apiVersion":"networking.istio.io/v1","spec":{"http":[
		{"name":"predict","fault":{"delay":{"percentage":{"value":1},"fixedDelay":"2s"},"abort":{"httpStatus":503}}}]}}`))
	got, err := Shapes(vs, Target{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(`{"abort":{"httpStatus":503},"delay":{"fixedDelay":"2s","percentage":{"value":1}}}`))
	want := []v1alpha1.RouteShape{{Route: "predict", Fields: map[string]string{"fault": hex.EncodeToString(sum[:])[:12]}}}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// A route with no steering field has no fields at all, as it reads back
	// from a status that omits empty maps.
	plain := decodeUnstructured(t, []byte(`{"kind":"VirtualService","apiVersion":"networking.istio.io/v1","spec":{"http":[{"route":[{"destination":{"host":"fraud"}}]}]}}`))
	if got, err := Shapes(plain, Target{}); err != nil || len(got) != 1 || got[0].Route != "http[0]" || got[0].Fields != nil {
		t.Fatalf("plain route: %+v, %v", got, err)
	}
}

func TestShapeChangesIgnoresRoutesOutsideTheBaseline(t *testing.T) {
	baseline := []v1alpha1.RouteShape{{Route: "predict", Fields: map[string]string{"match": "aaa"}}, {Route: "gone"}}
	now := []v1alpha1.RouteShape{
		{Route: "predict", Fields: map[string]string{"match": "aaa"}},
		{Route: "explain", Fields: map[string]string{"fault": "bbb"}},
	}
	if got := ShapeChanges(baseline, now); len(got) != 0 {
		t.Fatalf("got %q", got)
	}
	// A field a later version of SteeringFields no longer lists still counts.
	old := []v1alpha1.RouteShape{{Route: "predict", Fields: map[string]string{"tcpMatch": "ccc"}}}
	if got := ShapeChanges(old, now[:1]); !slices.Equal(got, []string{`route "predict": match added`, `route "predict": tcpMatch removed`}) {
		t.Fatalf("got %q", got)
	}
}

func TestShadowFixtures(t *testing.T) {
	for name, file := range fixtureFiles(t, "shadows", 12) {
		t.Run(name, func(t *testing.T) {
			var f shadowFixture
			readFixture(t, file, &f)
			target := Target{Routes: f.Routes}
			vs := decodeUnstructured(t, f.Input)
			kept := vs.DeepCopy()
			got, err := Shadows(vs, target)
			if err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(kept.Object, vs.Object) {
				t.Fatal("Shadows modified its input")
			}
			routes := f.Routes
			if len(routes) == 0 {
				routes = []string{"http[0]"}
			}
			var want []Shadow
			var wantText []string
			for i, by := range f.Shadowed {
				if by != "" {
					s := Shadow{Route: routes[i], By: by}
					want, wantText = append(want, s), append(wantText, s.String())
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
			if text := Shadowed(vs, target); !slices.Equal(text, wantText) {
				t.Fatalf("Shadowed = %q, want %q", text, wantText)
			}
		})
	}
}

func TestShadowedMessage(t *testing.T) {
	got := Shadow{Route: "predict", By: "all"}.String()
	want := `route "all" in front of managed route "predict" catches all of its traffic: move route "all" after "predict" or give it a narrower match`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// Routes that do not resolve are reported elsewhere.
	vs := decodeUnstructured(t, []byte(`{"kind":"VirtualService","apiVersion":"networking.istio.io/v1","spec":{"http":[{"name":"a"},{"name":"b"}]}}`))
	if _, err := Shadows(vs, Target{}); err == nil {
		t.Fatal("Shadows resolved an ambiguous target")
	}
	if got := Shadowed(vs, Target{Routes: []string{"c"}}); got != nil {
		t.Fatalf("Shadowed = %q", got)
	}
}
