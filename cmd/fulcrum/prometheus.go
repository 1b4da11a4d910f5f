package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/common/config"

	"github.com/fulcrum-ml/fulcrum/analysis/connections"
	"github.com/fulcrum-ml/fulcrum/analysis/provider"
)

// prometheusConfig is the controller's Prometheus connection from
// --prometheus-config-file and the shorthand flags --prometheus-url,
// --prometheus-timeout and --prometheus-bearer-token-file. A setting given
// twice is refused rather than one silently winning: an operator who
// passes --prometheus-url and a file with url cannot tell which address
// the controller queries. The Address is empty when nothing names a
// Prometheus (analysis is then off).
func prometheusConfig(f *flags) (provider.PrometheusConfig, error) {
	// Prometheus's defaults (follow redirects, HTTP/2), as a file without
	// those fields gets them.
	cfg := provider.PrometheusConfig{Address: f.prometheusURL, Timeout: f.prometheusTimeout, HTTP: config.DefaultHTTPClientConfig,
		MaxResponseBytes: f.prometheusMaxResponseBytes, MaxSeries: f.prometheusMaxSeries}
	if f.prometheusMaxResponseBytes <= 0 || f.prometheusMaxSeries <= 0 {
		return cfg, fmt.Errorf("--prometheus-max-response-bytes (%d) and --prometheus-max-series (%d) must be positive (the defaults are %d and %d)",
			f.prometheusMaxResponseBytes, f.prometheusMaxSeries, provider.DefaultMaxResponseBytes, provider.DefaultMaxSeries)
	}
	if f.prometheusConfigFile == "" {
		if f.prometheusBearerTokenFile != "" {
			if f.prometheusURL == "" {
				return cfg, errors.New("--prometheus-bearer-token-file without --prometheus-url: set the address too (or url in --prometheus-config-file)")
			}
			// As Prometheus's bearer_token_file: re-read on every request.
			cfg.HTTP.Authorization = &config.Authorization{Type: "Bearer", CredentialsFile: f.prometheusBearerTokenFile}
		}
		return cfg, nil
	}
	file, err := provider.LoadFileConfig(f.prometheusConfigFile)
	if err != nil {
		return cfg, fmt.Errorf("--prometheus-config-file: %w", err)
	}
	both := func(flag, field, what string) error {
		return fmt.Errorf("--%s and %s in --prometheus-config-file %s both set %s: keep one (drop the flag, or remove %s from the file)",
			flag, field, f.prometheusConfigFile, what, field)
	}
	if file.URL != "" {
		if f.prometheusURL != "" {
			return cfg, both("prometheus-url", "url", "the Prometheus address")
		}
		cfg.Address = file.URL
	}
	if cfg.Address == "" {
		return cfg, fmt.Errorf("--prometheus-config-file %s has no url and --prometheus-url is not set: add url to the file (e.g. url: http://prometheus.monitoring:9090)", f.prometheusConfigFile)
	}
	if file.Timeout != 0 {
		if f.prometheusTimeout != 0 {
			return cfg, both("prometheus-timeout", "timeout", "the query timeout")
		}
		cfg.Timeout = file.QueryTimeout()
	}
	cfg.HTTP = file.HTTPClientConfig
	if f.prometheusBearerTokenFile != "" {
		if field := authField(cfg.HTTP); field != "" {
			return cfg, both("prometheus-bearer-token-file", field, "how the controller authenticates")
		}
		cfg.HTTP.Authorization = &config.Authorization{Type: "Bearer", CredentialsFile: f.prometheusBearerTokenFile}
	}
	return cfg, nil
}

// allowedAddresses splits and checks --prometheus-allowed-addresses
// (connections.Allowlist says how entries match), so a mistyped entry
// stops the start instead of refusing templates later.
func allowedAddresses(flag, global string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(flag, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	if _, err := connections.NewAllowlist(global, out); err != nil {
		return nil, fmt.Errorf("--prometheus-allowed-addresses: %w", err)
	}
	return out, nil
}

// authField names the file's authentication setting, if it has one. The
// file was validated, so bearer_token(_file) became authorization.
func authField(c config.HTTPClientConfig) string {
	switch {
	case c.Authorization != nil:
		return "authorization"
	case c.BasicAuth != nil:
		return "basic_auth"
	case c.OAuth2 != nil:
		return "oauth2"
	}
	return ""
}
