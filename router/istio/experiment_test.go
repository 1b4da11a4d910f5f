package istio

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"
)

// Cookie stickiness: one sticky route per arm in front of the managed route
// (the origin's single unnamed route stays managed), each arm's destination
// sets its cookie, applying again changes nothing, and clearing gives back
// exactly the original.
func TestSetExperimentCookie(t *testing.T) {
	in := decodeUnstructured(t, mustJSON(t, unnamedVS))
	target := Target{DestinationRule: testDR(t)}
	e := Experiment{Rollout: "fraud", Arms: []string{"v1", "v2"}, Cookie: "fulcrum-exp-fraud", MaxAge: 168 * time.Hour}
	before, _ := ReadWeights(in, target)
	out, changed, err := SetExperiment(in, target, e)
	if err != nil || !changed {
		t.Fatalf("SetExperiment: changed=%v err=%v", changed, err)
	}
	got, _ := yaml.Marshal(out.Object["spec"])
	want := `hosts:
- model.example.com
http:
- match:
  - headers:
      cookie:
        regex: ^(.*;\s*)?fulcrum-exp-fraud=v1(;.*)?$
  name: fulcrum-exp-fraud-v1
  route:
  - destination:
      host: fraud
      port:
        number: 8080
      subset: v1
- match:
  - headers:
      cookie:
        regex: ^(.*;\s*)?fulcrum-exp-fraud=v2(;.*)?$
  name: fulcrum-exp-fraud-v2
  route:
  - destination:
      host: fraud
      port:
        number: 8080
      subset: v2
- route:
  - destination:
      host: fraud
      port:
        number: 8080
      subset: v1
    headers:
      response:
        set:
          set-cookie: fulcrum-exp-fraud=v1; Path=/; Max-Age=604800
    weight: 70
  - destination:
      host: fraud
      port:
        number: 8080
      subset: v2
    headers:
      response:
        set:
          set-cookie: fulcrum-exp-fraud=v2; Path=/; Max-Age=604800
    weight: 30
`
	if string(got) != want {
		t.Fatalf("spec:\n%s\nwant:\n%s", got, want)
	}
	if after, err := ReadWeights(out, target); err != nil || !equality.Semantic.DeepEqual(before, after) {
		t.Fatalf("weights %v (err %v), before %v", after, err, before)
	}
	if _, again, err := SetExperiment(out, target, e); err != nil || again {
		t.Fatalf("second SetExperiment: changed=%v err=%v", again, err)
	}
	back, changed, err := ClearExperiment(out, target, "fraud", e.Cookie)
	if err != nil || !changed || !equality.Semantic.DeepEqual(normal(t, back.Object), normal(t, in.Object)) {
		b, _ := yaml.Marshal(back.Object)
		t.Fatalf("ClearExperiment: changed=%v err=%v\n%s", changed, err, b)
	}
}

// Header stickiness: routes match the header's value, and no cookie is set.
func TestSetExperimentHeader(t *testing.T) {
	in := decodeUnstructured(t, mustJSON(t, mirrorVS))
	target := Target{Routes: []string{"predict"}, DestinationRule: testDR(t)}
	out, _, err := SetExperiment(in, target, Experiment{Rollout: "fraud", Arms: []string{"v1", "v2"}, Header: "x-user-group"})
	if err != nil {
		t.Fatal(err)
	}
	http := out.Object["spec"].(map[string]any)["http"].([]any)
	if len(http) != 4 || http[0].(map[string]any)["name"] != "explain" || http[3].(map[string]any)["name"] != "predict" {
		t.Fatalf("routes %v: want explain, the two sticky routes, then predict", names(http))
	}
	got, _ := yaml.Marshal(http[2].(map[string]any)["match"])
	if string(got) != "- headers:\n    x-user-group:\n      exact: v2\n" {
		t.Fatalf("match of the v2 route:\n%s", got)
	}
	if strings.Contains(string(mustMarshal(t, out.Object)), "set-cookie") {
		t.Fatal("header stickiness set a cookie")
	}
	back, _, _ := ClearExperiment(out, target, "fraud", "")
	if !equality.Semantic.DeepEqual(normal(t, back.Object), normal(t, in.Object)) {
		t.Fatal("ClearExperiment did not give back the original")
	}
}

// A destination that already sets a cookie is the user's: refused, named.
func TestSetExperimentRefusesAUsersCookie(t *testing.T) {
	vs := strings.Replace(unnamedVS, "          weight: 30\n", "          weight: 30\n          headers: {response: {set: {Set-Cookie: \"session=abc\"}}}\n", 1)
	in := decodeUnstructured(t, mustJSON(t, vs))
	_, _, err := SetExperiment(in, Target{DestinationRule: testDR(t)}, Experiment{Rollout: "fraud", Arms: []string{"v1", "v2"}, Cookie: "fulcrum-exp-fraud", MaxAge: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "already sets a cookie") || !strings.Contains(err.Error(), "stickiness mode Header or None") {
		t.Fatalf("err %v", err)
	}
}

// The cookie match finds the arm among other cookies, and only that arm.
func TestCookieMatch(t *testing.T) {
	re := regexp.MustCompile(CookieMatch("fulcrum-exp-fraud", "v2"))
	for value, want := range map[string]bool{
		"fulcrum-exp-fraud=v2":                             true,
		"a=1; fulcrum-exp-fraud=v2":                        true,
		"a=1;fulcrum-exp-fraud=v2; b=2":                    true,
		"fulcrum-exp-fraud=v21":                            false,
		"fulcrum-exp-fraud=v1":                             false,
		"xfulcrum-exp-fraud=v2":                            false,
		"other-fulcrum-exp-fraud=v2; fulcrum-exp-fraud=v1": false,
	} {
		if got := re.MatchString(value); got != want {
			t.Errorf("%q: match %v, want %v", value, got, want)
		}
	}
}

func names(http []any) []string {
	var out []string
	for _, r := range http {
		n, _ := r.(map[string]any)["name"].(string)
		out = append(out, n)
	}
	return out
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
