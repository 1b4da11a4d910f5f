package gates

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Hosts says which URLs an HTTP gate may call. Whoever may create a
// ModelRollout chooses its gates' URLs, and the controller calls them with
// its own network identity: without a limit, a gate could reach the cloud's
// metadata service, the API server or another team's Services. By default
// a gate may call Services of its rollout's own namespace only
// (NAME.NAMESPACE.svc and NAME.NAMESPACE.svc.CLUSTER-DOMAIN, any port);
// Allowed adds more (fulcrum --gate-allowed-hosts).
type Hosts struct {
	// Allowed are extra hosts: an exact host ("hooks.example.com", or
	// "10.0.0.7" for an IP, which is never matched by a wildcard), a host
	// with a port ("hooks.example.com:8443"), a wildcard for any subdomain
	// ("*.example.com"), "*.svc" for every namespace's Services, or "*"
	// for any host at all.
	Allowed []string
	// ClusterDomain is the cluster's DNS domain; cluster.local when empty.
	ClusterDomain string
}

// CheckPattern returns why an entry of Allowed is malformed, or nil.
func CheckPattern(p string) error {
	switch {
	case p == "*":
		return nil
	case p == "" || strings.ContainsAny(p, "/?#@ "):
		return fmt.Errorf("%q is not a host: give a host, host:port, *.domain or *", p)
	case strings.Contains(p[1:], "*") || (strings.HasPrefix(p, "*") && !strings.HasPrefix(p, "*.")):
		return fmt.Errorf("%q: a wildcard may only start a pattern, as in *.example.com", p)
	}
	return nil
}

// Check returns why url may not be called by a gate of a rollout in
// namespace, or nil.
func (h Hosts) Check(raw, namespace string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%q is not an http or https URL", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q carries credentials in the URL: send them in a header from a Secret (spec.gates[].http.headers[].valueFrom)", raw)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	domain := h.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	if name, ok := strings.CutSuffix(host, "."+namespace+".svc"); ok && isLabel(name) {
		return nil
	}
	if name, ok := strings.CutSuffix(host, "."+namespace+".svc."+domain); ok && isLabel(name) {
		return nil
	}
	ip := net.ParseIP(host) != nil
	for _, p := range h.Allowed {
		p = strings.ToLower(p)
		switch {
		case p == "*":
			return nil
		case strings.HasPrefix(p, "*."):
			suffix := p[1:]
			if !ip && strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
				return nil
			}
		case strings.Contains(p, ":") && net.ParseIP(p) == nil:
			if host+":"+port == p || net.JoinHostPort(host, port) == p {
				return nil
			}
		case host == strings.Trim(p, "[]"):
			return nil
		}
	}
	return fmt.Errorf("%s is not a Service of namespace %s (NAME.%s.svc) nor a host fulcrum's --gate-allowed-hosts allows: the controller calls only those, so that a ModelRollout cannot make it reach other addresses",
		host, namespace, namespace)
}

func isLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
