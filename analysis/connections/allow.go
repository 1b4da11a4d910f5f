package connections

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrAddressNotAllowed: a template names a provider address that the
// controller may not query (Config.AllowedAddresses).
var ErrAddressNotAllowed = errors.New("provider address not allowed")

// Allowlist says which addresses templates may name besides the
// controller's own Prometheus. Its entries are either
//
//   - host:port (no scheme): any http(s) address at that host and port,
//     with any path; the host is compared case-insensitively, the port
//     must be written (http://mimir:8080 matches mimir:8080, http://mimir
//     does not);
//   - a URL scheme://host[:port][/path]: addresses with that scheme, host
//     and port whose path is the entry's path or lies under it, one
//     segment at a time (https://mimir:8080/prometheus matches
//     https://mimir:8080/prometheus/team-a, not .../prometheus-other).
//
// The zero Allowlist allows only the controller's own address.
type Allowlist struct {
	global  *url.URL
	entries []allowEntry
}

type allowEntry struct {
	scheme string // "" for a host:port entry
	host   string
	path   string // without a trailing slash
}

// NewAllowlist checks entries (as written in --prometheus-allowed-addresses)
// and returns the allowlist; global is the controller's own address, always
// allowed.
func NewAllowlist(global string, entries []string) (Allowlist, error) {
	a := Allowlist{}
	if global != "" {
		if u, err := url.Parse(global); err == nil {
			a.global = u
		}
	}
	for _, raw := range entries {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		if !strings.Contains(e, "://") {
			host, port, err := splitHostPort(e)
			if err != nil || strings.ContainsAny(e, "/?#@") {
				return Allowlist{}, fmt.Errorf("allowed address %q: want host:port (mimir.monitoring:8080) or a URL (https://mimir.monitoring:8080/prometheus)", raw)
			}
			a.entries = append(a.entries, allowEntry{host: strings.ToLower(host + ":" + port)})
			continue
		}
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return Allowlist{}, fmt.Errorf("allowed address %q: want an http(s) URL with a host and no credentials, query or fragment (https://mimir.monitoring:8080/prometheus), or host:port", raw)
		}
		a.entries = append(a.entries, allowEntry{scheme: u.Scheme, host: strings.ToLower(u.Host), path: strings.TrimSuffix(u.Path, "/")})
	}
	return a, nil
}

func splitHostPort(s string) (string, string, error) {
	i := strings.LastIndex(s, ":")
	if i <= 0 || i == len(s)-1 {
		return "", "", errors.New("no port")
	}
	return s[:i], s[i+1:], nil
}

// Allows reports whether a template may send queries to address.
func (a Allowlist) Allows(address string) bool {
	u, err := url.Parse(address)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	host, path := strings.ToLower(u.Host), strings.TrimSuffix(u.Path, "/")
	if g := a.global; g != nil && g.Scheme == u.Scheme && strings.ToLower(g.Host) == host && strings.TrimSuffix(g.Path, "/") == path {
		return true
	}
	for _, e := range a.entries {
		if e.host != host {
			continue
		}
		if e.scheme == "" {
			return true
		}
		if e.scheme == u.Scheme && (path == e.path || strings.HasPrefix(path, e.path+"/")) {
			return true
		}
	}
	return false
}

// Check is nil when address is allowed, else an error naming the address
// and the flag and Helm value that allow it; the caller adds the
// template's name.
func (a Allowlist) Check(address string) error {
	if a.Allows(address) {
		return nil
	}
	allowed := "none besides the controller's own Prometheus"
	if len(a.entries) > 0 {
		parts := make([]string, len(a.entries))
		for i, e := range a.entries {
			parts[i] = e.String()
		}
		allowed = strings.Join(parts, ", ")
	}
	return fmt.Errorf("spec.provider.address %q: %w: the controller queries only its own Prometheus and the addresses of --prometheus-allowed-addresses (Helm value prometheus.allowedAddresses; now: %s): add this address there, or remove spec.provider.address to use the controller's Prometheus", address, ErrAddressNotAllowed, allowed)
}

func (e allowEntry) String() string {
	if e.scheme == "" {
		return e.host
	}
	return e.scheme + "://" + e.host + e.path
}
