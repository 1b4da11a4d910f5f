package analysis

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// A MetricTemplate that names an address the controller may not query
// gets an Error round that names the template, the address and the flag,
// and no request reaches the address.
func TestDisallowedTemplateAddressIsAnErrorRound(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}))
	defer srv.Close()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mt := &v1alpha1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "elsewhere"},
		Spec: v1alpha1.MetricTemplateSpec{
			Provider: v1alpha1.Provider{Type: v1alpha1.ProviderPrometheus, Address: srv.URL},
			Query:    `sum by (destination_version) (rate(errors_total{namespace="ml"}[{{.Window}}]))`,
		},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(mt).Build()
	e, err := NewEngine(EngineConfig{Prometheus: provider.PrometheusConfig{Address: "http://127.0.0.1:9"}, Templates: c, Secrets: c, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	round, err := e.Analyze(context.Background(), request(v1alpha1.Metric{Name: "errors", Template: "elsewhere", Threshold: &v1alpha1.ThresholdJudge{Max: f64(1)}}))
	if err != nil {
		t.Fatal(err)
	}
	if round.Verdict != v1alpha1.VerdictError || round.Metrics[0].Verdict != v1alpha1.VerdictError {
		t.Fatalf("round %s, metric %s; want Error", round.Verdict, round.Metrics[0].Verdict)
	}
	msg := round.Metrics[0].Message
	for _, want := range []string{"template elsewhere", srv.URL, "--prometheus-allowed-addresses", "prometheus.allowedAddresses"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached the disallowed address", n)
	}
}
