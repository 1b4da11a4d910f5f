// Package dataplane is the end-to-end rig's stand-in for Istio's sidecars: an
// HTTP proxy that reads VirtualServices, DestinationRules, Services and Pods
// from the API server and routes each request the way Envoy would for the
// features Fulcrum relies on (route matches, weighted destinations, mirrors,
// timeouts, request and response header operations), exporting istio_requests_total and
// istio_request_duration_milliseconds with Istio's label names.
//
// kwok pods run nothing, so a pod names the local process that serves it with
// the annotation fulcrum.dev/backend ("127.0.0.1:PORT"). Only Ready pods with
// that annotation receive traffic, so readiness gating shows up in traffic.
//
// It also routes by the Gateway API (gateway.networking.k8s.io/v1), as
// Istio's ambient waypoints and GAMMA meshes do. Supported: HTTPRoutes and
// GRPCRoutes attached to a Service (parentRef group "", kind Service: requests
// for that Service's host; producer and consumer routes) or, by hostname, to a
// Gateway; matches on path (Exact, PathPrefix, RegularExpression), headers,
// query parameters and method, or on gRPC service and method, ordered by the
// spec's precedence; backendRefs to Services with weights (a Service's Ready
// pods are its backends; metrics name the backend Service in
// destination_service_name); RequestHeaderModifier, ResponseHeaderModifier and
// RequestMirror filters on rules and backendRefs; request timeouts. Invalid
// backendRefs, rules without backends and all-zero weights answer 500 (gRPC
// UNAVAILABLE), as the spec says. Not supported: RequestRedirect, URLRewrite,
// CORS, ExternalAuth and ExtensionRef filters (the rule answers 500), retries,
// session persistence, ReferenceGrants (a cross-namespace backendRef is
// refused), Gateway objects (listeners, ports, allowedRoutes are not read),
// route status, and the other route kinds (TCPRoute, TLSRoute, UDPRoute). An
// HTTPRoute and a VirtualService claiming the same host: the HTTPRoute wins.
// Listeners speak HTTP/1.1 and h2c, and gRPC calls are carried over h2c with
// streaming and trailers (see grpc.go).
//
// The package is split into a pure part (Build turns a Snapshot of objects
// into a Table; Table.Route turns a request into a Decision) and the I/O
// around it (Proxy forwards requests, Watch keeps the Table current).
package dataplane

import (
	"strings"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// BackendAnnotation on a pod names the loopback address (host:port) of the
// process that serves the pod's traffic.
const BackendAnnotation = "fulcrum.dev/backend"

// ClusterDomain is the DNS suffix of Service hosts.
const ClusterDomain = "svc.cluster.local"

// MeshGateway is the reserved gateway name for sidecars; a VirtualService
// with gateways set applies to this proxy only when the list names it.
const MeshGateway = "mesh"

// VirtualService is the part of a networking.istio.io VirtualService (any
// served version: v1, v1beta1 and v1alpha3 share one spec) the proxy reads.
type VirtualService struct {
	Namespace, Name, ResourceVersion string
	Created                          time.Time
	Spec                             *networking.VirtualService
}

// DestinationRule is the part of a DestinationRule the proxy reads.
type DestinationRule struct {
	Namespace, Name string
	Created         time.Time
	Spec            *networking.DestinationRule
}

// Snapshot is every object routing depends on, as read from the API server.
type Snapshot struct {
	VirtualServices  []VirtualService
	DestinationRules []DestinationRule
	Services         []*corev1.Service
	Pods             []*corev1.Pod
	// HTTPRoutes and GRPCRoutes are gateway.networking.k8s.io/v1 routes
	// (see gatewayTable for what the stand-in honours). Build only reads them.
	HTTPRoutes []*gatewayv1.HTTPRoute
	GRPCRoutes []*gatewayv1.GRPCRoute
}

// FQDN expands a host as written in a VirtualService, a DestinationRule or a
// request's Host header into a fully qualified Service name, relative to
// namespace ns: "fraud" → "fraud.ns.svc.cluster.local", "fraud.ml" →
// "fraud.ml.svc.cluster.local". Wildcards and other names stay as they are
// (lower-cased, without a port or trailing dot).
func FQDN(host, ns string) string {
	host = strings.ToLower(strings.TrimSuffix(stripPort(host), "."))
	if host == "" || strings.HasPrefix(host, "*") {
		return host
	}
	parts := strings.Split(host, ".")
	switch {
	case len(parts) == 1:
		return host + "." + ns + "." + ClusterDomain
	case len(parts) == 2:
		return host + "." + ClusterDomain
	case len(parts) == 3 && parts[2] == "svc":
		return host + ".cluster.local"
	}
	return host
}

// ServiceRef is a Kubernetes Service named by a route.
type ServiceRef struct {
	Name, Namespace string
}

// ParseServiceFQDN splits "name.ns.svc.cluster.local" into its Service.
func ParseServiceFQDN(fqdn string) (ServiceRef, bool) {
	rest, ok := strings.CutSuffix(fqdn, "."+ClusterDomain)
	if !ok {
		return ServiceRef{}, false
	}
	name, ns, ok := strings.Cut(rest, ".")
	if !ok || name == "" || ns == "" || strings.Contains(ns, ".") {
		return ServiceRef{}, false
	}
	return ServiceRef{Name: name, Namespace: ns}, true
}

func stripPort(host string) string {
	if strings.HasPrefix(host, "[") { // IPv6 literal
		if i := strings.Index(host, "]"); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[:i], ":") {
		return host[:i]
	}
	return host
}

// hostMatches reports whether a VirtualService host (FQDN or wildcard)
// covers the request host (FQDN).
func hostMatches(pattern, host string) bool {
	if pattern == "*" {
		return true
	}
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return strings.HasSuffix(host, suffix)
	}
	return pattern == host
}
