package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
)

func TestPrometheusAllowedAddressesAndCapsFlags(t *testing.T) {
	f, _, err := parseFlags([]string{"--prometheus-url=http://p:9090"})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.allowedAddresses) != 0 || f.prometheus.MaxResponseBytes != provider.DefaultMaxResponseBytes || f.prometheus.MaxSeries != provider.DefaultMaxSeries {
		t.Fatalf("defaults: allowed %q, caps %d bytes %d series", f.allowedAddresses, f.prometheus.MaxResponseBytes, f.prometheus.MaxSeries)
	}
	f, _, err = parseFlags([]string{"--prometheus-url=http://p:9090", "--prometheus-allowed-addresses= mimir.team-a:8080, https://thanos:10902/prometheus,",
		"--prometheus-max-response-bytes=1048576", "--prometheus-max-series=500"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.allowedAddresses, []string{"mimir.team-a:8080", "https://thanos:10902/prometheus"}) || f.prometheus.MaxResponseBytes != 1<<20 || f.prometheus.MaxSeries != 500 {
		t.Fatalf("allowed %q, caps %d bytes %d series", f.allowedAddresses, f.prometheus.MaxResponseBytes, f.prometheus.MaxSeries)
	}
	for _, args := range [][]string{
		{"--prometheus-allowed-addresses=mimir"},
		{"--prometheus-allowed-addresses=https://u:p@mimir:8080"},
		{"--prometheus-max-series=0"},
		{"--prometheus-max-response-bytes=-1"},
	} {
		if _, _, err := parseFlags(args); err == nil || !strings.Contains(err.Error(), strings.SplitN(args[0], "=", 2)[0]) {
			t.Errorf("%q: %v; want an error naming the flag", args, err)
		}
	}
}

func TestGateFlags(t *testing.T) {
	f, _, err := parseFlags(nil)
	if err != nil || f.gateAllowedHosts != "" || f.gateMaxInFlight != 16 {
		t.Fatalf("defaults: %q, %d, %v", f.gateAllowedHosts, f.gateMaxInFlight, err)
	}
	if f, _, err = parseFlags([]string{"--gate-allowed-hosts=*.svc, hooks.example.com:8443", "--gate-max-in-flight=4"}); err != nil ||
		!slices.Equal(splitList(f.gateAllowedHosts), []string{"*.svc", "hooks.example.com:8443"}) || f.gateMaxInFlight != 4 {
		t.Fatalf("parsed %q, %d, %v", f.gateAllowedHosts, f.gateMaxInFlight, err)
	}
	for _, args := range [][]string{{"--gate-allowed-hosts=https://hooks.example.com"}, {"--gate-allowed-hosts=a*.b"}, {"--gate-max-in-flight=0"}} {
		if _, _, err := parseFlags(args); err == nil || !strings.Contains(err.Error(), strings.SplitN(args[0], "=", 2)[0]) {
			t.Errorf("%q: %v; want an error naming the flag", args, err)
		}
	}
}
