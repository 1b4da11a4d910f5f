package dataplane

import (
	"math/rand/v2"
	"strings"
	"testing"
)

const grpcRoute = `
metadata: {name: infer, resourceVersion: "9"}
spec:
  parentRefs: [{group: "", kind: Service, name: fraud}]
  rules:
  - name: default
    backendRefs: [{name: fraud-v1, port: 9000}]
  - name: service
    matches: [{method: {service: fulcrum.e2e.Model}}]
    backendRefs: [{name: fraud-v2, port: 9000}]
  - name: service-and-method
    matches: [{method: {service: fulcrum.e2e.Model, method: Infer}}]
    backendRefs: [{name: fraud-v3, port: 9000}]
  - name: service-and-header
    matches: [{method: {service: fulcrum.e2e.Model}, headers: [{name: x-arm, value: b}]}]
    backendRefs: [{name: fraud-v1, port: 9000}]
  - name: method-only
    matches: [{method: {method: Ping}}]
    backendRefs: [{name: fraud-v2, port: 9000}]
  - name: regex
    matches: [{method: {type: RegularExpression, service: 'grpc\.health\.v[0-9]+\.Health', method: "Check|Watch"}}]
    backendRefs: [{name: fraud-v3, port: 9000}]
  - name: header-regex
    matches: [{headers: [{type: RegularExpression, name: x-tenant, value: "acme-[0-9]+"}]}]
    backendRefs: [{name: fraud-v2, port: 9000}]
`

func TestGRPCRouteMatches(t *testing.T) {
	s := gammaWorld(t)
	s.GRPCRoutes = append(s.GRPCRoutes, grpcRouteFromYAML(t, grpcRoute))
	tbl := Build(s)
	if len(tbl.Problems) != 0 {
		t.Fatalf("problems: %v", tbl.Problems)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	cases := map[string]struct {
		req           *Request
		rule, service string
	}{
		"service and method beat service":          {req("fraud", "/fulcrum.e2e.Model/Infer"), "service-and-method", "fraud-v3"},
		"service alone":                            {req("fraud", "/fulcrum.e2e.Model/Explain"), "service", "fraud-v2"},
		"a header breaks a tie on service":         {req("fraud", "/fulcrum.e2e.Model/Explain", "x-arm", "b"), "service-and-header", "fraud-v1"},
		"method characters before headers":         {req("fraud", "/fulcrum.e2e.Model/Infer", "x-arm", "b"), "service-and-method", "fraud-v3"},
		"service is exact":                         {req("fraud", "/fulcrum.e2e.ModelX/Infer"), "default", "fraud-v1"},
		"service match needs one method segment":   {req("fraud", "/fulcrum.e2e.Model/Infer/x"), "default", "fraud-v1"},
		"method alone, any service":                {req("fraud", "/other.Svc/Ping"), "method-only", "fraud-v2"},
		"regex service and method":                 {req("fraud", "/grpc.health.v1.Health/Watch"), "regex", "fraud-v3"},
		"regex method is anchored":                 {req("fraud", "/grpc.health.v1.Health/Checks"), "default", "fraud-v1"},
		"header regex":                             {req("fraud", "/x.Y/Z", "x-tenant", "acme-42"), "header-regex", "fraud-v2"},
		"no rule but the catch-all":                {req("fraud", "/x.Y/Z"), "default", "fraud-v1"},
		"a service match beats a header-only rule": {req("fraud", "/fulcrum.e2e.Model/Explain", "x-tenant", "acme-1"), "service", "fraud-v2"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := tc.req
			r.GRPC = true
			d := tbl.Route(r, rnd)
			if d.Flag != FlagNone || d.DirectStatus != 0 || d.Route != tc.rule || d.Target.Service.Name != tc.service {
				t.Fatalf("got rule %q service %q flag %s status %d, want rule %q service %q", d.Route, d.Target.Service.Name, d.Flag, d.DirectStatus, tc.rule, tc.service)
			}
			if d.GRPCRoute != "ml/infer" || d.HTTPRoute != "" || d.Backend == nil {
				t.Fatalf("decision %+v: want GRPCRoute ml/infer and a backend", d)
			}
		})
	}
	if v, ok := tbl.RouteVersion(KindGRPCRoute, "ml", "infer"); !ok || v != "9" {
		t.Errorf("RouteVersion = %q, %v; want 9", v, ok)
	}
}

func TestGRPCRouteWeightsAndProblems(t *testing.T) {
	s := gammaWorld(t)
	s.GRPCRoutes = append(s.GRPCRoutes, grpcRouteFromYAML(t, `
metadata: {name: split}
spec:
  parentRefs: [{group: "", kind: Service, name: fraud}]
  rules:
  - matches: [{method: {service: a.B}}]
    backendRefs: [{name: fraud-v1, port: 9000, weight: 80}, {name: fraud-v2, port: 9000, weight: 20}]
  - matches: [{method: {service: bad.Regex, type: RegularExpression, method: "(x"}}]
    backendRefs: [{name: fraud-v1, port: 9000}]
  - matches: [{method: {service: ext.Ref}}]
    filters: [{type: ExtensionRef, extensionRef: {group: example.com, kind: Thing, name: x}}]
    backendRefs: [{name: fraud-v1, port: 9000}]
  - matches: [{method: {service: gone.Svc}}]
    backendRefs: [{name: gone, port: 9000}]
`))
	tbl := Build(s)
	all := strings.Join(tbl.Problems, "\n")
	for _, want := range []string{"rules[1].matches[0]: method: regular expression", "rules[2]: filters[0]: filter ExtensionRef is not supported", "rules[3]: backendRefs[0]: Service ml/gone: no such Service"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems %q should contain %q", tbl.Problems, want)
		}
	}
	rnd := rand.New(rand.NewPCG(5, 5))
	const n = 20000
	counts := map[string]int{}
	for range n {
		counts[tbl.Route(&Request{Host: FQDN("fraud", "ml"), Path: "/a.B/Call", GRPC: true}, rnd).Target.Service.Name]++
	}
	exp := n * 0.2
	if chi := (float64(counts["fraud-v2"]) - exp) * (float64(counts["fraud-v2"]) - exp) / exp * 5 / 4; chi > chiSquareCritical999[0] || counts["fraud-v1"]+counts["fraud-v2"] != n {
		t.Errorf("80/20 split served %v (chi-square %.2f)", counts, chi)
	}
	for _, path := range []string{"/ext.Ref/Call", "/gone.Svc/Call"} {
		if d := tbl.Route(&Request{Host: FQDN("fraud", "ml"), Path: path, GRPC: true}, rnd); d.DirectStatus != 500 {
			t.Errorf("%s: status %d, want 500 (UNAVAILABLE to a gRPC client)", path, d.DirectStatus)
		}
	}
	if d := tbl.Route(&Request{Host: FQDN("fraud", "ml"), Path: "/bad.Regex/x", GRPC: true}, rnd); d.Flag != FlagNoRoute {
		t.Errorf("bad regex: flag %s, want NR (the match never matches)", d.Flag)
	}
}
