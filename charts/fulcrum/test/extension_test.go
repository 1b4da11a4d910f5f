package test

import (
	"encoding/json"
	"testing"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

// TestExtensionObjectsMatchTheirTypes decodes every ServiceMonitor,
// PrometheusRule, Certificate and Issuer the chart renders into the Go types
// of the Prometheus Operator and cert-manager, refusing unknown fields: a
// misspelt or misplaced field fails here, which the stub CRDs of the dry run
// cannot see.
func TestExtensionObjectsMatchTheirTypes(t *testing.T) {
	types := map[string]func() any{
		"ServiceMonitor": func() any { return &monv1.ServiceMonitor{} },
		"PrometheusRule": func() any { return &monv1.PrometheusRule{} },
		"Certificate":    func() any { return &cmv1.Certificate{} },
		"Issuer":         func() any { return &cmv1.Issuer{} },
	}
	seen := map[string]int{}
	for name, vs := range valueSets {
		for _, o := range render(t, vs, false) {
			newObj, ok := types[o.GetKind()]
			if !ok {
				continue
			}
			seen[o.GetKind()]++
			data, err := json.Marshal(o.Object)
			if err != nil {
				t.Fatal(err)
			}
			into := newObj()
			if err := yaml.UnmarshalStrict(data, into); err != nil {
				t.Errorf("%s: %s %s does not match its Go type: %v", name, o.GetKind(), o.GetName(), err)
			}
			if c, ok := into.(*cmv1.Certificate); ok && (c.Spec.SecretName == "" || c.Spec.IssuerRef.Name == "" || len(c.Spec.DNSNames) == 0) {
				t.Errorf("%s: Certificate %s lacks secretName, issuerRef or dnsNames", name, o.GetName())
			}
			if r, ok := into.(*monv1.PrometheusRule); ok && len(r.Spec.Groups) == 0 {
				t.Errorf("%s: PrometheusRule %s has no groups", name, o.GetName())
			}
		}
	}
	for kind := range types {
		if seen[kind] == 0 {
			t.Errorf("no value set renders a %s", kind)
		}
	}
}
