package test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The "Helm" section of docs/install.md gives a values file in a yaml
// block. It joins the value sets, so every test here (lint, flags, RBAC,
// dry run, ...) covers it as it is written.

var guideErr error

func init() {
	_, file, _, _ := runtime.Caller(0)
	guide := filepath.Join(filepath.Dir(file), "..", "..", "..", "docs", "install.md")
	values, err := guideValues(guide)
	if err != nil {
		guideErr = err
		return
	}
	// The dashboard goes to kube-prometheus-stack's namespace.
	valueSets["install-guide"] = valueSet{values: values, namespaces: []string{"monitoring"}}
}

// guideValues is the first yaml block of the "## Helm" section.
func guideValues(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the install guide: %w", err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Helm\n")
	if !ok {
		return "", errors.New("docs/install.md has no \"## Helm\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "\n```yaml\n")
	if !ok {
		return "", errors.New("the Helm section of docs/install.md has no yaml block")
	}
	block, _, ok = strings.Cut(block, "\n```")
	if !ok {
		return "", errors.New("the yaml block of the Helm section of docs/install.md is not closed")
	}
	return block, nil
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
