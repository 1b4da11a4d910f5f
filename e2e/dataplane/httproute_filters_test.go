package dataplane

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// filtersRoute has the same rule- and backendRef-level header modifiers on
// a rule with one backendRef and on a weighted rule (fraud-v1 at 100,
// fraud-v2 at 0), which Envoy orders differently, as for VirtualServices.
const filtersRoute = `
metadata: {name: fraud}
spec:
  parentRefs: [{group: "", kind: Service, name: fraud}]
  rules:
  - name: single
    matches: [{headers: [{name: x-case, value: single}]}]
    filters: &ruleFilters
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-both, value: route}, {name: x-route, value: r}]
        add: [{name: x-add, value: route}]
        remove: [x-gone, x-dest-only]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: x-both, value: route}]
        remove: [x-upstream]
    backendRefs:
    - name: fraud-v1
      port: 80
      filters: &backendFilters
      - type: RequestHeaderModifier
        requestHeaderModifier:
          set: [{name: x-both, value: dest}, {name: x-dest-only, value: d}]
          add: [{name: x-add, value: dest}]
          remove: [x-route]
      - type: ResponseHeaderModifier
        responseHeaderModifier:
          set: [{name: x-both, value: dest}, {name: set-cookie, value: "arm=v1; Path=/"}]
          add: [{name: x-dest, value: "1"}]
  - name: weighted
    filters: *ruleFilters
    backendRefs:
    - {name: fraud-v1, port: 80, weight: 100, filters: *backendFilters}
    - {name: fraud-v2, port: 80, weight: 0}
`

func TestHTTPRouteHeaderFilters(t *testing.T) {
	tbl := Build(gammaWorld(t, filtersRoute))
	if len(tbl.Problems) != 0 {
		t.Fatalf("problems: %v", tbl.Problems)
	}
	type want struct {
		request, response map[string][]string // nil slice: header absent
	}
	cases := map[string]struct {
		caseHeader, rule string
		want             want
	}{
		"one backendRef: its filters win": {"single", "single", want{
			request: map[string][]string{
				"X-Both": {"dest"}, "X-Route": {"r"}, "X-Add": {"route", "dest"},
				"X-Gone": nil, "X-Dest-Only": {"d"}, "X-Keep": {"k"},
			},
			response: map[string][]string{
				"X-Both": {"dest"}, "X-Upstream": nil, "Set-Cookie": {"arm=v1; Path=/"}, "X-Dest": {"1"}, "X-Other": {"o"},
			},
		}},
		"weighted backendRefs: the rule's filters win": {"", "weighted", want{
			request: map[string][]string{
				"X-Both": {"route"}, "X-Route": {"r"}, "X-Add": {"dest", "route"},
				"X-Gone": nil, "X-Dest-Only": nil, "X-Keep": {"k"},
			},
			response: map[string][]string{
				"X-Both": {"route"}, "X-Upstream": nil, "Set-Cookie": {"arm=v1; Path=/"}, "X-Dest": {"1"}, "X-Other": {"o"},
			},
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := tbl.Route(req("fraud", "/", "x-case", tc.caseHeader), rand.New(rand.NewPCG(1, 2)))
			if d.Route != tc.rule || d.Headers == nil || d.Target.Service.Name != "fraud-v1" {
				t.Fatalf("decision %+v: want rule %s to fraud-v1 with header operations", d, tc.rule)
			}
			in := http.Header{"X-Gone": {"g"}, "X-Route": {"incoming"}, "X-Keep": {"k"}, "X-Both": {"incoming"}}
			d.Headers.ApplyRequest(in)
			assertHeaders(t, "request", in, tc.want.request)
			out := http.Header{"X-Upstream": {"u"}, "X-Both": {"upstream"}, "X-Other": {"o"}}
			d.Headers.ApplyResponse(out)
			assertHeaders(t, "response", out, tc.want.response)
		})
	}
}

func TestHTTPRouteHostHeaderIsNotRewritten(t *testing.T) {
	tbl := Build(gammaWorld(t, meshRoute("fraud")+`  rules:
  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: Host, value: other}, {name: x-a, value: "1"}]}}]
    backendRefs: [{name: fraud-v1, port: 80}]
`))
	if len(tbl.Problems) != 1 || !strings.Contains(tbl.Problems[0], "filters[0].set[Host]") {
		t.Fatalf("problems %v: want one naming filters[0].set[Host]", tbl.Problems)
	}
	d := tbl.Route(req("fraud", "/"), rand.New(rand.NewPCG(1, 2)))
	h := http.Header{}
	d.Headers.ApplyRequest(h)
	if h.Get("x-a") != "1" || h.Get("Host") != "" {
		t.Errorf("request headers %v: want x-a set and no Host", h)
	}
}

func TestHTTPRouteMirrors(t *testing.T) {
	tbl := Build(gammaWorld(t, meshRoute("fraud")+`  rules:
  - matches: [{headers: [{name: x-all, value: "1"}]}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: fraud-v2, port: 80}}}]
    backendRefs: [{name: fraud-v1, port: 80}]
  - matches: [{headers: [{name: x-percent, value: "1"}]}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: fraud-v2, port: 80}, percent: 25}}]
    backendRefs: [{name: fraud-v1, port: 80}]
  - matches: [{headers: [{name: x-fraction, value: "1"}]}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: fraud-v2, port: 80}, fraction: {numerator: 1, denominator: 10}}}]
    backendRefs: [{name: fraud-v1, port: 80}]
  - matches: [{headers: [{name: x-two, value: "1"}]}]
    filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: fraud-v2, port: 80}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: fraud-v3, port: 80}, percent: 0}}
    backendRefs: [{name: fraud-v1, port: 80}]
  - matches: [{headers: [{name: x-per-backend, value: "1"}]}]
    backendRefs:
    - {name: fraud-v1, port: 80, weight: 50, filters: [{type: RequestMirror, requestMirror: {backendRef: {name: fraud-v3, port: 80}}}]}
    - {name: fraud-v2, port: 80, weight: 50}
  - backendRefs: [{name: fraud-v1, port: 80}]
`))
	if len(tbl.Problems) != 0 {
		t.Fatalf("problems: %v", tbl.Problems)
	}
	rnd := rand.New(rand.NewPCG(11, 12))
	const n = 4000
	type tally struct {
		mirrored int
		targets  map[string]int
		primary  map[string]int
	}
	count := func(hdr string) tally {
		out := tally{targets: map[string]int{}, primary: map[string]int{}}
		for range n {
			d := tbl.Route(req("fraud", "/", hdr, "1"), rnd)
			out.primary[d.Target.Service.Name]++
			if len(d.Mirrors) > 0 {
				out.mirrored++
			}
			for _, m := range d.Mirrors {
				out.targets[m.Target.Service.Name]++
				if "fraud-"+m.Backend.Version != m.Target.Service.Name {
					t.Fatalf("mirror backend %+v does not serve %s", m.Backend, m.Target.Service.Name)
				}
			}
		}
		return out
	}
	if c := count("x-all"); c.mirrored != n || c.targets["fraud-v2"] != n || c.primary["fraud-v1"] != n {
		t.Errorf("mirror without percent: %+v, want every request on fraud-v1 copied to fraud-v2", c)
	}
	if c := count("x-percent"); c.mirrored < n*20/100 || c.mirrored > n*30/100 {
		t.Errorf("percent 25 copied %d of %d, want about a quarter", c.mirrored, n)
	}
	if c := count("x-fraction"); c.mirrored < n*7/100 || c.mirrored > n*13/100 {
		t.Errorf("fraction 1/10 copied %d of %d, want about a tenth", c.mirrored, n)
	}
	if c := count("x-two"); c.targets["fraud-v2"] != n || c.targets["fraud-v3"] != 0 {
		t.Errorf("two mirrors copied %v, want every request to fraud-v2 and none to fraud-v3", c.targets)
	}
	if c := count("x-per-backend"); c.targets["fraud-v3"] != c.primary["fraud-v1"] || c.primary["fraud-v2"] == 0 {
		t.Errorf("backendRef mirror: primaries %v, mirrors %v; want a copy for each fraud-v1 request only", c.primary, c.targets)
	}
	if c := count("x-none"); c.mirrored != 0 {
		t.Errorf("rule without a mirror copied %d", c.mirrored)
	}
}
