package webhook_test

import (
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/analysis/connections"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/webhook"
)

// A MetricTemplate whose address the controller may not query is admitted
// with the controller's message as a warning; an allowed one, and the
// same template when the webhook knows no allowlist, get no warning.
func TestMetricTemplateAddressOutsideTheAllowlistWarns(t *testing.T) {
	mtKind := metav1.GroupVersionKind{Group: "fulcrum.dev", Version: "v1alpha1", Kind: "MetricTemplate"}
	template := func(address string) *v1alpha1.MetricTemplate {
		return &v1alpha1.MetricTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "fraud"},
			Spec: v1alpha1.MetricTemplateSpec{
				Provider: v1alpha1.Provider{Type: v1alpha1.ProviderPrometheus, Address: address},
				Query:    `sum by (destination_version) (rate(errors_total[{{.Window}}]))`,
			},
		}
	}
	allowed, err := connections.NewAllowlist("http://prometheus.monitoring:9090", []string{"mimir.team-a:8080"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		list    *connections.Allowlist
		address string
		warn    []string
	}{
		{"not allowed", &allowed, "http://elsewhere.example:9090", []string{"MetricTemplate ml/fraud", `"http://elsewhere.example:9090"`, "--prometheus-allowed-addresses", "prometheus.allowedAddresses", "Error rounds"}},
		{"allowed", &allowed, "https://mimir.team-a:8080/prometheus", nil},
		{"the controller's", &allowed, "http://prometheus.monitoring:9090", nil},
		{"no address", &allowed, "", nil},
		{"no allowlist known", nil, "http://elsewhere.example:9090", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := webhook.NewServer(webhook.Config{Lookups: memCluster(), CertDir: certDir(t), ProviderAddresses: tt.list})
			if err != nil {
				t.Fatal(err)
			}
			resp := call(t, s.Handler(), webhook.PathMetricTemplates, review(t, admissionv1.Create, "alice", mtKind, template(tt.address), nil))
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			got := strings.Join(resp.Warnings, "\n")
			if tt.warn == nil && got != "" {
				t.Errorf("warnings %q, want none", got)
			}
			for _, w := range tt.warn {
				if !strings.Contains(got, w) {
					t.Errorf("warnings %q do not say %q", got, w)
				}
			}
		})
	}
}
