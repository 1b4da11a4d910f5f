package analysis

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// TestRewardsOnRealPrometheus: an experiment's arms read their own
// feedback since the start, v1 at 10% success and v2 at 20%, and another
// namespace's model and a version outside the arms do not count; the
// model-reward template reads sum and count.
func TestRewardsOnRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	reg := prometheus.NewRegistry()
	fb := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "model_feedback_total"}, []string{"namespace", "model", "version", "outcome"})
	rw := prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: "model_reward"}, []string{"namespace", "model", "version"})
	// waitScrapes reads the scrape time from istio_requests_total.
	reqs := prometheus.NewCounter(prometheus.CounterOpts{Name: "istio_requests_total"})
	reg.MustRegister(fb, rw, reqs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := scrapedBy(ctx, t, reg)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			reqs.Add(1)
			fb.WithLabelValues("ml", "fraud", "v1", "success").Add(1)
			fb.WithLabelValues("ml", "fraud", "v1", "failure").Add(9)
			fb.WithLabelValues("ml", "fraud", "v2", "success").Add(2)
			fb.WithLabelValues("ml", "fraud", "v2", "failure").Add(8)
			fb.WithLabelValues("ml", "fraud", "v3", "success").Add(10)
			fb.WithLabelValues("other", "fraud", "v1", "success").Add(10)
			rw.WithLabelValues("ml", "fraud", "v1").Observe(4)
			rw.WithLabelValues("ml", "fraud", "v2").Observe(6)
		}
	}()
	engine, err := NewEngine(EngineConfig{Prometheus: provider.PrometheusConfig{Address: srv.URL, Timeout: 5 * time.Second}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	prom, _ := provider.NewPrometheus(provider.PrometheusConfig{Address: srv.URL})
	start := waitScrapes(ctx, t, prom, 1)
	now := waitScrapes(ctx, t, prom, 10)
	arms, err := engine.Rewards(ctx, "ml", "fraud", RewardFeedback, []string{"v1", "v2"}, start, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(arms) != 2 || arms[0].Name != "v1" || arms[1].Name != "v2" {
		t.Fatalf("arms %+v", arms)
	}
	for i, want := range []float64{0.1, 0.2} {
		a := arms[i]
		if a.Trials < 500 || math.Abs(a.Successes/a.Trials-want) > 0.01 {
			t.Errorf("%s: %.0f of %.0f, want a rate of %.2f on at least 500 trials", a.Name, a.Successes, a.Trials, want)
		}
	}
	t.Logf("model-feedback: %+v", arms)
	means, err := engine.Rewards(ctx, "ml", "fraud", RewardValue, []string{"v1", "v2"}, start, now)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{4, 6} {
		if m := means[i]; m.Count < 50 || math.Abs(m.Sum/m.Count-want) > 1e-6 {
			t.Errorf("%s: mean %.3f over %.0f, want %.0f", m.Name, m.Sum/m.Count, m.Count, want)
		}
	}
	if none, err := engine.Rewards(ctx, "ml", "absent", RewardFeedback, []string{"v1", "v2"}, start, now); err != nil || none[0].Trials != 0 {
		t.Fatalf("a model without series: %+v, %v", none, err)
	}
	if _, err := engine.Rewards(ctx, "ml", "fraud", "istio-error-rate", []string{"v1", "v2"}, start, now); err == nil || !strings.Contains(err.Error(), "spec.strategy.experiment.reward.template") {
		t.Fatalf("a template that is no reward: %v", err)
	}

	// A MetricTemplate of the user's: its successQuery and sampleQuery,
	// rendered with the arms and the experiment's age, confined to the
	// namespace by its namespace label.
	custom, err := NewEngine(EngineConfig{
		Prometheus: provider.PrometheusConfig{Address: srv.URL, Timeout: 5 * time.Second}, Registerer: prometheus.NewRegistry(),
		Templates: templateGetter{"clicks": {
			ObjectMeta: metav1.ObjectMeta{Name: "clicks", Namespace: "ml"},
			Spec: v1alpha1.MetricTemplateSpec{
				Provider: v1alpha1.Provider{Type: v1alpha1.ProviderPrometheus}, VersionLabel: "version", NamespaceLabel: "namespace",
				SuccessQuery: `sum by (version) (increase(model_feedback_total{model="{{.Service}}",outcome="success",version=~"{{.SubsetRegex}}"}[{{.Window}}]))`,
				SampleQuery:  `sum by (version) (increase(model_feedback_total{model="{{.Service}}",version=~"{{.SubsetRegex}}"}[{{.Window}}]))`,
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := custom.Rewards(ctx, "ml", "fraud", "clicks", []string{"v1", "v2"}, start, now)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{0.1, 0.2} {
		if a := got[i]; a.Trials < 500 || math.Abs(a.Successes/a.Trials-want) > 0.01 {
			t.Errorf("MetricTemplate reward %s: %.0f of %.0f, want %.2f", a.Name, a.Successes, a.Trials, want)
		}
	}
}

// templateGetter serves MetricTemplates from a map.
type templateGetter map[string]*v1alpha1.MetricTemplate

func (g templateGetter) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	mt, ok := g[key.Name]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Group: "fulcrum.dev", Resource: "metrictemplates"}, key.Name)
	}
	mt.DeepCopyInto(obj.(*v1alpha1.MetricTemplate))
	return nil
}
