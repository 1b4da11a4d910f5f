package templates

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func TestBuiltinsRenderForEverySubsetAtOnce(t *testing.T) {
	want := []string{"istio-error-rate", "istio-request-count", "istio-latency-p50", "istio-latency-p90", "istio-latency-p99",
		"triton-error-rate", "triton-latency-mean", "kserve-latency", "prediction-psi", "prediction-drift",
		"gateway-error-rate", "gateway-request-count", "gateway-latency-p50", "gateway-latency-p90", "gateway-latency-p99"}
	if got := len(BuiltinNames()); got != len(want) {
		t.Errorf("%d built-ins, want %d: %v", got, len(want), BuiltinNames())
	}
	d := NewData("ml", "fraud", "v1", "v2", 90*time.Second+time.Millisecond)
	if d.Window != "91s" || d.SubsetRegex != "v1|v2" {
		t.Fatalf("data %+v", d)
	}
	for _, name := range want {
		tpl, ok := Builtin(name)
		if !ok {
			t.Errorf("built-in %s missing", name)
			continue
		}
		r, err := tpl.Render(d)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, q := range []string{r.Query, r.SampleQuery, r.BadQuery, r.HistogramQuery} {
			if q == "" {
				continue
			}
			if strings.Contains(q, "{{") || !strings.Contains(q, `=~"v1|v2"`) || !strings.Contains(q, "sum by ("+tpl.VersionLabel) {
				t.Errorf("%s: query not grouped over both subsets: %s", name, q)
			}
		}
		if r.SampleQuery == "" {
			t.Errorf("%s has no sample query: minSamples could not apply", name)
		}
	}
	er, _ := Builtin("istio-error-rate")
	r, _ := er.Render(d)
	if !strings.Contains(r.BadQuery, `response_code=~"5.."`) || !strings.Contains(r.Query, " or (") {
		t.Errorf("error rate must count 5xx and read 0 when a version has none: %s", r.Query)
	}
}

func TestRenderErrorNamesField(t *testing.T) {
	_, err := Template{Name: "mine", Query: "sum({{.Nope}})"}.Render(NewData("ml", "s", "a", "b", time.Minute))
	if err == nil || !strings.Contains(err.Error(), "query") || !strings.Contains(err.Error(), ".Namespace") {
		t.Errorf("error %v should name the field and list the available ones", err)
	}
	_, err = Template{Name: "mine", BadQuery: "sum({{.Window"}.Render(NewData("ml", "s", "a", "b", time.Minute))
	if err == nil || !strings.Contains(err.Error(), "badQuery") {
		t.Errorf("parse error %v should name badQuery", err)
	}
}

type getter map[string]v1alpha1.MetricTemplate

func (g getter) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	mt, ok := g[key.Namespace+"/"+key.Name]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Group: "fulcrum.dev", Resource: "metrictemplates"}, key.Name)
	}
	*obj.(*v1alpha1.MetricTemplate) = mt
	return nil
}

func TestResolve(t *testing.T) {
	mt := v1alpha1.MetricTemplate{Spec: v1alpha1.MetricTemplateSpec{Query: "q", SampleQuery: "s", Provider: v1alpha1.Provider{Type: "prometheus"}}}
	mt.Name = "custom"
	g := getter{"ml/custom": mt}
	ctx := context.Background()
	if tpl, err := Resolve(ctx, g, "ml", v1alpha1.Metric{Name: "m", Template: "custom"}); err != nil || tpl.Query != "q" || tpl.VersionLabel != DefaultVersionLabel || tpl.Provider == nil {
		t.Errorf("custom: %+v %v", tpl, err)
	}
	if tpl, err := Resolve(ctx, g, "ml", v1alpha1.Metric{Name: "m", Template: "istio-error-rate"}); err != nil || tpl.Name != "istio-error-rate" {
		t.Errorf("built-in: %+v %v", tpl, err)
	}
	if tpl, err := Resolve(ctx, nil, "ml", v1alpha1.Metric{Name: "m", Query: "x"}); err != nil || tpl.Query != "x" {
		t.Errorf("inline: %+v %v", tpl, err)
	}
	if _, err := Resolve(ctx, g, "other", v1alpha1.Metric{Name: "m", Template: "custom"}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "other/custom") {
		t.Errorf("other namespace: %v", err)
	}
	if _, err := Resolve(ctx, nil, "ml", v1alpha1.Metric{Name: "m", Template: "custom"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("no getter: %v", err)
	}
}

func TestBuiltinsHaveBatchedForms(t *testing.T) {
	d := NewBatchData(90*time.Second + 900*time.Millisecond)
	if d.Window != "90s" {
		t.Fatalf("batched window %q, want 90s (rounded down)", d.Window)
	}
	for _, name := range BuiltinNames() {
		tpl, _ := Builtin(name)
		b := tpl.Batched
		if b == nil && strings.HasPrefix(name, "gateway-") {
			continue // the version is the service label: no batched form
		}
		if b == nil {
			t.Errorf("%s has no batched form", name)
			continue
		}
		ns, svc := b.IdentityLabels()
		if ns == "" || svc == "" || b.VersionLabel != tpl.VersionLabel || b.Name != name {
			t.Errorf("%s: batched identity %q %q, version label %q", name, ns, svc, b.VersionLabel)
		}
		r, err := b.Render(d)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, q := range []string{r.Query, r.SampleQuery, r.BadQuery, r.HistogramQuery} {
			if q == "" {
				continue
			}
			if strings.Contains(q, "=~") && !strings.Contains(q, `response_code=~`) ||
				strings.Contains(q, `namespace="`) || !strings.Contains(q, "sum by ("+ns+", "+svc+", "+tpl.VersionLabel) {
				t.Errorf("%s: batched query must select every rollout and group by identity and version: %s", name, q)
			}
		}
	}
	for _, mt := range []Template{{Name: "inline", Query: "x"}, FromMetricTemplate(&v1alpha1.MetricTemplate{})} {
		if mt.Batched != nil {
			t.Errorf("%s: only built-ins are batched", mt.Name)
		}
	}
}
