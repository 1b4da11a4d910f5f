package dataplane

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

const matchVS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: fraud, namespace: ml, resourceVersion: "42"}
spec:
  hosts: [fraud]
  http:
  - name: admin-only
    match:
    - {gateways: [public-gateway], uri: {prefix: /}}
    route: [{destination: {host: fraud, subset: v3}}]
  - name: exact-uri
    match: [{uri: {exact: /v2/models/fraud/ready}}]
    route: [{destination: {host: fraud, subset: v3}}]
  - name: header-exact
    match: [{headers: {x-user-id: {exact: tester}}}]
    route: [{destination: {host: fraud, subset: v2}}]
  - name: header-prefix-and-uri-regex
    match: [{headers: {x-group: {prefix: beta-}}, uri: {regex: "/v2/models/[a-z]+/infer"}}]
    route: [{destination: {host: fraud.ml.svc.cluster.local, subset: v2}}]
  - name: header-regex-or-query
    match:
    - {headers: {x-canary: {regex: "(yes|true)"}}}
    - {queryParams: {canary: {exact: "1"}}}
    route: [{destination: {host: fraud, subset: v3}}]
  - name: presence-and-absence
    match: [{headers: {x-debug: {}}, withoutHeaders: {x-skip: {}}}]
    route: [{destination: {host: fraud, subset: v3}}]
  - name: method-and-case
    match: [{method: {exact: DELETE}, uri: {prefix: /ADMIN}, ignoreUriCase: true}]
    route: [{destination: {host: fraud, subset: v3}}]
  - name: default
    route: [{destination: {host: fraud, subset: v1}}]
`

func req(host, path string, hdr ...string) *Request {
	u, _ := url.Parse(path)
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Add(hdr[i], hdr[i+1])
	}
	return &Request{Host: FQDN(host, "ml"), Authority: host, Method: "POST", Scheme: "http", Path: u.Path, Query: u.Query(), Header: h}
}

func TestRouteMatches(t *testing.T) {
	tbl := Build(fraudWorld(t, matchVS))
	if len(tbl.Problems) != 0 {
		t.Fatalf("problems: %v", tbl.Problems)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	cases := map[string]struct {
		req    *Request
		route  string
		subset string
	}{
		"gateway-only match never applies to the mesh": {req("fraud", "/anything"), "default", "v1"},
		"exact uri":                   {req("fraud", "/v2/models/fraud/ready"), "exact-uri", "v3"},
		"exact uri is not a prefix":   {req("fraud", "/v2/models/fraud/ready/x"), "default", "v1"},
		"header exact":                {req("fraud", "/x", "X-User-Id", "tester"), "header-exact", "v2"},
		"header exact is exact":       {req("fraud", "/x", "X-User-Id", "tester2"), "default", "v1"},
		"header prefix and uri regex": {req("fraud", "/v2/models/fraud/infer", "x-group", "beta-7"), "header-prefix-and-uri-regex", "v2"},
		"regex anchors the whole uri": {req("fraud", "/v2/models/fraud/infer/x", "x-group", "beta-7"), "default", "v1"},
		"both conditions must hold":   {req("fraud", "/v2/models/fraud/infer", "x-group", "alpha"), "default", "v1"},
		"header regex":                {req("fraud", "/", "x-canary", "true"), "header-regex-or-query", "v3"},
		"header regex anchored":       {req("fraud", "/", "x-canary", "truely"), "default", "v1"},
		"second match of a route":     {req("fraud", "/?canary=1"), "header-regex-or-query", "v3"},
		"presence without absence":    {req("fraud", "/", "x-debug", ""), "presence-and-absence", "v3"},
		"withoutHeaders excludes":     {req("fraud", "/", "x-debug", "1", "x-skip", "1"), "default", "v1"},
		"method and ignoreUriCase":    {&Request{Host: FQDN("fraud", "ml"), Method: "DELETE", Path: "/admin/x", Header: http.Header{}}, "method-and-case", "v3"},
		"short host in other ns form": {req("fraud.ml", "/"), "default", "v1"},
		"FQDN host with port":         {req("fraud.ml.svc.cluster.local:8080", "/"), "default", "v1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := tbl.Route(tc.req, rnd)
			if d.Flag != FlagNone || d.Route != tc.route || d.Target.Subset != tc.subset {
				t.Fatalf("got route %q subset %q flag %s, want route %q subset %q", d.Route, d.Target.Subset, d.Flag, tc.route, tc.subset)
			}
			if d.VirtualService != "ml/fraud" || d.Backend == nil || d.Backend.Version != tc.subset {
				t.Fatalf("decision %+v: want VirtualService ml/fraud and a %s backend", d, tc.subset)
			}
		})
	}
	if v, ok := tbl.VirtualServiceVersion("ml", "fraud"); !ok || v != "42" {
		t.Errorf("VirtualServiceVersion = %q, %v; want 42", v, ok)
	}
}

func TestRouteNoMatchAndUnknownHost(t *testing.T) {
	tbl := Build(fraudWorld(t, `
metadata: {name: fraud}
spec:
  hosts: [fraud]
  http:
  - match: [{uri: {prefix: /v2}}]
    route: [{destination: {host: fraud, subset: v1}}]
`))
	rnd := rand.New(rand.NewPCG(1, 2))
	if d := tbl.Route(req("fraud", "/v1/x"), rnd); d.Flag != FlagNoRoute || d.Backend != nil {
		t.Errorf("unmatched request: flag %s backend %v, want NR and none", d.Flag, d.Backend)
	}
	if d := tbl.Route(req("other", "/v2"), rnd); d.Flag != FlagNoRoute {
		t.Errorf("unknown host: flag %s, want NR", d.Flag)
	}
}

func TestServiceWithoutVirtualServiceUsesAllPods(t *testing.T) {
	tbl := Build(fraudWorld(t))
	rnd := rand.New(rand.NewPCG(3, 4))
	seen := map[string]int{}
	for range 300 {
		d := tbl.Route(req("fraud", "/"), rnd)
		if d.Backend == nil {
			t.Fatalf("no backend: %+v", d)
		}
		seen[d.Backend.Version]++
	}
	if len(seen) != 3 {
		t.Errorf("versions served without a VirtualService = %v, want all three pods", seen)
	}
}

func TestBackendsFollowReadinessAndAnnotation(t *testing.T) {
	vs := `
metadata: {name: fraud}
spec:
  hosts: [fraud]
  http: [{route: [{destination: {host: fraud, subset: v2}}]}]
`
	rnd := rand.New(rand.NewPCG(5, 6))
	cases := map[string]struct {
		pod         *corev1.Pod
		flag        string
		problemWord string
	}{
		"ready pod serves":         {pod("ml", "fraud-v2", "p", map[string]string{"app": "fraud", "version": "v2"}, "127.0.0.1:2002"), FlagNone, ""},
		"not ready gets nothing":   {pod("ml", "fraud-v2", "p", map[string]string{"app": "fraud", "version": "v2"}, "127.0.0.1:2002", notReady), FlagNoHealthyUpstream, ""},
		"terminating gets nothing": {pod("ml", "fraud-v2", "p", map[string]string{"app": "fraud", "version": "v2"}, "127.0.0.1:2002", deleting), FlagNoHealthyUpstream, ""},
		"no annotation":            {pod("ml", "fraud-v2", "p", map[string]string{"app": "fraud", "version": "v2"}, "", noBackend), FlagNoHealthyUpstream, BackendAnnotation},
		"non-loopback refused":     {pod("ml", "fraud-v2", "p", map[string]string{"app": "fraud", "version": "v2"}, "10.0.0.1:80"), FlagNoHealthyUpstream, "loopback"},
		"other service's pod":      {pod("ml", "fraud-v2", "p", map[string]string{"app": "other", "version": "v2"}, "127.0.0.1:2002"), FlagNoHealthyUpstream, ""},
		"other namespace's pod":    {pod("ns2", "fraud-v2", "p", map[string]string{"app": "fraud", "version": "v2"}, "127.0.0.1:2002"), FlagNoHealthyUpstream, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := fraudWorld(t, vs)
			s.Pods = []*corev1.Pod{tc.pod}
			tbl := Build(s)
			d := tbl.Route(req("fraud", "/"), rnd)
			if d.Flag != tc.flag {
				t.Fatalf("flag %s, want %s (problems %v)", d.Flag, tc.flag, tbl.Problems)
			}
			if tc.problemWord != "" && !strings.Contains(strings.Join(tbl.Problems, "\n"), tc.problemWord) {
				t.Errorf("problems %v should mention %q", tbl.Problems, tc.problemWord)
			}
			if tc.flag == FlagNone {
				b := d.Backend
				if b.Addr != "127.0.0.1:2002" || b.Workload != "fraud-v2" || b.WorkloadNamespace != "ml" || b.App != "fraud" || b.Version != "v2" || b.CanonicalService != "fraud" || b.CanonicalRevision != "v2" {
					t.Errorf("backend %+v: want the pod's address and workload fraud-v2 (ml), app fraud, version v2", b)
				}
			}
		})
	}
}

func TestUndefinedSubsetIsNoCluster(t *testing.T) {
	tbl := Build(fraudWorld(t, `
metadata: {name: fraud}
spec:
  hosts: [fraud]
  http: [{route: [{destination: {host: fraud, subset: v9}}]}]
`))
	d := tbl.Route(req("fraud", "/"), rand.New(rand.NewPCG(1, 1)))
	if d.Flag != FlagNoCluster || !strings.Contains(strings.Join(tbl.Problems, ""), "v9") {
		t.Errorf("flag %s problems %v; want NC and a problem naming v9", d.Flag, tbl.Problems)
	}
}

func TestBadRegexDisablesOnlyItsRoute(t *testing.T) {
	tbl := Build(fraudWorld(t, `
metadata: {name: fraud}
spec:
  hosts: [fraud]
  http:
  - match: [{headers: {x: {regex: "(unclosed"}}}]
    route: [{destination: {host: fraud, subset: v2}}]
  - route: [{destination: {host: fraud, subset: v1}}]
`))
	if !strings.Contains(strings.Join(tbl.Problems, ""), "headers[x]") {
		t.Errorf("problems %v should name headers[x]", tbl.Problems)
	}
	d := tbl.Route(req("fraud", "/", "x", "(unclosed"), rand.New(rand.NewPCG(1, 1)))
	if d.Target.Subset != "v1" {
		t.Errorf("subset %s, want v1 (the bad route is dropped)", d.Target.Subset)
	}
}

func TestHostPrecedence(t *testing.T) {
	s := fraudWorld(t, `
metadata: {name: wild}
spec:
  hosts: ["*.ml.svc.cluster.local"]
  http: [{route: [{destination: {host: fraud, subset: v3}}]}]
`, `
metadata: {name: exact, creationTimestamp: "2030-01-01T00:00:00Z"}
spec:
  hosts: [fraud]
  http: [{route: [{destination: {host: fraud, subset: v1}}]}]
`, `
metadata: {name: mesh-excluded}
spec:
  hosts: [fraud]
  gateways: [ingress]
  http: [{route: [{destination: {host: fraud, subset: v2}}]}]
`)
	tbl := Build(s)
	rnd := rand.New(rand.NewPCG(1, 1))
	if d := tbl.Route(req("fraud", "/"), rnd); d.VirtualService != "ml/exact" || d.Target.Subset != "v1" {
		t.Errorf("fraud went to %s/%s, want the exact host's VirtualService ml/exact", d.VirtualService, d.Target.Subset)
	}
	if d := tbl.Route(req("other.ml", "/"), rnd); d.VirtualService != "ml/wild" || d.Target.Subset != "v3" {
		t.Errorf("other.ml went to %s/%s, want the wildcard", d.VirtualService, d.Target.Subset)
	}
}

func TestFQDN(t *testing.T) {
	cases := map[string]string{
		"fraud":                           "fraud.ml.svc.cluster.local",
		"fraud:8080":                      "fraud.ml.svc.cluster.local",
		"Fraud.Other":                     "fraud.other.svc.cluster.local",
		"fraud.other.svc":                 "fraud.other.svc.cluster.local",
		"fraud.other.svc.cluster.local.":  "fraud.other.svc.cluster.local",
		"*.example.com":                   "*.example.com",
		"api.example.com:443":             "api.example.com",
		"fraud.ml.svc.cluster.local:9000": "fraud.ml.svc.cluster.local",
	}
	for in, want := range cases {
		if got := FQDN(in, "ml"); got != want {
			t.Errorf("FQDN(%q) = %q, want %q", in, got, want)
		}
	}
}
