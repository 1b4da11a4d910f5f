package validation_test

import (
	"context"

	"time"

	networking "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// fakeLookups serves objects from maps keyed by name (one namespace).
type fakeLookups struct {
	vs  map[string]*istiov1.VirtualService
	dr  map[string]*istiov1.DestinationRule
	mt  map[string]*v1alpha1.MetricTemplate
	mrs []v1alpha1.ModelRollout
	err error // returned by every call when set
}

func notFound(res, name string) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: res}, name)
}

func (f *fakeLookups) VirtualService(_ context.Context, _, name string) (*istiov1.VirtualService, error) {
	if f.err != nil {
		return nil, f.err
	}
	if v, ok := f.vs[name]; ok {
		return v, nil
	}
	return nil, notFound("virtualservices", name)
}

func (f *fakeLookups) DestinationRule(_ context.Context, _, name string) (*istiov1.DestinationRule, error) {
	if f.err != nil {
		return nil, f.err
	}
	if v, ok := f.dr[name]; ok {
		return v, nil
	}
	return nil, notFound("destinationrules", name)
}

func (f *fakeLookups) MetricTemplate(_ context.Context, _, name string) (*v1alpha1.MetricTemplate, error) {
	if f.err != nil {
		return nil, f.err
	}
	if v, ok := f.mt[name]; ok {
		return v, nil
	}
	return nil, notFound("metrictemplates", name)
}

func (f *fakeLookups) ModelRollouts(context.Context, string) ([]v1alpha1.ModelRollout, error) {
	return f.mrs, f.err
}

const ns = "ml"

func dest(subset string, weight int32) *networking.HTTPRouteDestination {
	return &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: "fraud", Subset: subset}, Weight: weight}
}

func httpRoute(name string, dests ...*networking.HTTPRouteDestination) *networking.HTTPRoute {
	return &networking.HTTPRoute{Name: name, Route: dests}
}

func virtualService(name string, routes ...*networking.HTTPRoute) *istiov1.VirtualService {
	return &istiov1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       networking.VirtualService{Hosts: []string{"fraud"}, Http: routes},
	}
}

func destinationRule(name, host string, subsets ...string) *istiov1.DestinationRule {
	dr := &istiov1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	dr.Spec.Host = host
	for _, s := range subsets {
		dr.Spec.Subsets = append(dr.Spec.Subsets, &networking.Subset{Name: s, Labels: map[string]string{"version": s}})
	}
	return dr
}

func metricTemplate(name string, spec v1alpha1.MetricTemplateSpec) *v1alpha1.MetricTemplate {
	spec.Provider.Type = v1alpha1.ProviderPrometheus
	return &v1alpha1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec}
}

// cluster is a namespace where a well-formed rollout "fraud" validates.
func cluster() *fakeLookups {
	return &fakeLookups{
		vs: map[string]*istiov1.VirtualService{
			"fraud":  virtualService("fraud", httpRoute("predict", dest("v1", 100), dest("v2", 0)), httpRoute("explain", dest("v1", 100))),
			"single": virtualService("single", httpRoute("", dest("v1", 100))),
			"mirrored": virtualService("mirrored", &networking.HTTPRoute{Name: "predict", Route: []*networking.HTTPRouteDestination{dest("v1", 100), dest("v2", 0)},
				Mirror: &networking.Destination{Host: "audit.ml.svc.cluster.local"}}),
			"empty": virtualService("empty"),
			"redirect": virtualService("redirect", &networking.HTTPRoute{Name: "old",
				Redirect: &networking.HTTPRedirect{Uri: "/new"}}),
		},
		dr: map[string]*istiov1.DestinationRule{
			"fraud": destinationRule("fraud", "fraud.ml.svc.cluster.local", "v1", "v2", "v3"),
			"other": destinationRule("other", "other", "v1", "v2"),
		},
		mt: map[string]*v1alpha1.MetricTemplate{
			"errors": metricTemplate("errors", v1alpha1.MetricTemplateSpec{
				BadQuery:    `sum by ({{.VersionLabel}}) (increase(istio_requests_total{destination_service_name="{{.Service}}",response_code=~"5.."}[{{.Window}}]))`,
				SampleQuery: `sum by ({{.VersionLabel}}) (increase(istio_requests_total{destination_service_name="{{.Service}}"}[{{.Window}}]))`,
			}),
			"latency": metricTemplate("latency", v1alpha1.MetricTemplateSpec{
				Query: `histogram_quantile(0.99, sum by (le, {{.VersionLabel}}) (rate(istio_request_duration_milliseconds_bucket{destination_version=~"{{.Subsets}}"}[{{.Window}}])))`,
			}),
			"broken": metricTemplate("broken", v1alpha1.MetricTemplateSpec{Query: `sum(rate(x[{{.Window}}]) by`}),
			"conversions": metricTemplate("conversions", v1alpha1.MetricTemplateSpec{
				SuccessQuery: `sum by ({{.VersionLabel}}) (increase(checkout_total{app="{{.Service}}",paid="true"}[{{.Window}}]))`,
				SampleQuery:  `sum by ({{.VersionLabel}}) (increase(checkout_total{app="{{.Service}}"}[{{.Window}}]))`,
			}),
		},
	}
}

func ptr[T any](v T) *T { return &v }

// rollout is a well-formed rollout; opts adjust it.
func rollout(opts ...func(*v1alpha1.ModelRollout)) *v1alpha1.ModelRollout {
	mr := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: ns},
		Spec: v1alpha1.ModelRolloutSpec{
			VirtualService:  &v1alpha1.VirtualServiceRef{Name: "fraud", Routes: []string{"predict"}},
			DestinationRule: "fraud",
			Stable:          "v1",
			Candidate:       "v2",
			Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{
				Steps: []int32{5, 25, 50, 100}, MinStepDuration: metav1.Duration{Duration: time.Minute}}},
			Analysis: &v1alpha1.Analysis{
				Interval: metav1.Duration{Duration: 30 * time.Second}, MinSamples: 200, FailureLimit: 2, InconclusiveLimit: 10,
				Metrics: []v1alpha1.Metric{
					{Name: "error-rate", Template: "istio-error-rate", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.99}},
					{Name: "latency", Template: "latency", Threshold: &v1alpha1.ThresholdJudge{Max: ptr(300.0)}},
					{Name: "custom", Query: `sum by (destination_version) (rate(model_score_count{namespace="{{.Namespace}}"}[{{.Window}}]))`, Threshold: &v1alpha1.ThresholdJudge{Min: ptr(1.0)}},
				},
			},
			OnMetricsUnavailable: v1alpha1.MetricsUnavailableHold,
		},
	}
	for _, o := range opts {
		o(mr)
	}
	return mr
}

func named(name string) func(*v1alpha1.ModelRollout) {
	return func(mr *v1alpha1.ModelRollout) { mr.Name = name }
}
