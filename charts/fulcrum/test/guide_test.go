package test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
)

// The "Helm" section of docs/install.md gives a values file in a yaml
// block. It joins the value sets, so every test here (lint, flags, RBAC,
// dry run, ...) covers it as it is written.

var guideErr error

func init() {
	_, file, _, _ := runtime.Caller(0)
	guide := filepath.Join(filepath.Dir(file), "..", "..", "..", "docs", "install.md")
	blocks, err := guideValues(guide)
	if err != nil {
		guideErr = err
		return
	}
	if len(blocks) != 2 {
		guideErr = fmt.Errorf("the Helm section of docs/install.md has %d yaml blocks, want 2 (the values file, Prometheus behind authentication)", len(blocks))
		return
	}
	// The dashboard goes to kube-prometheus-stack's namespace.
	valueSets["install-guide"] = valueSet{values: blocks[0], namespaces: []string{"monitoring"}}
	valueSets["install-guide-prometheus"] = valueSet{values: blocks[1]}
}

// guideValues are the yaml blocks of the "## Helm" section, in order.
func guideValues(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the install guide: %w", err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Helm\n")
	if !ok {
		return nil, errors.New("docs/install.md has no \"## Helm\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for {
		var block string
		if _, section, ok = strings.Cut(section, "\n```yaml\n"); !ok {
			break
		}
		if block, section, ok = strings.Cut(section, "\n```"); !ok {
			return nil, errors.New("a yaml block of the Helm section of docs/install.md is not closed")
		}
		blocks = append(blocks, block)
	}
	if len(blocks) == 0 {
		return nil, errors.New("the Helm section of docs/install.md has no yaml block")
	}
	return blocks, nil
}

func TestInstallGuideValues(t *testing.T) {
	if guideErr != nil {
		t.Fatal(guideErr)
	}
	r := renderSet(t, "install-guide")
	r.wantFlags(t, map[string]string{"leader-elect": "true", "prometheus-timeout": "10s"})
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule", "ConfigMap", "NetworkPolicy"} {
		objs := pick(r.objs, kind)
		if len(objs) != 1 {
			t.Fatalf("want one %s, got %v", kind, kindNames(objs))
		}
		if kind != "NetworkPolicy" && kind != "ConfigMap" && objs[0].GetLabels()["release"] != "kube-prometheus-stack" {
			t.Errorf("%s lacks the label kube-prometheus-stack selects: %v", kind, objs[0].GetLabels())
		}
	}
}

// TestInstallGuidePrometheusValues: the guide's Prometheus-behind-auth
// values become a connection file the binary accepts, with the files it
// names mounted from the Secret and ConfigMap the guide creates.
func TestInstallGuidePrometheusValues(t *testing.T) {
	if guideErr != nil {
		t.Fatal(guideErr)
	}
	r := renderSet(t, "install-guide-prometheus")
	r.wantFlags(t, map[string]string{"prometheus-config-file": "/etc/fulcrum/prometheus-config/prometheus.yaml", "prometheus-timeout": "20s"})
	secret := one[corev1.Secret](t, r.objs, "Secret", "fulcrum-prometheus")
	cfg, err := provider.ParseFileConfig([]byte(secret.StringData["prometheus.yaml"]))
	if err != nil {
		t.Fatal(err)
	}
	files := r.prometheusFiles(t)
	if got := files[cfg.HTTPClientConfig.BasicAuth.PasswordFile]; got != (source{"Secret", "mimir-basic-auth", "password"}) {
		t.Errorf("password from %+v", got)
	}
	if got := files[cfg.HTTPClientConfig.TLSConfig.CAFile]; got != (source{"ConfigMap", "corp-ca", "ca.crt"}) {
		t.Errorf("CA from %+v", got)
	}
}
