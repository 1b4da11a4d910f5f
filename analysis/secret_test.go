package analysis

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// A template whose Secret is missing gets an Error round that says which
// template, which Secret and key, and what to do; the round is never a
// Pass and the engine does not fail.
func TestTemplateSecretProblemIsAnErrorRound(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mt := &v1alpha1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "tenant-errors"},
		Spec: v1alpha1.MetricTemplateSpec{
			Provider: v1alpha1.Provider{Type: v1alpha1.ProviderPrometheus, Address: "https://mimir.team-a:8080/prometheus",
				HTTPClientConfigSecretRef: &v1alpha1.SecretKeyRef{Name: "mimir-auth", Key: "config.yaml"}},
			Query: `sum by (destination_version) (rate(errors_total[{{.Window}}]))`,
		},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(mt).Build()
	e, err := NewEngine(EngineConfig{Prometheus: provider.PrometheusConfig{Address: "http://127.0.0.1:9"}, Templates: c, Secrets: c, DisableBatching: true,
		AllowedPrometheusAddresses: []string{"https://mimir.team-a:8080/prometheus"}})
	if err != nil {
		t.Fatal(err)
	}
	round, err := e.Analyze(context.Background(), request(v1alpha1.Metric{Name: "errors", Template: "tenant-errors", Threshold: &v1alpha1.ThresholdJudge{Max: f64(1)}}))
	if err != nil {
		t.Fatal(err)
	}
	if round.Verdict != v1alpha1.VerdictError || round.Metrics[0].Verdict != v1alpha1.VerdictError {
		t.Fatalf("round %s, metric %s; want Error", round.Verdict, round.Metrics[0].Verdict)
	}
	msg := round.Metrics[0].Message
	for _, want := range []string{"template tenant-errors", "Secret ml/mimir-auth", `key "config.yaml"`, "create it"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
}
