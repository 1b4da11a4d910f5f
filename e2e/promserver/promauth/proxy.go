package promauth

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// Gateway stands in for what users put in front of a shared Prometheus
// (a Mimir, Thanos or Cortex gateway, an auth proxy): it wants a bearer
// token and a tenant header on every request and forwards only those that
// have both. Prometheus's own web config checks basic auth and client
// certificates but has no bearer-token check, hence this loopback reverse
// proxy.
type Gateway struct {
	// URL is the gateway's base address, e.g. http://127.0.0.1:41234.
	URL string
	srv *http.Server
	ln  net.Listener
}

// GatewayConfig says what the gateway wants.
type GatewayConfig struct {
	// Target is the Prometheus behind the gateway (a loopback URL).
	Target string
	// Token is wanted as "Authorization: Bearer Token".
	Token string
	// Header is wanted with the value Value (e.g. X-Scope-OrgID: team-a).
	Header, Value string
}

// StartGateway listens on a free loopback port.
func StartGateway(cfg GatewayConfig) (*Gateway, error) {
	target, err := url.Parse(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("gateway target: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+cfg.Token {
			deny(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		if got := r.Header.Get(cfg.Header); got != cfg.Value {
			deny(w, http.StatusForbidden, fmt.Sprintf("%s %q: want %q", cfg.Header, got, cfg.Value))
			return
		}
		proxy.ServeHTTP(w, r)
	})
	g := &Gateway{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h}, ln: ln}
	go func() { _ = g.srv.Serve(ln) }()
	return g, nil
}

// deny answers like a Prometheus API error, so the client reports it as one.
func deny(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, `{"status":"error","errorType":"unauthorized","error":%q}`, msg)
}

// Close stops the gateway.
func (g *Gateway) Close() { _ = g.srv.Close() }
