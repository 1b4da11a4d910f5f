package dataplane

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// compileHTTPRoute compiles an HTTPRoute's rules for attachment (see
// gatewayTable). Supported: matches on path (Exact, PathPrefix,
// RegularExpression as RE2 over the whole path), headers and query
// parameters (Exact, RegularExpression) and method; backendRefs to Services
// with weights; RequestHeaderModifier, ResponseHeaderModifier and
// RequestMirror filters on rules and backendRefs; timeouts.request and
// timeouts.backendRequest (the shorter bounds the request, as there are no
// retries). Other filters (RequestRedirect, URLRewrite, CORS, ExternalAuth,
// ExtensionRef) make the rule, or the backendRef, answer 500; retry and
// sessionPersistence are ignored. A match that cannot be compiled (a bad
// regular expression, an unknown type) never matches. Every such case is
// listed in Table.Problems.
func (t *Table) compileHTTPRoute(hr *gatewayv1.HTTPRoute, svcs map[string]*corev1.Service) *gwRoute {
	out := &gwRoute{kind: KindHTTPRoute, namespace: hr.Namespace, name: hr.Name, created: hr.CreationTimestamp.Time,
		parents: hr.Spec.ParentRefs, hostnames: hr.Spec.Hostnames}
	report := func(at, p string) {
		t.Problems = append(t.Problems, fmt.Sprintf("%s %s %s: %s", KindHTTPRoute, out.key(), at, p))
	}
	for i, rule := range hr.Spec.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		in := gwRule{name: rule.Name}
		for _, f := range rule.Filters {
			in.filters = append(in.filters, httpFilter(f))
		}
		for _, b := range rule.BackendRefs {
			br := gwBackendRef{ref: b.BackendRef}
			for _, f := range b.Filters {
				br.filters = append(br.filters, httpFilter(f))
			}
			in.backends = append(in.backends, br)
		}
		timeout, err := httpTimeout(rule.Timeouts)
		if err != nil {
			report(at, err.Error())
		}
		in.timeout = timeout
		r, problems := t.compileRule(in, hr.Namespace, svcs)
		for _, p := range problems {
			report(at, p)
		}
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gatewayv1.HTTPRouteMatch{{}} // PathPrefix "/": everything
		}
		for j, m := range matches {
			c, prec, err := compileHTTPMatch(m)
			if err != nil {
				report(fmt.Sprintf("%s.matches[%d]", at, j), err.Error()+"; never matches")
				continue
			}
			out.entries = append(out.entries, gwEntry{m: &c, r: r, route: out.key(), prec: prec})
		}
	}
	return out
}

func httpFilter(f gatewayv1.HTTPRouteFilter) gwFilter {
	return gwFilter{typ: string(f.Type), request: f.RequestHeaderModifier, response: f.ResponseHeaderModifier, mirror: f.RequestMirror}
}

// httpTimeout is the rule's request timeout: the shorter of request and
// backendRequest, 0 for none ("0s" disables it, as the spec says).
func httpTimeout(t *gatewayv1.HTTPRouteTimeouts) (time.Duration, error) {
	if t == nil {
		return 0, nil
	}
	var out time.Duration
	for _, d := range []*gatewayv1.Duration{t.Request, t.BackendRequest} {
		if d == nil {
			continue
		}
		v, err := time.ParseDuration(string(*d))
		if err != nil {
			return 0, fmt.Errorf("timeouts %q: %w; ignored", *d, err)
		}
		if v > 0 && (out == 0 || v < out) {
			out = v
		}
	}
	return out, nil
}

// compileHTTPMatch compiles one HTTPRouteMatch, with the API server's
// defaults for what is unset (path PathPrefix "/", header and query types
// Exact), and its precedence:
//
//  1. Exact paths, then RegularExpression, then PathPrefix (the spec leaves
//     regular expressions' place to the implementation; after prefixes they
//     could never win against the catch-all PathPrefix "/");
//  2. longer path values first (a longer prefix, or regex, is more specific);
//  3. a method match;
//  4. more header matches;
//  5. more query parameter matches.
//
// Only the first of several header (or query parameter) matches with the
// same name counts, as the spec says.
func compileHTTPMatch(m gatewayv1.HTTPRouteMatch) (matcher, [5]int, error) {
	var out matcher
	var prec [5]int
	typ, value := gatewayv1.PathMatchPathPrefix, "/"
	if m.Path != nil {
		if m.Path.Type != nil {
			typ = *m.Path.Type
		}
		if m.Path.Value != nil {
			value = *m.Path.Value
		}
	}
	switch typ {
	case gatewayv1.PathMatchExact:
		out.uri, prec[0] = &stringMatch{kind: "exact", value: value}, 3
	case gatewayv1.PathMatchPathPrefix:
		out.uri, prec[0] = &stringMatch{kind: "pathprefix", value: value}, 1
	case gatewayv1.PathMatchRegularExpression:
		re, err := anchored(value)
		if err != nil {
			return out, prec, fmt.Errorf("path: %w", err)
		}
		out.uri, prec[0] = &stringMatch{kind: "regex", re: re}, 2
	default:
		return out, prec, fmt.Errorf("path type %q is not supported", typ)
	}
	prec[1] = len(value)
	if m.Method != nil {
		out.method = &stringMatch{kind: "exact", value: string(*m.Method)}
		prec[2] = 1
	}
	var hs, qs []nameMatch
	for _, h := range m.Headers {
		hs = append(hs, nameMatch{name: string(h.Name), value: h.Value, regex: h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression})
	}
	for _, q := range m.QueryParams {
		qs = append(qs, nameMatch{name: string(q.Name), value: q.Value, regex: q.Type != nil && *q.Type == gatewayv1.QueryParamMatchRegularExpression})
	}
	var err error
	if out.headers, err = compileNameMatches("headers", hs, true); err != nil {
		return out, prec, err
	}
	if out.query, err = compileNameMatches("queryParams", qs, false); err != nil {
		return out, prec, err
	}
	prec[3], prec[4] = len(out.headers), len(out.query)
	return out, prec, nil
}

// nameMatch is a header or query parameter match of either route kind.
type nameMatch struct {
	name, value string
	regex       bool
}

// compileNameMatches keeps the first match of each name (case-insensitive
// for headers, whose names it lower-cases).
func compileNameMatches(field string, in []nameMatch, header bool) ([]keyMatch, error) {
	var out []keyMatch
	seen := map[string]bool{}
	for _, n := range in {
		key := n.name
		if header {
			key = strings.ToLower(key)
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		m := stringMatch{kind: "exact", value: n.value}
		if n.regex {
			re, err := anchored(n.value)
			if err != nil {
				return nil, fmt.Errorf("%s[%s]: %w", field, n.name, err)
			}
			m = stringMatch{kind: "regex", re: re}
		}
		out = append(out, keyMatch{key: key, m: m})
	}
	return out, nil
}

// anchored compiles a RegularExpression match: RE2 (Go's regexp) over the
// whole value, as Envoy's safe_regex matches.
func anchored(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %w", expr, err)
	}
	return re, nil
}
