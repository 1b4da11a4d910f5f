package provider

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadFileConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prometheus.yaml")
	writeFile(t, path, `
url: https://mimir.monitoring:8080/prometheus
timeout: 20s
basic_auth:
  username: fulcrum
  password_file: password
tls_config:
  ca_file: /etc/ca.crt
http_headers:
  X-Scope-OrgID:
    values: [team-a]
`)
	c, err := LoadFileConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "https://mimir.monitoring:8080/prometheus" || c.QueryTimeout() != 20*time.Second {
		t.Errorf("url %q timeout %s", c.URL, c.QueryTimeout())
	}
	// Relative files are relative to the config file, as in Prometheus.
	if c.HTTPClientConfig.BasicAuth.PasswordFile != filepath.Join(dir, "password") || c.HTTPClientConfig.TLSConfig.CAFile != "/etc/ca.crt" {
		t.Errorf("files: password %q ca %q", c.HTTPClientConfig.BasicAuth.PasswordFile, c.HTTPClientConfig.TLSConfig.CAFile)
	}
	// Prometheus's defaults, as in a scrape config.
	if !c.HTTPClientConfig.FollowRedirects || !c.HTTPClientConfig.EnableHTTP2 {
		t.Errorf("defaults lost: follow_redirects %v enable_http2 %v", c.HTTPClientConfig.FollowRedirects, c.HTTPClientConfig.EnableHTTP2)
	}
	if got := c.HTTPClientConfig.HTTPHeaders.Headers["X-Scope-OrgID"].Values; len(got) != 1 || got[0] != "team-a" {
		t.Errorf("headers %v", got)
	}
}

func TestLoadFileConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown field":      {"url: http://p:9090\nbasic_auth:\n  username: u\n  pasword: x\n", "line 4: field pasword not found"},
		"unknown top level":  {"address: http://p:9090\n", "field address not found"},
		"not YAML":           {"url: [\n", "invalid YAML"},
		"bad url":            {"url: prometheus:9090\n", "want an http(s) URL"},
		"bad timeout":        {"timeout: soon\n", "not a valid duration"},
		"two auths":          {"basic_auth: {username: u}\nauthorization: {credentials: t}\n", "at most one of basic_auth, oauth2 & authorization"},
		"reserved header":    {"http_headers:\n  Authorization:\n    values: [x]\n", `setting header "Authorization" is not allowed`},
		"oauth2 without url": {"oauth2: {client_id: a, client_secret: b}\n", "token_url"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			writeFile(t, path, tc.yaml)
			_, err := LoadFileConfig(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v; want it to name %s and say %q", err, path, tc.want)
			}
			if strings.Contains(err.Error(), "plain") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error shows Go internals or several lines: %q", err)
			}
		})
	}
	if _, err := LoadFileConfig(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
