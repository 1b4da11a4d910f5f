package istio

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultClusterDomain is the DNS domain of a Kubernetes cluster unless its
// kubelets are started with another --cluster-domain.
const DefaultClusterDomain = "cluster.local"

// ClusterDomain reads service hosts as Istio does in a cluster whose DNS
// domain it is; "" means DefaultClusterDomain. It is the one place Fulcrum
// decides what host a VirtualService destination, a mirror, a
// DestinationRule or a warm-up URL names, so the router, the admission
// webhook and the warm-up check cannot disagree.
//
// Istio's rule (pilot's ResolveShortnameToFQDN) is the reference: a name
// without a dot is a Service of the rule's namespace and becomes
// name.<namespace>.svc.<domain>; every other name is taken as written.
// "fraud.ml" and "fraud.ml.svc" are therefore not the Service fraud of
// namespace ml to Istio, although DNS inside a pod resolves them to it:
// a DestinationRule for one does not apply to a route to the other.
type ClusterDomain string

func (d ClusterDomain) domain() string {
	if d == "" {
		return DefaultClusterDomain
	}
	return strings.ToLower(strings.TrimSuffix(string(d), "."))
}

// String is the domain, with the default filled in.
func (d ClusterDomain) String() string { return d.domain() }

// FQDN is the fully qualified host that host, written in a rule of
// namespace, names. Case is folded (DNS names are case-insensitive) and a
// trailing dot is dropped; a name with a trailing dot is absolute, so it is
// never expanded. Wildcards and IP addresses stay as they are.
func (d ClusterDomain) FQDN(host, namespace string) string {
	h := strings.ToLower(strings.TrimSpace(host))
	absolute := strings.HasSuffix(h, ".")
	h = strings.TrimSuffix(h, ".")
	if h == "" || h == "*" || absolute || strings.Contains(h, ".") {
		return h
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return h // an IPv6 address has no dot either
	}
	return h + "." + strings.ToLower(namespace) + ".svc." + d.domain()
}

// Host is a host as a rule writes it, with the namespace of that rule:
// short names are relative to the rule's namespace, not the Service's.
type Host struct {
	Name, Namespace string
}

// Same reports whether a and b name the same host once Istio has expanded
// them. An empty host names nothing, so it is the same as nothing.
func (d ClusterDomain) Same(a, b Host) bool {
	fa := d.FQDN(a.Name, a.Namespace)
	return fa != "" && fa == d.FQDN(b.Name, b.Namespace)
}

// Service is the name of the Kubernetes Service that host, written in a
// rule of namespace, names in that namespace: "fraud" or
// "fraud.<namespace>.svc.<domain>". It is "" for any other host: a Service
// of another namespace, an external name, a wildcard, or a spelling Istio
// does not expand ("fraud.ml").
func (d ClusterDomain) Service(host, namespace string) string {
	name, ok := strings.CutSuffix(d.FQDN(host, namespace), "."+strings.ToLower(namespace)+".svc."+d.domain())
	if !ok || len(validation.IsDNS1123Label(name)) > 0 {
		return "" // a wildcard, or a name of a subdomain: no Service
	}
	return name
}

// DNSNames are the names a client can put in a URL to reach host (written
// in a rule of namespace): its FQDN and, for a Service, the shorter names
// the pod's DNS search path and the sidecar's virtual hosts accept ("fraud",
// "fraud.ml", "fraud.ml.svc"). Unlike rule hosts, URL hosts are resolved by
// DNS, so every spelling reaches the Service.
func (d ClusterDomain) DNSNames(host, namespace string) []string {
	fqdn := d.FQDN(host, namespace)
	if fqdn == "" {
		return nil
	}
	out := []string{fqdn}
	if svc := d.Service(host, namespace); svc != "" {
		ns := strings.ToLower(namespace)
		out = append(out, svc, svc+"."+ns, svc+"."+ns+".svc")
	}
	return out
}

// Check returns an error, naming the fix, when d is not a DNS domain: a
// typo in --cluster-domain would otherwise make every short host miss.
func (d ClusterDomain) Check() error {
	dom := d.domain()
	if errs := validation.IsDNS1123Subdomain(dom); len(errs) > 0 {
		return fmt.Errorf("%q is not a DNS domain (%s): give the cluster's DNS domain, the kubelet's --cluster-domain, such as %s", string(d), strings.Join(errs, "; "), DefaultClusterDomain)
	}
	if strings.HasPrefix(dom, "svc.") || strings.HasSuffix(dom, ".svc") || dom == "svc" {
		return fmt.Errorf("%q includes the svc label: give the domain after it (%s in fraud.ml.svc.%s)", string(d), DefaultClusterDomain, DefaultClusterDomain)
	}
	return nil
}
