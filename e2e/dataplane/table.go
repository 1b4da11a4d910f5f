package dataplane

import (
	"fmt"
	"net/http"
	"sort"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
)

// Rand is the randomness routing draws on; *math/rand/v2.Rand fits. Callers
// serialise access when it is shared.
type Rand interface {
	IntN(n int) int
	Float64() float64
}

// Response flags, as Envoy spells them in istio_requests_total.
const (
	FlagNone              = "-"
	FlagNoRoute           = "NR" // no VirtualService route (or Service) for the request
	FlagNoHealthyUpstream = "UH" // the destination has no Ready pod with a backend
	FlagNoCluster         = "NC" // the route names a subset no DestinationRule defines
	FlagUpstreamFailure   = "UF" // the backend refused or dropped the connection
	FlagUpstreamTimeout   = "UT" // the route's timeout expired
)

// Target is a route destination: a Service host and an optional subset.
type Target struct {
	Host    string // FQDN
	Subset  string
	Service ServiceRef
}

type destination struct {
	Target
	weight   int32
	backends []Backend
	noSubset bool           // subset named but not defined by any DestinationRule
	headers  *HeaderRewrite // the route's and this destination's header operations
	// invalid says why a Gateway API backendRef cannot be used (no such
	// Service, another kind, ...): its share of requests answers 500.
	invalid string
	mirrors []mirror // a Gateway API backendRef's own RequestMirror filters
}

type mirror struct {
	destination
	percent float64
}

type route struct {
	vs, name string
	matches  []matcher
	dests    []destination
	total    int
	mirrors  []mirror
	timeout  time.Duration
	problems []string // what was ignored but did not void the route
	// unroutable says why every request this Gateway API rule matches
	// answers 500 (no backendRefs, a filter the stand-in does not support).
	unroutable string
}

type hostEntry struct {
	pattern string // FQDN or wildcard
	vs      string // namespace/name
	routes  []*route
}

// Table is an immutable routing table built from a Snapshot. It is safe
// for concurrent use.
type Table struct {
	entries  []hostEntry            // in precedence order
	services map[string]destination // FQDN → whole-Service destination
	versions map[string]string      // VirtualService namespace/name → resourceVersion
	subsets  map[string][]Backend   // FQDN "|" subset → Ready backends
	gateway  gatewayTable           // HTTPRoutes and GRPCRoutes
	// Problems lists what could not be honoured (bad regex, missing subset,
	// pods without a backend annotation), for logs and tests.
	Problems []string
}

// Decision is where one request goes.
type Decision struct {
	Host           string // the request's FQDN
	VirtualService string // namespace/name, empty when routed to a bare Service
	// HTTPRoute or GRPCRoute is the namespace/name of the Gateway API route
	// that routed the request; Route is then its rule's name (or "").
	HTTPRoute, GRPCRoute string
	Route                string
	Target               Target
	Backend              *Backend // nil unless Flag is FlagNone
	Flag                 string
	Mirrors              []MirrorDecision
	Timeout              time.Duration
	// Headers are the route's and the drawn destination's header
	// operations; nil when there are none.
	Headers *HeaderRewrite
	// DirectStatus, when not 0, is the status the proxy answers itself
	// (Flag stays FlagNone, as Envoy flags no direct response): 500 for a
	// Gateway API rule or backendRef that cannot be routed.
	DirectStatus int
}

// MirrorDecision is a copy of the request to send and forget.
type MirrorDecision struct {
	Target  Target
	Backend Backend
}

// Build compiles a Snapshot into a Table. It never fails: what it cannot
// honour is listed in Table.Problems and behaves as Envoy would (a route
// with a bad match never matches; an undefined subset answers 503 NC).
func Build(s Snapshot) *Table {
	t := &Table{services: map[string]destination{}, versions: map[string]string{}, subsets: map[string][]Backend{}}
	svcs := map[string]*corev1.Service{}
	for _, svc := range s.Services {
		fqdn := svc.Name + "." + svc.Namespace + "." + ClusterDomain
		svcs[fqdn] = svc
		b, problems := backendsFor(svc, nil, s.Pods)
		t.Problems = append(t.Problems, problems...)
		t.services[fqdn] = destination{Target: Target{Host: fqdn, Service: ServiceRef{Name: svc.Name, Namespace: svc.Namespace}}, weight: 100, backends: b}
	}
	drs := append([]DestinationRule(nil), s.DestinationRules...)
	sort.SliceStable(drs, func(i, j int) bool {
		return older(drs[i].Created, drs[i].Namespace+"/"+drs[i].Name, drs[j].Created, drs[j].Namespace+"/"+drs[j].Name)
	})
	for _, dr := range drs {
		host := FQDN(dr.Spec.GetHost(), dr.Namespace)
		for _, ss := range dr.Spec.GetSubsets() {
			if _, seen := t.subsets[host+"|"+ss.GetName()]; !seen {
				t.subsets[host+"|"+ss.GetName()], _ = backendsFor(svcs[host], ss.GetLabels(), s.Pods)
			}
		}
	}
	subsets := func(host string) (map[string]map[string]string, bool) {
		for _, dr := range drs {
			if FQDN(dr.Spec.GetHost(), dr.Namespace) != host {
				continue
			}
			out := map[string]map[string]string{}
			for _, ss := range dr.Spec.GetSubsets() {
				l := ss.GetLabels()
				if l == nil {
					l = map[string]string{}
				}
				out[ss.GetName()] = l
			}
			return out, true
		}
		return nil, false
	}
	resolve := func(d *networking.Destination, ns string, weight int32) destination {
		host := FQDN(d.GetHost(), ns)
		out := destination{Target: Target{Host: host, Subset: d.GetSubset()}, weight: weight}
		ref, _ := ParseServiceFQDN(host)
		out.Service = ref
		svc := svcs[host]
		if svc == nil {
			t.Problems = append(t.Problems, fmt.Sprintf("destination host %s: no such Service", host))
			return out
		}
		if d.GetSubset() == "" {
			out.backends = t.services[host].backends
			return out
		}
		ss, ok := subsets(host)
		labels, found := ss[d.GetSubset()]
		if !ok || !found {
			t.Problems = append(t.Problems, fmt.Sprintf("destination %s subset %s: no DestinationRule defines it", host, d.GetSubset()))
			out.noSubset = true
			return out
		}
		out.backends, _ = backendsFor(svc, labels, s.Pods)
		return out
	}

	vss := append([]VirtualService(nil), s.VirtualServices...)
	sort.SliceStable(vss, func(i, j int) bool {
		return older(vss[i].Created, vss[i].Namespace+"/"+vss[i].Name, vss[j].Created, vss[j].Namespace+"/"+vss[j].Name)
	})
	for _, vs := range vss {
		key := vs.Namespace + "/" + vs.Name
		t.versions[key] = vs.ResourceVersion
		if !appliesToMesh(vs.Spec.GetGateways()) {
			continue
		}
		routes := make([]*route, 0, len(vs.Spec.GetHttp()))
		for i, hr := range vs.Spec.GetHttp() {
			r, err := compileRoute(hr, vs.Namespace, resolve)
			if err != nil {
				t.Problems = append(t.Problems, fmt.Sprintf("VirtualService %s http[%d]: %v", key, i, err))
				continue
			}
			r.vs = key
			for _, p := range r.problems {
				t.Problems = append(t.Problems, fmt.Sprintf("VirtualService %s http[%d]: %s", key, i, p))
			}
			routes = append(routes, r)
		}
		for _, h := range vs.Spec.GetHosts() {
			t.entries = append(t.entries, hostEntry{pattern: FQDN(h, vs.Namespace), vs: key, routes: routes})
		}
	}
	// Exact hosts win over wildcards, longer wildcards over shorter ones;
	// among equals the oldest VirtualService wins (the sort is stable).
	sort.SliceStable(t.entries, func(i, j int) bool { return specificity(t.entries[i].pattern) > specificity(t.entries[j].pattern) })
	t.buildGateway(s, svcs)
	return t
}

func compileRoute(hr *networking.HTTPRoute, ns string, resolve func(*networking.Destination, string, int32) destination) (*route, error) {
	r := &route{name: hr.GetName()}
	for i, m := range hr.GetMatch() {
		c, err := compileMatch(m)
		if err != nil {
			return nil, fmt.Errorf("match[%d].%w", i, err)
		}
		r.matches = append(r.matches, c)
	}
	if len(hr.GetRoute()) == 0 {
		return nil, fmt.Errorf("route: no destinations (redirect, directResponse and delegate are not supported by the stand-in)")
	}
	routeOps, problems := compileHeaders(hr.GetHeaders())
	r.problems = append(r.problems, problems...)
	for i, rd := range hr.GetRoute() {
		w := rd.GetWeight()
		if len(hr.GetRoute()) == 1 && w == 0 {
			w = 100 // a lone destination takes everything
		}
		if w < 0 {
			return nil, fmt.Errorf("route weight %d: weights must be 0..100", w)
		}
		dest := resolve(rd.GetDestination(), ns, w)
		destOps, problems := compileHeaders(rd.GetHeaders())
		for _, p := range problems {
			r.problems = append(r.problems, fmt.Sprintf("route[%d].%s", i, p))
		}
		dest.headers = rewriteFor(routeOps, destOps, len(hr.GetRoute()) == 1)
		r.dests = append(r.dests, dest)
		r.total += int(w)
	}
	if r.total == 0 {
		return nil, fmt.Errorf("route: every weight is 0; give at least one destination a weight")
	}
	if hr.GetMirror() != nil {
		pct := 100.0
		// Older VirtualServices still carry the deprecated mirror_percent;
		// Istio honours it, so the stand-in does too.
		//lint:ignore SA1019 see above
		legacy := hr.GetMirrorPercent()
		if p := hr.GetMirrorPercentage(); p != nil {
			pct = p.GetValue()
		} else if legacy != nil {
			pct = float64(legacy.GetValue())
		}
		r.mirrors = append(r.mirrors, mirror{destination: resolve(hr.GetMirror(), ns, 0), percent: pct})
	}
	for _, mp := range hr.GetMirrors() {
		pct := 100.0
		if p := mp.GetPercentage(); p != nil {
			pct = p.GetValue()
		}
		r.mirrors = append(r.mirrors, mirror{destination: resolve(mp.GetDestination(), ns, 0), percent: pct})
	}
	if d := hr.GetTimeout(); d != nil {
		r.timeout = d.AsDuration()
	}
	return r, nil
}

func appliesToMesh(gws []string) bool {
	if len(gws) == 0 {
		return true
	}
	for _, g := range gws {
		if g == MeshGateway {
			return true
		}
	}
	return false
}

func specificity(pattern string) int {
	if len(pattern) > 0 && pattern[0] == '*' {
		return len(pattern) - 1
	}
	return 1 << 20
}

func older(ti time.Time, ki string, tj time.Time, kj string) bool {
	if !ti.Equal(tj) {
		return ti.Before(tj)
	}
	return ki < kj
}

// VirtualServiceVersion returns the resourceVersion of the VirtualService
// the table was built from, so a test can wait until the proxy has seen an
// update it made.
func (t *Table) VirtualServiceVersion(namespace, name string) (string, bool) {
	v, ok := t.versions[namespace+"/"+name]
	return v, ok
}

// Backends are the Ready backends of a Service host (an FQDN) and subset
// ("" for the whole Service) as this table routes to them; a test waits on
// it until pods it created are visible to the proxy.
func (t *Table) Backends(host, subset string) []Backend {
	if subset == "" {
		return t.services[host].backends
	}
	return t.subsets[host+"|"+subset]
}

// Route decides where req goes: the first VirtualService route whose match
// holds, one destination drawn by weight, one Ready backend of it drawn
// uniformly, and the mirrors whose percentage comes up. A host with no
// VirtualService goes to its Service's pods, as in a mesh. HTTPRoutes and
// GRPCRoutes attached to the host come first (see gatewayTable.route).
func (t *Table) Route(req *Request, rnd Rand) Decision {
	d := Decision{Host: req.Host, Flag: FlagNone}
	if t.gateway.route(req, rnd, &d) {
		return d
	}
	for i := range t.entries {
		e := &t.entries[i]
		if !hostMatches(e.pattern, req.Host) {
			continue
		}
		d.VirtualService = e.vs
		for _, r := range e.routes {
			if !r.matchesRequest(req) {
				continue
			}
			r.decide(&d, rnd)
			return d
		}
		d.Flag = FlagNoRoute
		return d
	}
	if svc, ok := t.services[req.Host]; ok {
		pick(&d, &svc, rnd)
		return d
	}
	d.Flag = FlagNoRoute
	return d
}

// decide fills d from a route whose match held: one destination drawn by
// weight, one of its Ready backends, and the mirrors (the route's, then the
// destination's) whose percentage comes up.
func (r *route) decide(d *Decision, rnd Rand) {
	d.Route, d.Timeout = r.name, r.timeout
	if r.unroutable != "" || r.total == 0 {
		d.DirectStatus = http.StatusInternalServerError
		return
	}
	dest := &r.dests[pickWeighted(r.dests, r.total, rnd)]
	pick(d, dest, rnd)
	if d.DirectStatus != 0 {
		return
	}
	for _, ms := range [][]mirror{r.mirrors, dest.mirrors} {
		for _, m := range ms {
			if m.percent <= 0 || (m.percent < 100 && rnd.Float64()*100 >= m.percent) {
				continue
			}
			if len(m.backends) > 0 {
				d.Mirrors = append(d.Mirrors, MirrorDecision{Target: m.Target, Backend: m.backends[rnd.IntN(len(m.backends))]})
			}
		}
	}
}

func pick(d *Decision, dest *destination, rnd Rand) {
	d.Target, d.Headers = dest.Target, dest.headers
	switch {
	case dest.invalid != "":
		d.DirectStatus = http.StatusInternalServerError
	case dest.noSubset:
		d.Flag = FlagNoCluster
	case len(dest.backends) == 0:
		d.Flag = FlagNoHealthyUpstream
	default:
		b := dest.backends[rnd.IntN(len(dest.backends))]
		d.Backend = &b
	}
}

func (r *route) matchesRequest(req *Request) bool {
	if len(r.matches) == 0 {
		return true
	}
	for i := range r.matches {
		if r.matches[i].match(req) {
			return true
		}
	}
	return false
}

// pickWeighted draws an index with probability weight/total.
func pickWeighted(ds []destination, total int, rnd Rand) int {
	if len(ds) == 1 {
		return 0
	}
	n := rnd.IntN(total)
	for i, d := range ds {
		n -= int(d.weight)
		if n < 0 {
			return i
		}
	}
	return len(ds) - 1
}
