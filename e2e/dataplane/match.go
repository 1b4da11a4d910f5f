package dataplane

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// Request is what routing looks at in an HTTP request.
type Request struct {
	// Host is the target host (Host header or the listener's mapping),
	// expanded with FQDN.
	Host      string
	Authority string // the Host header as sent
	Method    string
	Scheme    string
	Path      string // without the query
	Query     url.Values
	Header    http.Header
	Port      uint32
	// SourceNamespace and SourceLabels describe the calling workload, for
	// sourceNamespace and sourceLabels matches.
	SourceNamespace string
	SourceLabels    map[string]string
	// GRPC is set for gRPC calls (Content-Type application/grpc).
	GRPC bool
}

// stringMatch is a compiled istio StringMatch. A match with no type set
// checks presence only, as Istio does for headers and query parameters.
type stringMatch struct {
	kind  string // exact, prefix, regex, present, or pathprefix (Gateway API's element-wise PathPrefix)
	value string
	re    *regexp.Regexp
	fold  bool
}

func compileStringMatch(m *networking.StringMatch, fold bool) (stringMatch, error) {
	switch t := m.GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		return stringMatch{kind: "exact", value: t.Exact, fold: fold}, nil
	case *networking.StringMatch_Prefix:
		return stringMatch{kind: "prefix", value: t.Prefix, fold: fold}, nil
	case *networking.StringMatch_Regex:
		// Envoy's safe_regex is RE2 matched against the whole value.
		re, err := regexp.Compile("^(?:" + t.Regex + ")$")
		if err != nil {
			return stringMatch{}, fmt.Errorf("regex %q: %w", t.Regex, err)
		}
		return stringMatch{kind: "regex", re: re}, nil
	default:
		return stringMatch{kind: "present"}, nil
	}
}

func (m stringMatch) match(v string) bool {
	switch m.kind {
	case "exact":
		if m.fold {
			return strings.EqualFold(v, m.value)
		}
		return v == m.value
	case "prefix":
		if m.fold {
			return len(v) >= len(m.value) && strings.EqualFold(v[:len(m.value)], m.value)
		}
		return strings.HasPrefix(v, m.value)
	case "regex":
		return m.re.MatchString(v)
	case "pathprefix":
		return pathPrefixMatches(m.value, v)
	}
	return true
}

// pathPrefixMatches is Gateway API's PathPrefix: prefix matches path element
// by element, a trailing "/" on it ignored, so "/abc" (or "/abc/") matches
// "/abc", "/abc/" and "/abc/def" but not "/abcd"; "/" matches every path.
func pathPrefixMatches(prefix, path string) bool {
	prefix = strings.TrimRight(prefix, "/")
	if prefix == "" {
		return true
	}
	rest, ok := strings.CutPrefix(path, prefix)
	return ok && (rest == "" || rest[0] == '/')
}

type keyMatch struct {
	key string
	m   stringMatch
}

// matcher is one compiled HTTPMatchRequest: every condition must hold.
type matcher struct {
	uri, scheme, method, authority *stringMatch
	headers, withoutHeaders        []keyMatch
	query                          []keyMatch
	port                           uint32
	sourceNamespace                string
	sourceLabels                   map[string]string
	skip                           bool // gateways set without "mesh"
}

func compileMatch(m *networking.HTTPMatchRequest) (matcher, error) {
	var out matcher
	if gws := m.GetGateways(); len(gws) > 0 {
		out.skip = true
		for _, g := range gws {
			if g == MeshGateway {
				out.skip = false
			}
		}
	}
	one := func(field string, sm *networking.StringMatch, fold bool) (*stringMatch, error) {
		if sm == nil {
			return nil, nil
		}
		c, err := compileStringMatch(sm, fold)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		return &c, nil
	}
	var err error
	if out.uri, err = one("uri", m.GetUri(), m.GetIgnoreUriCase()); err != nil {
		return out, err
	}
	if out.scheme, err = one("scheme", m.GetScheme(), false); err != nil {
		return out, err
	}
	if out.method, err = one("method", m.GetMethod(), false); err != nil {
		return out, err
	}
	if out.authority, err = one("authority", m.GetAuthority(), false); err != nil {
		return out, err
	}
	many := func(field string, in map[string]*networking.StringMatch, lower bool) ([]keyMatch, error) {
		keys := make([]string, 0, len(in))
		for k := range in {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var res []keyMatch
		for _, k := range keys {
			c, err := compileStringMatch(in[k], false)
			if err != nil {
				return nil, fmt.Errorf("%s[%s]: %w", field, k, err)
			}
			if lower {
				k = strings.ToLower(k)
			}
			res = append(res, keyMatch{key: k, m: c})
		}
		return res, nil
	}
	if out.headers, err = many("headers", m.GetHeaders(), true); err != nil {
		return out, err
	}
	if out.withoutHeaders, err = many("withoutHeaders", m.GetWithoutHeaders(), true); err != nil {
		return out, err
	}
	if out.query, err = many("queryParams", m.GetQueryParams(), false); err != nil {
		return out, err
	}
	out.port = m.GetPort()
	out.sourceNamespace = m.GetSourceNamespace()
	out.sourceLabels = m.GetSourceLabels()
	return out, nil
}

func (m *matcher) match(r *Request) bool {
	if m.skip {
		return false
	}
	if m.uri != nil && !m.uri.match(r.Path) {
		return false
	}
	if m.scheme != nil && !m.scheme.match(r.Scheme) {
		return false
	}
	if m.method != nil && !m.method.match(r.Method) {
		return false
	}
	if m.authority != nil && !m.authority.match(r.Authority) {
		return false
	}
	for _, h := range m.headers {
		v, ok := headerValue(r.Header, h.key)
		if !ok || !h.m.match(v) {
			return false
		}
	}
	for _, h := range m.withoutHeaders {
		if v, ok := headerValue(r.Header, h.key); ok && h.m.match(v) {
			return false
		}
	}
	for _, q := range m.query {
		vs, ok := r.Query[q.key]
		if !ok || len(vs) == 0 || !q.m.match(vs[0]) {
			return false
		}
	}
	if m.port != 0 && m.port != r.Port {
		return false
	}
	if m.sourceNamespace != "" && m.sourceNamespace != r.SourceNamespace {
		return false
	}
	for k, v := range m.sourceLabels {
		if r.SourceLabels[k] != v {
			return false
		}
	}
	return true
}

// headerValue joins repeated headers as Envoy's header map coalesces them
// before matching: with "," in general, but Cookie headers with "; " (RFC
// 6265's own separator), so a cookie regex such as
// ^(.*;\s*)?name=v1(;.*)?$ matches a cookie sent on its own Cookie line.
func headerValue(h http.Header, name string) (string, bool) {
	vs := h.Values(name)
	if len(vs) == 0 {
		return "", false
	}
	sep := ","
	if strings.EqualFold(name, "cookie") {
		sep = "; "
	}
	return strings.Join(vs, sep), true
}
