package dataplane

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// matchRoute lists its rules in an order the spec's precedence overrides:
// the catch-all first, the exact path last.
const matchRoute = `
metadata: {name: fraud, resourceVersion: "7"}
spec:
  parentRefs: [{group: "", kind: Service, name: fraud}]
  rules:
  - name: default
    backendRefs: [{name: fraud-v1, port: 80}]
  - name: models-prefix
    matches: [{path: {type: PathPrefix, value: /v2/models/}}]
    backendRefs: [{name: fraud-v2, port: 80}]
  - name: regex-infer
    matches: [{path: {type: RegularExpression, value: "/v2/models/[a-z]+/infer"}}]
    backendRefs: [{name: fraud-v3, port: 80}]
  - name: header-exact
    matches: [{headers: [{name: X-User-Id, value: tester}]}]
    backendRefs: [{name: fraud-v2, port: 80}]
  - name: header-regex-and-query
    matches:
    - headers: [{type: RegularExpression, name: x-canary, value: "(yes|true)"}]
    - queryParams: [{name: canary, value: "1"}]
    backendRefs: [{name: fraud-v3, port: 80}]
  - name: delete-admin
    matches: [{method: DELETE, path: {value: /admin}}]
    backendRefs: [{name: fraud-v3, port: 80}]
  - name: ready-exact
    matches: [{path: {type: Exact, value: /v2/models/fraud/ready}}]
    backendRefs: [{name: fraud-v3, port: 80}]
`

func TestHTTPRouteMatches(t *testing.T) {
	tbl := Build(gammaWorld(t, matchRoute))
	if len(tbl.Problems) != 0 {
		t.Fatalf("problems: %v", tbl.Problems)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	del := req("fraud", "/admin/users")
	del.Method = http.MethodDelete
	cases := map[string]struct {
		req           *Request
		rule, service string
	}{
		"no match falls to the catch-all":      {req("fraud", "/anything"), "default", "fraud-v1"},
		"exact path beats every prefix":        {req("fraud", "/v2/models/fraud/ready"), "ready-exact", "fraud-v3"},
		"exact is not a prefix":                {req("fraud", "/v2/models/fraud/ready/x"), "models-prefix", "fraud-v2"},
		"longer prefix beats the catch-all":    {req("fraud", "/v2/models/fraud/explain"), "models-prefix", "fraud-v2"},
		"prefix matches the element itself":    {req("fraud", "/v2/models"), "models-prefix", "fraud-v2"},
		"prefix is element-wise":               {req("fraud", "/v2/modelsx"), "default", "fraud-v1"},
		"regex ranks before prefixes":          {req("fraud", "/v2/models/x/infer"), "regex-infer", "fraud-v3"},
		"regex is anchored":                    {req("fraud", "/v2/models/x/infer/y"), "models-prefix", "fraud-v2"},
		"header exact":                         {req("fraud", "/x", "x-user-id", "tester"), "header-exact", "fraud-v2"},
		"header value is case-sensitive":       {req("fraud", "/x", "x-user-id", "Tester"), "default", "fraud-v1"},
		"header regex is anchored":             {req("fraud", "/", "x-canary", "truely"), "default", "fraud-v1"},
		"header regex":                         {req("fraud", "/", "x-canary", "yes"), "header-regex-and-query", "fraud-v3"},
		"second match of a rule":               {req("fraud", "/?canary=1"), "header-regex-and-query", "fraud-v3"},
		"method and prefix":                    {del, "delete-admin", "fraud-v3"},
		"method must match":                    {req("fraud", "/admin/users"), "default", "fraud-v1"},
		"host fraud.ml":                        {req("fraud.ml", "/x"), "default", "fraud-v1"},
		"host fraud.ml.svc":                    {req("fraud.ml.svc", "/x"), "default", "fraud-v1"},
		"FQDN host with port":                  {req("fraud.ml.svc.cluster.local:8080", "/x"), "default", "fraud-v1"},
		"a longer prefix beats a header match": {reqWith(del, "x-user-id", "tester"), "delete-admin", "fraud-v3"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := tbl.Route(tc.req, rnd)
			if d.Flag != FlagNone || d.DirectStatus != 0 || d.Route != tc.rule || d.Target.Service.Name != tc.service {
				t.Fatalf("got rule %q service %q flag %s status %d, want rule %q service %q", d.Route, d.Target.Service.Name, d.Flag, d.DirectStatus, tc.rule, tc.service)
			}
			if d.HTTPRoute != "ml/fraud" || d.VirtualService != "" || d.Backend == nil || "fraud-"+d.Backend.Version != tc.service {
				t.Fatalf("decision %+v: want HTTPRoute ml/fraud and a %s backend", d, tc.service)
			}
			if want := tc.service + ".ml.svc.cluster.local"; d.Target.Host != want {
				t.Errorf("target host %s, want %s", d.Target.Host, want)
			}
		})
	}
	if v, ok := tbl.RouteVersion(KindHTTPRoute, "ml", "fraud"); !ok || v != "7" {
		t.Errorf("RouteVersion = %q, %v; want 7", v, ok)
	}
}

func reqWith(r *Request, hdr ...string) *Request {
	c := *r
	c.Header = r.Header.Clone()
	for i := 0; i+1 < len(hdr); i += 2 {
		c.Header.Add(hdr[i], hdr[i+1])
	}
	return &c
}

// Ties across routes go to the oldest route, then to namespace/name; within
// a route to the first rule; a method match, then more header matches, then
// more query matches win first.
func TestHTTPRoutePrecedenceAcrossRoutes(t *testing.T) {
	tbl := Build(gammaWorld(t,
		`metadata: {name: young, creationTimestamp: "2030-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: fraud}]
  rules:
  - {matches: [{path: {value: /p}}], backendRefs: [{name: fraud-v1, port: 80}]}
  - {matches: [{headers: [{name: a, value: "1"}, {name: b, value: "1"}]}], backendRefs: [{name: fraud-v1, port: 80}]}
  - {matches: [{method: PUT}], backendRefs: [{name: fraud-v2, port: 80}]}
`,
		`metadata: {name: zz-old, creationTimestamp: "2020-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: fraud}]
  rules:
  - {matches: [{path: {value: /p}}], backendRefs: [{name: fraud-v2, port: 80}]}
  - {matches: [{path: {value: /p}}], backendRefs: [{name: fraud-v3, port: 80}]}
  - {matches: [{headers: [{name: a, value: "1"}], queryParams: [{name: q, value: "1"}]}], backendRefs: [{name: fraud-v2, port: 80}]}
  - {matches: [{headers: [{name: a, value: "1"}, {name: A, value: "2"}]}], backendRefs: [{name: fraud-v3, port: 80}]}
`))
	if len(tbl.Problems) != 0 {
		t.Fatalf("problems: %v", tbl.Problems)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	put := req("fraud", "/", "a", "1", "b", "1")
	put.Method = http.MethodPut
	cases := map[string]struct {
		req            *Request
		route, service string
	}{
		"oldest route, first rule":                 {req("fraud", "/p/x"), "ml/zz-old", "fraud-v2"},
		"two header matches beat one plus a query": {req("fraud", "/?q=1", "a", "1", "b", "1"), "ml/young", "fraud-v1"},
		"header and query beat a header":           {req("fraud", "/?q=1", "a", "1"), "ml/zz-old", "fraud-v2"},
		"only the first of equal names counts":     {req("fraud", "/", "a", "1"), "ml/zz-old", "fraud-v3"},
		"a method beats header matches":            {put, "ml/young", "fraud-v2"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if d := tbl.Route(tc.req, rnd); d.HTTPRoute != tc.route || d.Target.Service.Name != tc.service {
				t.Fatalf("routed by %s to %s, want %s to %s", d.HTTPRoute, d.Target.Service.Name, tc.route, tc.service)
			}
		})
	}
}

// An HTTPRoute claiming a Service wins over a VirtualService for the same
// host; other hosts keep their VirtualService, and a host nothing claims
// keeps going to its Service's pods.
func TestHTTPRouteWinsOverVirtualService(t *testing.T) {
	s := gammaWorld(t, meshRoute("fraud")+"  rules: [{backendRefs: [{name: fraud-v2, port: 80}]}]\n")
	s = withService(s, service("ml", "other", map[string]string{"app": "fraud", "version": "v3"}))
	s.VirtualServices = append(s.VirtualServices, vsFromYAML(t, `
metadata: {name: both}
spec:
  hosts: [fraud, other]
  http: [{route: [{destination: {host: fraud, subset: v1}}]}]
`))
	tbl := Build(s)
	rnd := rand.New(rand.NewPCG(1, 2))
	if d := tbl.Route(req("fraud", "/"), rnd); d.HTTPRoute != "ml/fraud" || d.Target.Service.Name != "fraud-v2" {
		t.Errorf("fraud routed by %q/%q to %s, want the HTTPRoute's fraud-v2", d.HTTPRoute, d.VirtualService, d.Target.Service.Name)
	}
	if d := tbl.Route(req("other", "/"), rnd); d.VirtualService != "ml/both" || d.Target.Subset != "v1" {
		t.Errorf("other routed by %q/%q, want the VirtualService", d.HTTPRoute, d.VirtualService)
	}
	if d := tbl.Route(req("fraud-v3", "/"), rnd); d.Backend == nil || d.Backend.Version != "v3" || d.HTTPRoute != "" {
		t.Errorf("fraud-v3 decision %+v, want its own pod", d)
	}
}

func TestHTTPRouteNoRuleMatchesIs404(t *testing.T) {
	tbl := Build(gammaWorld(t, meshRoute("fraud")+`  rules:
  - {matches: [{path: {type: Exact, value: /only}}], backendRefs: [{name: fraud-v1, port: 80}]}
`))
	if d := tbl.Route(req("fraud", "/other"), rand.New(rand.NewPCG(1, 1))); d.Flag != FlagNoRoute || d.Backend != nil {
		t.Errorf("flag %s backend %v, want NR: a parent with routes answers 404 for what none matches", d.Flag, d.Backend)
	}
}

// What the stand-in cannot honour is reported, and fails loudly (500) or is
// left out, never silently routed somewhere else.
func TestHTTPRouteProblems(t *testing.T) {
	cases := map[string]struct {
		doc     string
		problem string
		status  int    // DirectStatus of a request to fraud at /
		flag    string // or its flag
	}{
		"unsupported filter answers 500": {meshRoute("r") + `  rules:
  - filters: [{type: URLRewrite, urlRewrite: {hostname: x}}]
    backendRefs: [{name: fraud-v1, port: 80}]
`, "filter URLRewrite is not supported", 500, FlagNone},
		"no backendRefs answers 500": {meshRoute("r") + `  rules: [{matches: [{path: {value: /}}]}]
`, "no backendRefs", 500, FlagNone},
		"all weights zero answer 500": {meshRoute("r") + `  rules:
  - backendRefs: [{name: fraud-v1, port: 80, weight: 0}, {name: fraud-v2, port: 80, weight: 0}]
`, "weight 0", 500, FlagNone},
		"missing backend Service": {meshRoute("r") + `  rules: [{backendRefs: [{name: fraud-v9, port: 80}]}]
`, "BackendNotFound", 500, FlagNone},
		"backend of another kind": {meshRoute("r") + `  rules: [{backendRefs: [{kind: ServiceImport, group: multicluster.x-k8s.io, name: fraud-v1, port: 80}]}]
`, "InvalidKind", 500, FlagNone},
		"cross-namespace backend": {meshRoute("r") + `  rules: [{backendRefs: [{name: fraud-v1, namespace: other, port: 80}]}]
`, "RefNotPermitted", 500, FlagNone},
		"bad regex never matches": {meshRoute("r") + `  rules: [{matches: [{path: {type: RegularExpression, value: "(x"}}], backendRefs: [{name: fraud-v1, port: 80}]}]
`, "never matches", 0, FlagNoRoute},
		"missing parent Service leaves the host alone": {`metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: nope}]
  rules: [{backendRefs: [{name: fraud-v1, port: 80}]}]
`, "no such Service", 0, FlagNone},
		"Gateway route without hostnames is ignored": {`metadata: {name: r}
spec:
  parentRefs: [{name: ingress}]
  rules: [{backendRefs: [{name: fraud-v1, port: 80}]}]
`, "needs hostnames", 0, FlagNone},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tbl := Build(gammaWorld(t, tc.doc))
			if !strings.Contains(strings.Join(tbl.Problems, "\n"), tc.problem) {
				t.Errorf("problems %q should mention %q", tbl.Problems, tc.problem)
			}
			d := tbl.Route(req("fraud", "/"), rand.New(rand.NewPCG(1, 1)))
			if d.DirectStatus != tc.status || d.Flag != tc.flag {
				t.Errorf("decision status %d flag %s, want %d %s", d.DirectStatus, d.Flag, tc.status, tc.flag)
			}
		})
	}
}

// A consumer route (in the caller's namespace, naming a Service elsewhere)
// applies to that namespace's callers only, ahead of the producer's routes.
func TestHTTPRouteConsumerAndProducer(t *testing.T) {
	s := gammaWorld(t, meshRoute("producer")+"  rules: [{backendRefs: [{name: fraud-v1, port: 80}]}]\n")
	s = withService(s, service("shop", "fraud-v2", map[string]string{"app": "fraud", "version": "v2"}))
	s.HTTPRoutes = append(s.HTTPRoutes, httpRouteFromYAML(t, `
metadata: {name: consumer, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: fraud, namespace: ml}]
  rules: [{backendRefs: [{name: fraud-v2, port: 80}]}]
`))
	tbl := Build(s)
	if len(tbl.Problems) != 0 {
		t.Fatalf("problems: %v", tbl.Problems)
	}
	rnd := rand.New(rand.NewPCG(1, 1))
	for ns, want := range map[string]string{"": "ml/producer", "ml": "ml/producer", "shop": "shop/consumer"} {
		r := req("fraud", "/")
		r.SourceNamespace = ns
		if d := tbl.Route(r, rnd); d.HTTPRoute != want {
			t.Errorf("caller in %q routed by %q, want %s", ns, d.HTTPRoute, want)
		}
	}
}

// A route attached to a Gateway routes the hosts its hostnames match, the
// most specific hostname first.
func TestHTTPRouteOnGatewayByHostname(t *testing.T) {
	tbl := Build(gammaWorld(t, `
metadata: {name: wild}
spec:
  parentRefs: [{name: ingress, namespace: gateways}]
  hostnames: ["*.example.com"]
  rules: [{backendRefs: [{name: fraud-v1, port: 80}]}]
`, `
metadata: {name: exact}
spec:
  parentRefs: [{name: ingress, namespace: gateways}]
  hostnames: [fraud.example.com]
  rules: [{backendRefs: [{name: fraud-v2, port: 80}]}]
`))
	if len(tbl.Problems) != 0 {
		t.Fatalf("problems: %v", tbl.Problems)
	}
	rnd := rand.New(rand.NewPCG(1, 1))
	for host, want := range map[string]string{"fraud.example.com": "ml/exact", "a.b.example.com:443": "ml/wild", "example.com": "", "fraud": ""} {
		if d := tbl.Route(req(host, "/"), rnd); d.HTTPRoute != want {
			t.Errorf("%s routed by %q, want %q", host, d.HTTPRoute, want)
		}
	}
}

// HTTPRoutes and GRPCRoutes do not merge on a parent: the oldest route's
// kind wins.
func TestHTTPRouteAndGRPCRouteDoNotMerge(t *testing.T) {
	s := gammaWorld(t, `metadata: {name: h, creationTimestamp: "2030-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: fraud}]
  rules: [{backendRefs: [{name: fraud-v1, port: 80}]}]
`)
	s.GRPCRoutes = append(s.GRPCRoutes, grpcRouteFromYAML(t, `
metadata: {name: g, creationTimestamp: "2020-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: fraud}]
  rules: [{backendRefs: [{name: fraud-v2, port: 80}]}]
`))
	tbl := Build(s)
	if !strings.Contains(strings.Join(tbl.Problems, ""), "HTTPRoute ml/h parentRefs[0]: an older GRPCRoute") {
		t.Errorf("problems %v should say the younger HTTPRoute is ignored", tbl.Problems)
	}
	if d := tbl.Route(req("fraud", "/"), rand.New(rand.NewPCG(1, 1))); d.GRPCRoute != "ml/g" || d.Target.Service.Name != "fraud-v2" {
		t.Errorf("routed by %q/%q to %s, want GRPCRoute ml/g", d.HTTPRoute, d.GRPCRoute, d.Target.Service.Name)
	}
}

func TestPathPrefixMatches(t *testing.T) {
	cases := []struct {
		prefix, path string
		want         bool
	}{
		{"/", "/", true}, {"/", "/anything", true},
		{"/abc", "/abc", true}, {"/abc", "/abc/", true}, {"/abc", "/abc/def", true}, {"/abc", "/abcd", false},
		{"/abc/", "/abc", true}, {"/abc/", "/abc/d", true}, {"/abc/", "/abcd", false},
		{"/abc", "/ab", false}, {"/abc", "/ABC", false},
	}
	for _, tc := range cases {
		if got := pathPrefixMatches(tc.prefix, tc.path); got != tc.want {
			t.Errorf("pathPrefixMatches(%q, %q) = %v, want %v", tc.prefix, tc.path, got, tc.want)
		}
	}
}
