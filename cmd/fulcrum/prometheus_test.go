package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPrometheusFlagsAndConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := file("full.yaml", "url: https://mimir.monitoring:8080/prometheus\ntimeout: 20s\nbasic_auth: {username: fulcrum, password_file: password}\nhttp_headers:\n  X-Scope-OrgID: {values: [team-a]}\n")
	noURL := file("no-url.yaml", "tls_config: {ca_file: /etc/ca.crt}\n")
	bearer := file("bearer.yaml", "url: http://p:9090\nbearer_token: t\n")
	typo := file("typo.yaml", "url: http://p:9090\nbasic_auth:\n  username: fulcrum\n  passwrd_file: /p\n")

	t.Run("the file alone", func(t *testing.T) {
		f, _, err := parseFlags([]string{"--prometheus-config-file=" + full})
		if err != nil {
			t.Fatal(err)
		}
		p := f.prometheus
		if p.Address != "https://mimir.monitoring:8080/prometheus" || p.Timeout != 20*time.Second || p.HTTP.BasicAuth == nil ||
			p.HTTP.BasicAuth.PasswordFile != filepath.Join(dir, "password") || p.HTTP.HTTPHeaders == nil {
			t.Fatalf("connection %+v", p)
		}
	})
	t.Run("flags complete a file", func(t *testing.T) {
		f, _, err := parseFlags([]string{"--prometheus-config-file=" + noURL, "--prometheus-url=https://p:9090", "--prometheus-timeout=5s", "--prometheus-bearer-token-file=/var/run/token"})
		if err != nil {
			t.Fatal(err)
		}
		p := f.prometheus
		if p.Address != "https://p:9090" || p.Timeout != 5*time.Second || p.HTTP.TLSConfig.CAFile != "/etc/ca.crt" ||
			p.HTTP.Authorization == nil || p.HTTP.Authorization.CredentialsFile != "/var/run/token" {
			t.Fatalf("connection %+v", p)
		}
	})
	t.Run("the flags alone, as before", func(t *testing.T) {
		f, _, err := parseFlags([]string{"--prometheus-url=http://p:9090", "--prometheus-bearer-token-file=/var/run/token"})
		if err != nil {
			t.Fatal(err)
		}
		if a := f.prometheus.HTTP.Authorization; f.prometheus.Address != "http://p:9090" || a == nil || a.Type != "Bearer" || a.CredentialsFile != "/var/run/token" {
			t.Fatalf("connection %+v", f.prometheus)
		}
		if !f.prometheus.HTTP.FollowRedirects || !f.prometheus.HTTP.EnableHTTP2 {
			t.Errorf("flags alone lose Prometheus's defaults: %+v", f.prometheus.HTTP)
		}
		f, _, _ = parseFlags(nil)
		if f.prometheus.Address != "" {
			t.Fatalf("no flags: address %q", f.prometheus.Address)
		}
	})
	for name, tc := range map[string]struct {
		args []string
		want []string // every string the error must name
	}{
		"url twice":        {[]string{"--prometheus-config-file=" + full, "--prometheus-url=http://other:9090"}, []string{"--prometheus-url", "url in --prometheus-config-file " + full, "keep one"}},
		"timeout twice":    {[]string{"--prometheus-config-file=" + full, "--prometheus-timeout=5s"}, []string{"--prometheus-timeout", "timeout in --prometheus-config-file", "remove timeout from the file"}},
		"basic and bearer": {[]string{"--prometheus-config-file=" + full, "--prometheus-bearer-token-file=/t"}, []string{"--prometheus-bearer-token-file", "basic_auth in --prometheus-config-file", "drop the flag"}},
		"bearer twice":     {[]string{"--prometheus-config-file=" + bearer, "--prometheus-bearer-token-file=/t"}, []string{"--prometheus-bearer-token-file", "authorization in --prometheus-config-file"}},
		"no address":       {[]string{"--prometheus-config-file=" + noURL}, []string{noURL, "has no url", "add url"}},
		"bearer only":      {[]string{"--prometheus-bearer-token-file=/t"}, []string{"--prometheus-bearer-token-file", "--prometheus-url"}},
		"typo":             {[]string{"--prometheus-config-file=" + typo}, []string{typo, "line 4", "field passwrd_file not found"}},
		"missing file":     {[]string{"--prometheus-config-file=" + filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml", "no such file"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := parseFlags(tc.args)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}
