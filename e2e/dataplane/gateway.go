package dataplane

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Kinds of the Gateway API routes the stand-in reads.
const (
	KindHTTPRoute = "HTTPRoute"
	KindGRPCRoute = "GRPCRoute"
)

// gatewayTable routes by HTTPRoutes and GRPCRoutes. Their rules compile into
// the same routes as a VirtualService's (matchers, weighted destinations,
// header rewrites, mirrors); what differs is what they attach to and the
// order they are tried in.
//
// A route attaches to a Service through a parentRef of group "" and kind
// Service, as GAMMA (Istio's ambient waypoints and sidecars) reads them: it
// routes requests addressed to that Service's host, in any of the forms
// FQDN expands. Its hostnames are ignored, as GAMMA says, and so are the
// parentRef's port and sectionName (the stand-in's listeners have no Service
// ports). A route in the Service's namespace is a producer route; one in
// another namespace is a consumer route and applies only to callers in its
// own namespace (Config.Source.Namespace), which then ignore the Service's
// producer routes.
//
// A route attached to a Gateway applies to requests whose host matches one
// of its hostnames (exact, or "*.example.com" for any name below
// example.com; the most specific hostname wins). The stand-in reads no
// Gateway: it acts as every Gateway's one listener, so listener hostnames,
// ports, sectionNames and allowedRoutes are not checked, and a Gateway route
// without hostnames is ignored (reported in Table.Problems).
//
// If both a VirtualService and a Gateway API route claim a host, the
// Gateway API route wins: Table.Route asks this table first. Istio does not
// promise what happens when both exist, so the stand-in picks the reading
// that lets a test (or a rollout moving from VirtualServices to HTTPRoutes)
// switch routing by creating the HTTPRoute, without deleting the
// VirtualService first.
//
// Across every route attached to one parent the rules are tried by the
// spec's precedence (see httpPrecedence and grpcPrecedence), then the oldest
// route, then namespace/name, then rule and match order. HTTPRoutes and
// GRPCRoutes are not merged: on a parent both attach to, the kind of the
// oldest route wins and routes of the other kind are ignored (reported).
type gatewayTable struct {
	services  map[string]*gwParent // Service FQDN → routes attached to it
	hostnames []gwHostname         // Gateway routes by hostname, most specific first
	versions  map[string]string    // kind/namespace/name → resourceVersion
}

// gwParent is the routing of one Service.
type gwParent struct {
	producer  *gwRules
	consumers map[string]*gwRules // by the namespace the routes are in
}

type gwHostname struct {
	pattern string
	rules   *gwRules
}

// gwRules are the rule matches of every route attached to one parent, in
// precedence order.
type gwRules struct {
	kind    string // KindHTTPRoute or KindGRPCRoute
	entries []gwEntry
}

// gwEntry is one match of one rule: Gateway API orders matches, not rules.
type gwEntry struct {
	m     *matcher
	r     *route // the rule: destinations, filters, timeout
	route string // namespace/name
	prec  [5]int // higher first, compared in order
}

// gwRoute is an HTTPRoute or a GRPCRoute compiled, before attachment.
type gwRoute struct {
	kind, namespace, name string
	created               time.Time
	parents               []gatewayv1.ParentReference
	hostnames             []gatewayv1.Hostname
	entries               []gwEntry
}

func (r *gwRoute) key() string { return r.namespace + "/" + r.name }

// gwRule is a rule of either kind, as compileRule reads it.
type gwRule struct {
	name     *gatewayv1.SectionName
	filters  []gwFilter
	backends []gwBackendRef
	timeout  time.Duration
}

type gwBackendRef struct {
	ref     gatewayv1.BackendRef
	filters []gwFilter
}

// gwFilter is an HTTPRouteFilter or a GRPCRouteFilter: the fields the
// stand-in honours, and the type to name the others.
type gwFilter struct {
	typ               string
	request, response *gatewayv1.HTTPHeaderFilter
	mirror            *gatewayv1.HTTPRequestMirrorFilter
}

// buildGateway compiles the snapshot's HTTPRoutes and GRPCRoutes; svcs are
// the snapshot's Services by FQDN.
func (t *Table) buildGateway(s Snapshot, svcs map[string]*corev1.Service) {
	g := &t.gateway
	g.services, g.versions = map[string]*gwParent{}, map[string]string{}
	routes := make([]*gwRoute, 0, len(s.HTTPRoutes)+len(s.GRPCRoutes))
	for _, hr := range s.HTTPRoutes {
		g.versions[KindHTTPRoute+"/"+hr.Namespace+"/"+hr.Name] = hr.ResourceVersion
		routes = append(routes, t.compileHTTPRoute(hr, svcs))
	}
	for _, gr := range s.GRPCRoutes {
		g.versions[KindGRPCRoute+"/"+gr.Namespace+"/"+gr.Name] = gr.ResourceVersion
		routes = append(routes, t.compileGRPCRoute(gr, svcs))
	}
	sort.SliceStable(routes, func(i, j int) bool {
		return older(routes[i].created, routes[i].key(), routes[j].created, routes[j].key())
	})
	byHostname := map[string]*gwRules{}
	var all []*gwRules
	for _, r := range routes {
		attached := map[*gwRules]bool{}
		for i, p := range r.parents {
			targets, err := g.parentRules(r, p, svcs, byHostname, &all)
			if err != nil {
				t.Problems = append(t.Problems, fmt.Sprintf("%s %s parentRefs[%d]: %v", r.kind, r.key(), i, err))
				continue
			}
			for _, rules := range targets {
				switch {
				case attached[rules]:
				case rules.kind == "":
					rules.kind = r.kind
				case rules.kind != r.kind:
					t.Problems = append(t.Problems, fmt.Sprintf("%s %s parentRefs[%d]: an older %s is attached to the same parent and the kinds do not merge; ignored", r.kind, r.key(), i, rules.kind))
					continue
				}
				if !attached[rules] {
					attached[rules] = true
					rules.entries = append(rules.entries, r.entries...)
				}
			}
		}
	}
	for _, rules := range all {
		sort.SliceStable(rules.entries, func(i, j int) bool {
			a, b := rules.entries[i].prec, rules.entries[j].prec
			for k := range a {
				if a[k] != b[k] {
					return a[k] > b[k]
				}
			}
			return false
		})
	}
	for h, rules := range byHostname {
		g.hostnames = append(g.hostnames, gwHostname{pattern: h, rules: rules})
	}
	sort.Slice(g.hostnames, func(i, j int) bool {
		si, sj := specificity(g.hostnames[i].pattern), specificity(g.hostnames[j].pattern)
		if si != sj {
			return si > sj
		}
		return g.hostnames[i].pattern < g.hostnames[j].pattern
	})
}

// parentRules returns the rule lists route r attaches to through parentRef
// p, creating them on first use (and adding them to all).
func (g *gatewayTable) parentRules(r *gwRoute, p gatewayv1.ParentReference, svcs map[string]*corev1.Service, byHostname map[string]*gwRules, all *[]*gwRules) ([]*gwRules, error) {
	group, kind := gatewayv1.GroupName, "Gateway"
	if p.Group != nil {
		group = string(*p.Group)
	}
	if p.Kind != nil {
		kind = string(*p.Kind)
	}
	ns := r.namespace
	if p.Namespace != nil && *p.Namespace != "" {
		ns = string(*p.Namespace)
	}
	newRules := func() *gwRules {
		rules := &gwRules{}
		*all = append(*all, rules)
		return rules
	}
	switch {
	case (group == "" || group == "core") && kind == "Service":
		fqdn := string(p.Name) + "." + ns + "." + ClusterDomain
		if svcs[fqdn] == nil {
			return nil, fmt.Errorf("parent Service %s/%s: no such Service", ns, p.Name)
		}
		par := g.services[fqdn]
		if par == nil {
			par = &gwParent{consumers: map[string]*gwRules{}}
			g.services[fqdn] = par
		}
		if ns == r.namespace {
			if par.producer == nil {
				par.producer = newRules()
			}
			return []*gwRules{par.producer}, nil
		}
		c := par.consumers[r.namespace]
		if c == nil {
			c = newRules()
			par.consumers[r.namespace] = c
		}
		return []*gwRules{c}, nil
	case group == gatewayv1.GroupName && kind == "Gateway":
		if len(r.hostnames) == 0 {
			return nil, fmt.Errorf("parent Gateway %s/%s: the stand-in reads no Gateway listeners, so a route attached to a Gateway needs hostnames; ignored", ns, p.Name)
		}
		out := make([]*gwRules, 0, len(r.hostnames))
		for _, h := range r.hostnames {
			key := strings.ToLower(string(h))
			if byHostname[key] == nil {
				byHostname[key] = newRules()
			}
			out = append(out, byHostname[key])
		}
		return out, nil
	}
	return nil, fmt.Errorf("parent %s (group %q) %s: only Services (group \"\") and Gateways can be parents; ignored", kind, group, p.Name)
}

// route routes req by the Gateway API routes attached to its host. It
// returns false when none is, leaving d to VirtualServices; a request no
// rule matches answers 404 NR, as the spec requires.
func (g *gatewayTable) route(req *Request, rnd Rand, d *Decision) bool {
	rules := g.rulesFor(req)
	if rules == nil {
		return false
	}
	for i := range rules.entries {
		e := &rules.entries[i]
		if !e.m.match(req) {
			continue
		}
		if rules.kind == KindGRPCRoute {
			d.GRPCRoute = e.route
		} else {
			d.HTTPRoute = e.route
		}
		e.r.decide(d, rnd)
		return true
	}
	d.Flag = FlagNoRoute
	return true
}

func (g *gatewayTable) rulesFor(req *Request) *gwRules {
	if p := g.services[req.Host]; p != nil {
		if c := p.consumers[req.SourceNamespace]; c != nil && req.SourceNamespace != "" {
			return c
		}
		if p.producer != nil {
			return p.producer
		}
	}
	for _, h := range g.hostnames {
		if hostMatches(h.pattern, req.Host) {
			return h.rules
		}
	}
	return nil
}

// compileRule compiles one rule's filters, backendRefs and timeout into a
// route; problems are prefixed by the caller.
func (t *Table) compileRule(in gwRule, ns string, svcs map[string]*corev1.Service) (*route, []string) {
	r := &route{}
	if in.name != nil {
		r.name = string(*in.name)
	}
	r.timeout = in.timeout
	routeOps, mirrors, unsupported, problems := t.compileFilters(in.filters, ns, svcs, "filters")
	r.mirrors = mirrors
	if unsupported != "" {
		r.unroutable = unsupported
	}
	if len(in.backends) == 0 && r.unroutable == "" {
		r.unroutable = "no backendRefs"
		problems = append(problems, "no backendRefs: every request it matches answers 500")
	}
	for i, b := range in.backends {
		w := int32(1)
		if b.ref.Weight != nil {
			w = *b.ref.Weight
		}
		if w < 0 {
			w = 0
		}
		dest := t.gwBackend(b.ref.BackendObjectReference, ns, svcs)
		dest.weight = w
		if dest.invalid != "" {
			problems = append(problems, fmt.Sprintf("backendRefs[%d]: %s: its share of requests answers 500", i, dest.invalid))
		}
		destOps, destMirrors, unsupported, ps := t.compileFilters(b.filters, ns, svcs, fmt.Sprintf("backendRefs[%d].filters", i))
		problems = append(problems, ps...)
		if unsupported != "" && dest.invalid == "" {
			dest.invalid = unsupported
		}
		dest.mirrors = destMirrors
		dest.headers = rewriteFor(routeOps, destOps, len(in.backends) == 1)
		r.dests = append(r.dests, dest)
		r.total += int(w)
	}
	if len(in.backends) > 0 && r.total == 0 {
		problems = append(problems, "every backendRef has weight 0: every request it matches answers 500")
	}
	return r, problems
}

// gwBackend resolves a backendRef (or a mirror's) to the Ready pods of the
// Service it names. What cannot be resolved is marked invalid, with the
// reason Gateway API's ResolvedRefs condition would give.
func (t *Table) gwBackend(ref gatewayv1.BackendObjectReference, routeNS string, svcs map[string]*corev1.Service) destination {
	group, kind := "", "Service"
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	ns := routeNS
	if ref.Namespace != nil && *ref.Namespace != "" {
		ns = string(*ref.Namespace)
	}
	fqdn := string(ref.Name) + "." + ns + "." + ClusterDomain
	d := destination{Target: Target{Host: fqdn, Service: ServiceRef{Name: string(ref.Name), Namespace: ns}}}
	switch {
	case (group != "" && group != "core") || kind != "Service":
		d.invalid = fmt.Sprintf("%s (group %q) %s/%s: only Services are supported (InvalidKind)", kind, group, ns, ref.Name)
	case ns != routeNS:
		d.invalid = fmt.Sprintf("Service %s/%s: a cross-namespace backendRef needs a ReferenceGrant, which the stand-in does not read (RefNotPermitted)", ns, ref.Name)
	case svcs[fqdn] == nil:
		d.invalid = fmt.Sprintf("Service %s/%s: no such Service (BackendNotFound)", ns, ref.Name)
	default:
		d.backends = t.services[fqdn].backends
	}
	return d
}

// compileFilters compiles one level's (rule or backendRef) filters: header
// modifiers into operations, mirrors into mirror destinations. unsupported
// names the first filter the stand-in cannot apply, which makes the level
// answer 500 rather than route as if the filter were not there.
func (t *Table) compileFilters(fs []gwFilter, ns string, svcs map[string]*corev1.Service, field string) (ops levelOps, mirrors []mirror, unsupported string, problems []string) {
	for i, f := range fs {
		at := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case f.typ == string(gatewayv1.HTTPRouteFilterRequestHeaderModifier) && f.request != nil:
			o, ps := headerFilterOps(f.request, at)
			ops.request = merge(ops.request, o)
			problems = append(problems, ps...)
		case f.typ == string(gatewayv1.HTTPRouteFilterResponseHeaderModifier) && f.response != nil:
			o, ps := headerFilterOps(f.response, at)
			ops.response = merge(ops.response, o)
			problems = append(problems, ps...)
		case f.typ == string(gatewayv1.HTTPRouteFilterRequestMirror) && f.mirror != nil:
			m := mirror{destination: t.gwBackend(f.mirror.BackendRef, ns, svcs), percent: mirrorPercent(f.mirror)}
			if m.invalid != "" {
				problems = append(problems, fmt.Sprintf("%s: mirror %s; not mirrored", at, m.invalid))
				continue
			}
			mirrors = append(mirrors, m)
		default:
			if unsupported == "" {
				unsupported = fmt.Sprintf("%s: filter %s is not supported by the stand-in", at, f.typ)
			}
			problems = append(problems, fmt.Sprintf("%s: filter %s is not supported by the stand-in: requests it applies to answer 500", at, f.typ))
		}
	}
	return ops, mirrors, unsupported, problems
}

// headerFilterOps translates a header modifier: removes first, then sets,
// then adds, as Envoy's header parser applies them. Host cannot be set
// (Envoy would rewrite the authority, which the stand-in does not do).
func headerFilterOps(f *gatewayv1.HTTPHeaderFilter, at string) (HeaderOps, []string) {
	var ops HeaderOps
	var problems []string
	for _, k := range f.Remove {
		if !internalHeader(k) {
			ops.Remove = append(ops.Remove, k)
		}
	}
	for _, part := range []struct {
		field  string
		hs     []gatewayv1.HTTPHeader
		append bool
	}{{"set", f.Set, false}, {"add", f.Add, true}} {
		for _, h := range part.hs {
			if internalHeader(string(h.Name)) {
				problems = append(problems, fmt.Sprintf("%s.%s[%s]: authority rewrites are not supported by the stand-in; ignored", at, part.field, h.Name))
				continue
			}
			ops.Put = append(ops.Put, HeaderPut{Name: string(h.Name), Value: h.Value, Append: part.append})
		}
	}
	return ops, problems
}

// mirrorPercent is a mirror's percent, or its fraction as a percentage
// (denominator 100 when unset); 100 when neither is set.
func mirrorPercent(m *gatewayv1.HTTPRequestMirrorFilter) float64 {
	switch {
	case m.Percent != nil:
		return float64(*m.Percent)
	case m.Fraction != nil:
		den := int32(100)
		if m.Fraction.Denominator != nil && *m.Fraction.Denominator > 0 {
			den = *m.Fraction.Denominator
		}
		return 100 * float64(m.Fraction.Numerator) / float64(den)
	}
	return 100
}

// RouteVersion returns the resourceVersion of the HTTPRoute or GRPCRoute
// (kind KindHTTPRoute or KindGRPCRoute) the table was built from, so a test
// can wait until the proxy has seen an update it made.
func (t *Table) RouteVersion(kind, namespace, name string) (string, bool) {
	v, ok := t.gateway.versions[kind+"/"+namespace+"/"+name]
	return v, ok
}
