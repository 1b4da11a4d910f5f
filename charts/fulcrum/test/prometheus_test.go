package test

import (
	"path"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
)

// source is where a file of the projected Prometheus volume comes from.
type source struct{ kind, name, key string }

// prometheusFiles maps each file of the volume mounted at
// /etc/fulcrum/prometheus to its Secret or ConfigMap and key.
func (r rendered) prometheusFiles(t *testing.T) map[string]source {
	t.Helper()
	out := map[string]source{}
	for _, v := range r.pod.Volumes {
		if v.Name != "prometheus" {
			continue
		}
		if v.Projected == nil {
			t.Fatalf("volume prometheus is not projected: %+v", v.VolumeSource)
		}
		for _, s := range v.Projected.Sources {
			var items []corev1.KeyToPath
			var src source
			switch {
			case s.Secret != nil:
				items, src = s.Secret.Items, source{kind: "Secret", name: s.Secret.Name}
			case s.ConfigMap != nil:
				items, src = s.ConfigMap.Items, source{kind: "ConfigMap", name: s.ConfigMap.Name}
			default:
				t.Fatalf("unexpected projected source %+v", s)
			}
			for _, it := range items {
				src.key = it.Key
				out[path.Join("/etc/fulcrum/prometheus", it.Path)] = src
			}
		}
	}
	return out
}

// TestPrometheusAuthValues: the values become a connection file that the
// binary's own strict decoder accepts, and every file it names is mounted
// from the Secret or ConfigMap the values name.
func TestPrometheusAuthValues(t *testing.T) {
	r := renderSet(t, "prometheus-auth")
	r.wantFlags(t, map[string]string{
		"prometheus-url":               "https://mimir-gateway.monitoring.svc:8080/prometheus",
		"prometheus-timeout":           "20s",
		"prometheus-config-file":       "/etc/fulcrum/prometheus-config/prometheus.yaml",
		"prometheus-bearer-token-file": "-",
	})
	if got := r.secretMount("/etc/fulcrum/prometheus-config"); got != "fulcrum-prometheus" {
		t.Errorf("/etc/fulcrum/prometheus-config from Secret %q, want the chart's fulcrum-prometheus", got)
	}
	secret := one[corev1.Secret](t, r.objs, "Secret", "fulcrum-prometheus")
	cfg, err := provider.ParseFileConfig([]byte(secret.StringData["prometheus.yaml"]))
	if err != nil {
		t.Fatalf("the rendered file is refused by the binary: %v\n%s", err, secret.StringData["prometheus.yaml"])
	}
	if cfg.URL != "" || cfg.Timeout != 0 {
		t.Errorf("url %q and timeout %s in the file would conflict with the flags", cfg.URL, cfg.Timeout)
	}
	h := cfg.HTTPClientConfig
	files := r.prometheusFiles(t)
	for file, want := range map[string]source{
		h.BasicAuth.UsernameFile: {"Secret", "mimir-basic-auth", "username"},
		h.BasicAuth.PasswordFile: {"Secret", "mimir-basic-auth", "password"},
		h.TLSConfig.CAFile:       {"ConfigMap", "corp-ca", "ca.crt"},
		h.TLSConfig.CertFile:     {"Secret", "fulcrum-prometheus-client", "tls.crt"},
		h.TLSConfig.KeyFile:      {"Secret", "fulcrum-prometheus-client", "tls.key"},
	} {
		if got, ok := files[file]; !ok || got != want {
			t.Errorf("%q: mounted from %+v (%v), want %+v", file, got, ok, want)
		}
	}
	if h.TLSConfig.ServerName != "mimir-gateway.monitoring.svc" || h.ProxyURL.URL == nil || h.ProxyURL.String() != "http://proxy.corp:3128" {
		t.Errorf("server name %q, proxy %v", h.TLSConfig.ServerName, h.ProxyURL)
	}
	for name, want := range map[string]string{"X-Scope-OrgID": "ml-platform", "X-Team": `ml & "platform": a`} {
		if got := h.HTTPHeaders.Headers[name].Values; len(got) != 1 || got[0] != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	d := one[appsv1.Deployment](t, r.objs, "Deployment", r.name)
	if d.Spec.Template.Annotations["checksum/prometheus-config"] == "" {
		t.Error("no checksum/prometheus-config annotation: a changed file would not restart the pods")
	}
}

// TestPrometheusOwnFile: a user's file is mounted whole, with the bearer
// token beside it, and the chart renders no file of its own.
func TestPrometheusOwnFile(t *testing.T) {
	r := renderSet(t, "prometheus-own-file")
	r.wantFlags(t, map[string]string{
		"prometheus-url":               "-",
		"prometheus-config-file":       "/etc/fulcrum/prometheus-config/connection.yaml",
		"prometheus-bearer-token-file": "/etc/fulcrum/prometheus/token",
	})
	if got := r.secretMount("/etc/fulcrum/prometheus-config"); got != "fulcrum-prometheus-oauth2" {
		t.Errorf("/etc/fulcrum/prometheus-config from Secret %q, want the user's", got)
	}
	if got := r.prometheusFiles(t)["/etc/fulcrum/prometheus/token"]; got != (source{"Secret", "mimir-token", "token"}) {
		t.Errorf("token from %+v", got)
	}
	if len(pick(r.objs, "Secret")) != 0 {
		t.Errorf("the chart rendered Secrets %v beside the user's file", kindNames(pick(r.objs, "Secret")))
	}
}
