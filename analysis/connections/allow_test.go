package connections

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func TestAllowlist(t *testing.T) {
	const global = "http://prometheus.monitoring:9090"
	entries := []string{"mimir.team-a:8080", "https://thanos.monitoring:10902/prometheus/"}
	tests := []struct {
		address string
		allowed bool
	}{
		{"http://prometheus.monitoring:9090", true},
		{"http://prometheus.monitoring:9090/", true},
		{"http://Prometheus.Monitoring:9090", true},
		{"https://prometheus.monitoring:9090", false},
		{"http://prometheus.monitoring:9091", false},
		{"http://prometheus.monitoring:9090/other", false},
		{"http://mimir.team-a:8080", true},
		{"https://mimir.team-a:8080/prometheus", true},
		{"http://mimir.team-a", false},
		{"http://mimir.team-a:8081", false},
		{"http://mimir.team-a:8080@evil.example:80", false},
		{"https://thanos.monitoring:10902/prometheus", true},
		{"https://thanos.monitoring:10902/prometheus/team-a", true},
		{"https://thanos.monitoring:10902/prometheus-other", false},
		{"https://thanos.monitoring:10902/", false},
		{"http://thanos.monitoring:10902/prometheus", false},
		{"http://evil.example:9090", false},
	}
	a, err := NewAllowlist(global, entries)
	if err != nil {
		t.Fatal(err)
	}
	none, _ := NewAllowlist(global, nil)
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			if got := a.Allows(tt.address); got != tt.allowed {
				t.Errorf("Allows = %v, want %v", got, tt.allowed)
			}
			if got := none.Allows(tt.address); got != (tt.allowed && strings.Contains(strings.ToLower(tt.address), "prometheus.monitoring")) {
				t.Errorf("with no entries: Allows = %v", got)
			}
		})
	}
	for _, bad := range []string{"mimir", "mimir:", "mimir:8080/path", "ftp://mimir:21", "https://u:p@mimir:8080", "https://mimir:8080?x=1"} {
		if _, err := NewAllowlist(global, []string{bad}); err == nil {
			t.Errorf("entry %q accepted", bad)
		}
	}
}

// A template that names an address outside the allowlist gets an error
// that says how to allow it, and not one request reaches the address: not
// with the controller's credentials, not without them.
func TestDisallowedAddressGetsNoRequest(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`))
	}))
	defer srv.Close()

	for name, allowed := range map[string][]string{"no allowlist": nil, "another address allowed": {"127.0.0.1:1"}} {
		t.Run(name, func(t *testing.T) {
			pool, err := New(Config{Global: provider.PrometheusConfig{Address: "http://127.0.0.1:9"}, AllowedAddresses: allowed})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []*v1alpha1.Provider{{Address: srv.URL}, {Address: srv.URL, HTTPClientConfigSecretRef: ref("tenant", "config.yaml")}} {
				_, err := pool.For(context.Background(), Template{Namespace: ns, Provider: p})
				if !errors.Is(err, ErrAddressNotAllowed) {
					t.Fatalf("%+v: %v; want ErrAddressNotAllowed", p, err)
				}
				for _, want := range []string{srv.URL, "--prometheus-allowed-addresses", "prometheus.allowedAddresses", "remove spec.provider.address"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
			}
			if n := requests.Load(); n != 0 {
				t.Fatalf("%d requests reached the disallowed address", n)
			}
		})
	}

	// Once allowed, the same template's queries go there.
	pool, err := New(Config{Global: provider.PrometheusConfig{Address: "http://127.0.0.1:9"}, AllowedAddresses: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.For(context.Background(), Template{Namespace: ns, Provider: &v1alpha1.Provider{Address: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if err := query(t, p); err != nil || requests.Load() != 1 {
		t.Fatalf("allowed address: %v, %d requests", err, requests.Load())
	}
}

// An allowed address cannot pass a template's queries on to one that is
// not: template connections follow no redirects.
func TestAllowedAddressCannotRedirect(t *testing.T) {
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`))
	}))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	pool, err := New(Config{Global: provider.PrometheusConfig{Address: "http://127.0.0.1:9"}, AllowedAddresses: []string{redirector.URL}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.For(context.Background(), Template{Namespace: ns, Provider: &v1alpha1.Provider{Address: redirector.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if err := query(t, p); err == nil {
		t.Error("the redirected query answered")
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("%d requests followed the redirect to an address not allowed", n)
	}
}
