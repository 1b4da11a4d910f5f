package dataplane

import (
	"net/http"
	"sort"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// HeaderOps is one Envoy header parser: Remove runs first, then Put in
// order, as Envoy's HeaderParser removes before it adds.
type HeaderOps struct {
	Remove []string
	Put    []HeaderPut
}

// HeaderPut sets (Append false: OVERWRITE_IF_EXISTS_OR_ADD) or adds (Append
// true: APPEND_IF_EXISTS_OR_ADD) one header value.
type HeaderPut struct {
	Name, Value string
	Append      bool
}

// HeaderRewrite is what a route and the destination it drew do to the
// request and to the response, as the parsers Envoy evaluates in order.
//
// Istio (pilot route.go) translates a VirtualService with one destination
// into one Envoy route whose header lists are the route's operations
// followed by the destination's: one parser, so every remove runs first and
// a destination "set" overrides a route "set" of the same header. With two
// or more destinations it puts the destination's operations on the weighted
// cluster, and Envoy's WeightedClusterEntry evaluates the cluster's parser
// before the route's: there a route "set" wins, and a route "remove" also
// removes what the destination added.
type HeaderRewrite struct {
	Request, Response []HeaderOps
}

// ApplyRequest rewrites h as the request headers to send upstream.
func (r *HeaderRewrite) ApplyRequest(h http.Header) { applyAll(r.requestOps(), h) }

// ApplyResponse rewrites h as the response headers to return.
func (r *HeaderRewrite) ApplyResponse(h http.Header) { applyAll(r.responseOps(), h) }

func (r *HeaderRewrite) requestOps() []HeaderOps {
	if r == nil {
		return nil
	}
	return r.Request
}

func (r *HeaderRewrite) responseOps() []HeaderOps {
	if r == nil {
		return nil
	}
	return r.Response
}

func applyAll(ops []HeaderOps, h http.Header) {
	for _, o := range ops {
		for _, k := range o.Remove {
			h.Del(k)
		}
		for _, p := range o.Put {
			if p.Append {
				h.Add(p.Name, p.Value)
			} else {
				h.Set(p.Name, p.Value)
			}
		}
	}
}

// levelOps is one level's (route or destination) compiled operations.
type levelOps struct {
	request, response HeaderOps
}

// compileHeaders translates Headers as Istio's TranslateHeadersOperations
// does: set entries sorted by name, then add entries sorted by name;
// pseudo-headers and Host are dropped (Istio turns a Host set into an
// authority rewrite, which the stand-in does not do, so it is reported).
func compileHeaders(h *networking.Headers) (levelOps, []string) {
	var out levelOps
	var problems []string
	one := func(side string, o *networking.Headers_HeaderOperations) HeaderOps {
		var ops HeaderOps
		for _, part := range []struct {
			field string
			m     map[string]string
		}{{"set", o.GetSet()}, {"add", o.GetAdd()}} {
			names := make([]string, 0, len(part.m))
			for k := range part.m {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				if internalHeader(k) {
					problems = append(problems, "headers."+side+"."+part.field+"["+k+"]: authority rewrites are not supported by the stand-in; ignored")
					continue
				}
				ops.Put = append(ops.Put, HeaderPut{Name: k, Value: part.m[k], Append: part.field == "add"})
			}
		}
		for _, k := range o.GetRemove() {
			if !internalHeader(k) {
				ops.Remove = append(ops.Remove, k)
			}
		}
		return ops
	}
	if h == nil {
		return out, nil
	}
	out.request = one("request", h.GetRequest())
	out.response = one("response", h.GetResponse())
	return out, problems
}

func internalHeader(k string) bool {
	return strings.HasPrefix(k, ":") || strings.EqualFold(k, "host")
}

func (o HeaderOps) empty() bool { return len(o.Remove) == 0 && len(o.Put) == 0 }

func merge(a, b HeaderOps) HeaderOps {
	return HeaderOps{
		Remove: append(append([]string(nil), a.Remove...), b.Remove...),
		Put:    append(append([]HeaderPut(nil), a.Put...), b.Put...),
	}
}

// rewriteFor orders a route's and one destination's operations the way
// Envoy ends up applying them (see HeaderRewrite); nil when there are none.
func rewriteFor(route, dest levelOps, single bool) *HeaderRewrite {
	var out HeaderRewrite
	side := func(r, d HeaderOps) []HeaderOps {
		var ops []HeaderOps
		if single {
			if m := merge(r, d); !m.empty() {
				ops = append(ops, m)
			}
			return ops
		}
		for _, o := range []HeaderOps{d, r} {
			if !o.empty() {
				ops = append(ops, o)
			}
		}
		return ops
	}
	out.Request = side(route.request, dest.request)
	out.Response = side(route.response, dest.response)
	if len(out.Request) == 0 && len(out.Response) == 0 {
		return nil
	}
	return &out
}
