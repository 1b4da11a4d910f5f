package dataplane

import (
	"fmt"
	"regexp"

	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// compileGRPCRoute compiles a GRPCRoute's rules for attachment (see
// gatewayTable). A gRPC call is an HTTP/2 POST to /package.Service/Method,
// so its matches compile into path matches: method (Exact or
// RegularExpression, RE2 over the whole name, on service, method or both)
// and headers (Exact, RegularExpression). backendRefs, weights and the
// RequestHeaderModifier, ResponseHeaderModifier and RequestMirror filters
// work as on HTTPRoutes; ExtensionRef makes the rule (or backendRef)
// unroutable. Unroutable rules and invalid backendRefs answer gRPC status
// UNAVAILABLE (see grpc.go), as the spec asks.
func (t *Table) compileGRPCRoute(gr *gatewayv1.GRPCRoute, svcs map[string]*corev1.Service) *gwRoute {
	out := &gwRoute{kind: KindGRPCRoute, namespace: gr.Namespace, name: gr.Name, created: gr.CreationTimestamp.Time,
		parents: gr.Spec.ParentRefs, hostnames: gr.Spec.Hostnames}
	report := func(at, p string) {
		t.Problems = append(t.Problems, fmt.Sprintf("%s %s %s: %s", KindGRPCRoute, out.key(), at, p))
	}
	for i, rule := range gr.Spec.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		in := gwRule{name: rule.Name}
		for _, f := range rule.Filters {
			in.filters = append(in.filters, grpcFilter(f))
		}
		for _, b := range rule.BackendRefs {
			br := gwBackendRef{ref: b.BackendRef}
			for _, f := range b.Filters {
				br.filters = append(br.filters, grpcFilter(f))
			}
			in.backends = append(in.backends, br)
		}
		r, problems := t.compileRule(in, gr.Namespace, svcs)
		for _, p := range problems {
			report(at, p)
		}
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gatewayv1.GRPCRouteMatch{{}} // every call
		}
		for j, m := range matches {
			c, prec, err := compileGRPCMatch(m)
			if err != nil {
				report(fmt.Sprintf("%s.matches[%d]", at, j), err.Error()+"; never matches")
				continue
			}
			out.entries = append(out.entries, gwEntry{m: &c, r: r, route: out.key(), prec: prec})
		}
	}
	return out
}

func grpcFilter(f gatewayv1.GRPCRouteFilter) gwFilter {
	return gwFilter{typ: string(f.Type), request: f.RequestHeaderModifier, response: f.ResponseHeaderModifier, mirror: f.RequestMirror}
}

// compileGRPCMatch compiles one GRPCRouteMatch and its precedence: more
// characters in the service, then in the method, then more header matches
// (the spec's hostname criteria are settled before, by the parent the
// request reaches).
func compileGRPCMatch(m gatewayv1.GRPCRouteMatch) (matcher, [5]int, error) {
	var out matcher
	var prec [5]int
	if mm := m.Method; mm != nil {
		var svc, method string
		if mm.Service != nil {
			svc = *mm.Service
		}
		if mm.Method != nil {
			method = *mm.Method
		}
		if svc == "" && method == "" {
			return out, prec, fmt.Errorf("method: set service, method or both")
		}
		typ := gatewayv1.GRPCMethodMatchExact
		if mm.Type != nil {
			typ = *mm.Type
		}
		var expr string
		switch typ {
		case gatewayv1.GRPCMethodMatchExact:
			if svc != "" && method != "" {
				out.uri = &stringMatch{kind: "exact", value: "/" + svc + "/" + method}
				break
			}
			expr = "/" + anyIfEmpty(regexp.QuoteMeta(svc)) + "/" + anyIfEmpty(regexp.QuoteMeta(method))
		case gatewayv1.GRPCMethodMatchRegularExpression:
			expr = "/" + anyIfEmpty(group(svc)) + "/" + anyIfEmpty(group(method))
		default:
			return out, prec, fmt.Errorf("method type %q is not supported", typ)
		}
		if expr != "" {
			re, err := regexp.Compile("^" + expr + "$")
			if err != nil {
				return out, prec, fmt.Errorf("method: regular expression %q: %w", expr, err)
			}
			out.uri = &stringMatch{kind: "regex", re: re}
		}
		prec[0], prec[1] = len(svc), len(method)
	}
	var hs []nameMatch
	for _, h := range m.Headers {
		hs = append(hs, nameMatch{name: string(h.Name), value: h.Value, regex: h.Type != nil && *h.Type == gatewayv1.GRPCHeaderMatchRegularExpression})
	}
	var err error
	if out.headers, err = compileNameMatches("headers", hs, true); err != nil {
		return out, prec, err
	}
	prec[2] = len(out.headers)
	return out, prec, nil
}

// anyIfEmpty stands for any one path segment when a service or method is
// not given.
func anyIfEmpty(expr string) string {
	if expr == "" {
		return "[^/]+"
	}
	return expr
}

func group(expr string) string {
	if expr == "" {
		return ""
	}
	return "(?:" + expr + ")"
}
