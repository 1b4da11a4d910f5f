package analysis

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Inline queries run only with AllowInlineQueries (--allow-inline-queries);
// without it the metric is an Error that names the flag, never Pass.
func TestEngineInlineQueriesFollowTheFlag(t *testing.T) {
	fp := &fakeProvider{calls: map[string]int{}, answers: func(q string) ([]provider.Sample, error) {
		return versions("destination_version", map[string]float64{"v1": 1, "v2": 1}), nil
	}}
	m := v1alpha1.Metric{Name: "mine", Query: `sum by (destination_version) (x)`, Threshold: &v1alpha1.ThresholdJudge{Max: f64(10)}}
	for _, allow := range []bool{false, true} {
		e, err := NewEngine(EngineConfig{Provider: fp, AllowInlineQueries: allow})
		if err != nil {
			t.Fatal(err)
		}
		req := request(m)
		req.Spec.MinSamples = 0
		round, err := e.Analyze(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		got := round.Metrics[0]
		switch {
		case allow && got.Verdict != v1alpha1.VerdictPass:
			t.Errorf("allowed: %s %q", got.Verdict, got.Message)
		case !allow && (got.Verdict != v1alpha1.VerdictError || !strings.Contains(got.Message, "--allow-inline-queries")):
			t.Errorf("not allowed: %s %q; want Error naming the flag", got.Verdict, got.Message)
		}
	}
	if len(fp.calls) != 1 {
		t.Errorf("queries run: %v; want one, with the flag", fp.calls)
	}
	if _, err := NewEngine(EngineConfig{Provider: fp, NamespaceLabel: "kube-namespace"}); err == nil {
		t.Error("a namespace label that is no label name accepted")
	}
}

// What reaches the provider from a MetricTemplate that names another
// namespace reads the rollout's namespace (the real Prometheus test shows
// the numbers: TestQueriesOnRealPrometheus).
func TestEngineConfinesTemplatesToTheRolloutsNamespace(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(templateScheme(t)).WithObjects(
		&v1alpha1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "theirs"}, Spec: v1alpha1.MetricTemplateSpec{
			Query: `sum by (version) (rate(x{namespace="other"}[{{.Window}}]))`, VersionLabel: "version", NamespaceLabel: "namespace"}},
		&v1alpha1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "default-label"}, Spec: v1alpha1.MetricTemplateSpec{
			Query: `sum by (destination_version) (rate(y[{{.Window}}]))`}},
	).Build()
	fp := &fakeProvider{calls: map[string]int{}, answers: func(q string) ([]provider.Sample, error) {
		return nil, &provider.QueryError{Kind: provider.ErrNoData, Query: q}
	}}
	e, err := NewEngine(EngineConfig{Provider: fp, Templates: c, NamespaceLabel: "kubernetes_namespace"})
	if err != nil {
		t.Fatal(err)
	}
	req := request(
		v1alpha1.Metric{Name: "a", Template: "theirs", Threshold: &v1alpha1.ThresholdJudge{Max: f64(1)}},
		v1alpha1.Metric{Name: "b", Template: "default-label", Threshold: &v1alpha1.ThresholdJudge{Max: f64(1)}})
	if _, err := e.Analyze(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		`sum by (version) (rate(x{namespace="ml"}[5m]))`:                        true,
		`sum by (destination_version) (rate(y{kubernetes_namespace="ml"}[5m]))`: true,
	}
	for q := range fp.calls {
		if !want[q] {
			t.Errorf("query %s; want one of %v", q, want)
		}
	}
}

// A value query that returns several series for one version is an Error:
// the engine summed them before (issue 14, finding 9), which for a
// quantile, a mean or a ratio is no value at all. Here two pods' p99 of 100
// and 150 ms summed to 250 ms, within a 300 ms threshold: Pass.
func TestEngineRefusesSeveralSeriesForOneVersion(t *testing.T) {
	fp := &fakeProvider{calls: map[string]int{}, answers: func(q string) ([]provider.Sample, error) {
		s := func(v, pod string, x float64) provider.Sample {
			return provider.Sample{Labels: map[string]string{"destination_version": v, "pod": pod}, Value: x}
		}
		return []provider.Sample{s("v1", "a", 90), s("v2", "b", 100), s("v2", "c", 150)}, nil
	}}
	e, err := NewEngine(EngineConfig{Provider: fp, AllowInlineQueries: true})
	if err != nil {
		t.Fatal(err)
	}
	req := request(v1alpha1.Metric{Name: "p99", Threshold: &v1alpha1.ThresholdJudge{Max: f64(300)},
		Query: `histogram_quantile(0.99, sum by (destination_version, pod, le) (rate(h_bucket[{{.Window}}])))`})
	req.Spec.MinSamples = 0
	round, err := e.Analyze(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := round.Metrics[0]
	if got.Verdict != v1alpha1.VerdictError || !strings.Contains(got.Message, `the query returned 2 series for v2 ({destination_version="v2", pod="b"}, {destination_version="v2", pod="c"})`) {
		t.Errorf("got %s %q; want Error naming the series", got.Verdict, got.Message)
	}
}

func templateScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return scheme
}
