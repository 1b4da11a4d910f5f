package v1alpha1_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

// These tests run the CRDs in manifests/crd on a real kube-apiserver, so the
// CEL rules, defaults and the status subresource are checked by the same code
// that enforces them in a cluster.

var env *localenv.Env

func TestMain(m *testing.M) {
	os.Exit(localenv.Main(m, localenv.APIServerOnly(), &env))
}

// setup returns a client and a fresh namespace, or skips under -short.
func setup(t *testing.T) (client.Client, string) {
	t.Helper()
	if env == nil {
		t.Skip("needs the local API server (skipped with -short)")
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := env.CreateNamespace(context.Background(), "crd")
	if err != nil {
		t.Fatal(err)
	}
	return c, ns
}

// minimalRollout has only the required fields.
func minimalRollout(ns, name string) *v1alpha1.ModelRollout {
	return &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ModelRolloutSpec{
			VirtualService:  &v1alpha1.VirtualServiceRef{Name: "fraud"},
			DestinationRule: "fraud",
			Stable:          "v1",
		},
	}
}

// fullRollout sets every part of the spec: a canary with analysis metrics
// of each judge.
func fullRollout(ns, name string) *v1alpha1.ModelRollout {
	mr := minimalRollout(ns, name)
	mr.Spec.VirtualService.Routes = []string{"predict"}
	mr.Spec.Service = "fraud"
	mr.Spec.Candidate = "v2"
	mr.Spec.Strategy.Canary = &v1alpha1.CanaryStrategy{
		Steps:           []int32{1, 5, 25, 50, 100},
		MinStepDuration: metav1.Duration{Duration: time.Minute},
	}
	mr.Spec.Readiness.MinReadyPods = 2
	mr.Spec.OnMetricsUnavailable = v1alpha1.MetricsUnavailableRollback
	mr.Spec.Analysis = &v1alpha1.Analysis{
		Interval:          metav1.Duration{Duration: 30 * time.Second},
		MinSamples:        200,
		FailureLimit:      2,
		InconclusiveLimit: 10,
		Metrics: []v1alpha1.Metric{
			{Name: "error-rate", Template: "istio-error-rate", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.99}},
			{Name: "latency-p99", Template: "istio-latency-p99", Threshold: &v1alpha1.ThresholdJudge{Max: ptr.To(300.0)}},
			{Name: "latency-vs-stable", Template: "istio-latency-p99", Relative: &v1alpha1.RelativeJudge{MaxRatio: ptr.To(1.2)}},
			{Name: "prediction-drift", Query: `sum by (destination_version, le) (rate(model_score_bucket[{{.Window}}]))`, Drift: &v1alpha1.DriftJudge{MaxPSI: 0.2}},
			{Name: "split", Template: "istio-requests", SampleRatio: &v1alpha1.SampleRatioJudge{MaxPValue: 0.001}},
		},
	}
	return mr
}

func TestValidModelRolloutsAreAdmitted(t *testing.T) {
	c, ns := setup(t)
	ctx := context.Background()
	tests := map[string]struct {
		obj   *v1alpha1.ModelRollout
		check func(t *testing.T, got *v1alpha1.ModelRollout)
	}{
		"minimal, with defaults filled in": {
			obj: minimalRollout(ns, "minimal"),
			check: func(t *testing.T, got *v1alpha1.ModelRollout) {
				if got.Spec.OnMetricsUnavailable != v1alpha1.MetricsUnavailableHold {
					t.Errorf("onMetricsUnavailable defaulted to %q, want Hold", got.Spec.OnMetricsUnavailable)
				}
				if got.Spec.Readiness.MinReadyPods != 1 {
					t.Errorf("readiness.minReadyPods defaulted to %d, want 1", got.Spec.Readiness.MinReadyPods)
				}
			},
		},
		"full, with analysis metrics of every judge": {
			obj: fullRollout(ns, "full"),
			check: func(t *testing.T, got *v1alpha1.ModelRollout) {
				if n := len(got.Spec.Analysis.Metrics); n != 5 {
					t.Errorf("read back %d metrics, want 5", n)
				}
				if got.Spec.Strategy.Canary.MinStepDuration.Duration != time.Minute {
					t.Errorf("minStepDuration read back as %s", got.Spec.Strategy.Canary.MinStepDuration.Duration)
				}
			},
		},
		"an HTTPRoute's rules, versions as Services": {
			obj: func() *v1alpha1.ModelRollout {
				mr := minimalRollout(ns, "httproute")
				mr.Spec.VirtualService, mr.Spec.DestinationRule = nil, ""
				mr.Spec.HTTPRoute = &v1alpha1.GatewayRouteRef{Name: "fraud", Rules: []string{"predict"}}
				mr.Spec.Stable, mr.Spec.Candidate = "fraud-v1", "fraud-v2"
				return mr
			}(),
			check: func(t *testing.T, got *v1alpha1.ModelRollout) {
				if ref := got.Spec.RouteRef(); ref.Kind != v1alpha1.RouteKindHTTPRoute || ref.Routes[0] != "predict" {
					t.Errorf("route read back as %+v", ref)
				}
			},
		},
		"a GRPCRoute": {
			obj: func() *v1alpha1.ModelRollout {
				mr := minimalRollout(ns, "grpcroute")
				mr.Spec.VirtualService, mr.Spec.DestinationRule = nil, ""
				mr.Spec.GRPCRoute = &v1alpha1.GatewayRouteRef{Name: "triton"}
				return mr
			}(),
		},
		"scaling with scale-ahead and scale-down": {
			obj: func() *v1alpha1.ModelRollout {
				mr := minimalRollout(ns, "scaling")
				mr.Spec.Readiness.RequestsPerPod = ptr.To(20.0)
				mr.Spec.Scaling = &v1alpha1.Scaling{DeploymentName: "fraud-{{subset}}", ScaleAhead: true,
					ScaleDownAfter: &metav1.Duration{Duration: 30 * time.Minute}, ScaleDownTo: 1}
				return mr
			}(),
			check: func(t *testing.T, got *v1alpha1.ModelRollout) {
				if s := got.Spec.Scaling; s == nil || s.DeploymentFor("v2") != "fraud-v2" || s.ScaleDownAfter.Duration != 30*time.Minute {
					t.Errorf("spec.scaling read back as %+v", s)
				}
			},
		},
		"scale-ahead with a measured capacity": {
			obj: func() *v1alpha1.ModelRollout {
				mr := minimalRollout(ns, "measured")
				mr.Spec.Readiness.RequestsPerPodQuery = `min(model_capacity_rps{namespace="{{.Namespace}}"})`
				mr.Spec.Scaling = &v1alpha1.Scaling{DeploymentName: "fraud-{{subset}}", ScaleAhead: true}
				return mr
			}(),
		},
		"A/B/n split intent over three subsets": {
			obj: func() *v1alpha1.ModelRollout {
				mr := minimalRollout(ns, "abn")
				mr.Spec.Candidate = "v2"
				mr.Spec.Intent = &v1alpha1.Intent{ID: "split-1", Action: v1alpha1.IntentSplit, Actor: "alice", Reason: "A/B/n test",
					Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 50}, {Subset: "v2", Weight: 30}, {Subset: "v3", Weight: 20}}}
				return mr
			}(),
			check: func(t *testing.T, got *v1alpha1.ModelRollout) {
				if w := got.Spec.Intent.Weights; len(w) != 3 || w[2].Subset != "v3" || w[2].Weight != 20 {
					t.Errorf("intent weights read back as %v", w)
				}
			},
		},
		"start intent with a candidate": {
			obj: func() *v1alpha1.ModelRollout {
				mr := minimalRollout(ns, "start")
				mr.Spec.Candidate = "v2"
				mr.Spec.Intent = &v1alpha1.Intent{ID: "start-1", Action: v1alpha1.IntentStart}
				return mr
			}(),
		},
		// Go clients leave durations at zero; they must be omitted, not sent
		// as "0s", so that the CRD's defaults apply.
		"typed client leaving durations unset gets the defaults": {
			obj: func() *v1alpha1.ModelRollout {
				mr := minimalRollout(ns, "default-durations")
				mr.Spec.Candidate = "v2"
				mr.Spec.Strategy.Canary = &v1alpha1.CanaryStrategy{Steps: []int32{10, 100}}
				mr.Spec.Analysis = &v1alpha1.Analysis{Metrics: []v1alpha1.Metric{
					{Name: "errors", Template: "istio-error-rate", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.01}}}}
				return mr
			}(),
			check: func(t *testing.T, got *v1alpha1.ModelRollout) {
				// minStepDuration has no default: unset, the steps follow
				// the evidence (analysis.StepDwell).
				if d := got.Spec.Strategy.Canary.MinStepDuration.Duration; d != 0 {
					t.Errorf("minStepDuration defaulted to %s, want it left unset", d)
				}
				a := got.Spec.Analysis
				if a.Interval.Duration != 30*time.Second || a.FailureLimit != 2 || a.InconclusiveLimit != 10 || a.MinSamples != 100 {
					t.Errorf("analysis defaults: interval %s failureLimit %d inconclusiveLimit %d minSamples %d, want 30s 2 10 100",
						a.Interval.Duration, a.FailureLimit, a.InconclusiveLimit, a.MinSamples)
				}
				if c := a.Metrics[0].Sequential.Confidence; c != 0.99 {
					t.Errorf("sequential.confidence defaulted to %v, want 0.99", c)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := c.Create(ctx, tc.obj); err != nil {
				t.Fatalf("valid ModelRollout refused: %v", err)
			}
			got := &v1alpha1.ModelRollout{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(tc.obj), got); err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

// rawMinStepDuration, as an annotation on a test object, makes create send
// that literal spec.strategy.canary.minStepDuration.
const rawMinStepDuration = "test.fulcrum.dev/raw-min-step-duration"

// create sends mr as unstructured JSON so a test can set fields a typed
// client would omit.
func create(ctx context.Context, c client.Client, mr *v1alpha1.ModelRollout) error {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(mr)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ModelRollout"))
	if raw, ok := mr.Annotations[rawMinStepDuration]; ok {
		if err := unstructured.SetNestedField(u.Object, raw, "spec", "strategy", "canary", "minStepDuration"); err != nil {
			return err
		}
		u.SetAnnotations(nil)
	}
	return c.Create(ctx, u)
}

// rejection is one invalid object and where the API server must say it is
// wrong: the field path of a cause and words of its message.
type rejection struct {
	field   string
	message string
}

func TestInvalidModelRolloutsAreRejected(t *testing.T) {
	c, ns := setup(t)
	tests := map[string]struct {
		mutate func(mr *v1alpha1.ModelRollout)
		want   rejection
	}{
		"candidate equals stable": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Candidate = "v1" },
			rejection{"spec.candidate", "spec.candidate must differ from spec.stable"},
		},
		"steps not increasing": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Strategy.Canary.Steps = []int32{5, 25, 25, 100} },
			rejection{"spec.strategy.canary.steps", "must strictly increase"},
		},
		"steps decreasing": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Strategy.Canary.Steps = []int32{50, 10, 100} },
			rejection{"spec.strategy.canary.steps", "must strictly increase"},
		},
		"steps not ending at 100": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Strategy.Canary.Steps = []int32{5, 25, 50} },
			rejection{"spec.strategy.canary.steps", "must end at 100"},
		},
		"step above 100": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Strategy.Canary.Steps = []int32{50, 150} },
			rejection{"spec.strategy.canary.steps[1]", "less than or equal to 100"},
		},
		"split weights not summing to 100": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Intent = &v1alpha1.Intent{ID: "s", Action: v1alpha1.IntentSplit,
					Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 70}, {Subset: "v2", Weight: 20}}}
			},
			rejection{"spec.intent.weights", "must sum to 100"},
		},
		"split weight above 100": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Intent = &v1alpha1.Intent{ID: "s", Action: v1alpha1.IntentSplit,
					Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 120}, {Subset: "v2", Weight: 0}}}
			},
			rejection{"spec.intent.weights[0].weight", "less than or equal to 100"},
		},
		"stable not a DNS label": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Stable = "V1_stable" },
			rejection{"spec.stable", "spec.stable must be a DNS-1123 label"},
		},
		"candidate not a DNS label": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Candidate = "v2.beta" },
			rejection{"spec.candidate", "spec.candidate must be a DNS-1123 label"},
		},
		"destinationRule not a DNS subdomain": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.DestinationRule = "Fraud_DR" },
			rejection{"spec.destinationRule", "spec.destinationRule must be a DNS-1123 subdomain"},
		},
		"virtualService name not a DNS subdomain": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService.Name = "fraud vs" },
			rejection{"spec.virtualService.name", "spec.virtualService.name must be a DNS-1123 subdomain"},
		},
		"scaleAhead without requestsPerPod": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Scaling = &v1alpha1.Scaling{DeploymentName: "fraud-{{subset}}", ScaleAhead: true}
			},
			rejection{"spec.scaling.scaleAhead", "needs spec.readiness.requestsPerPod"},
		},
		"requestsPerPod and requestsPerPodQuery": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Readiness.RequestsPerPod = ptr.To(20.0)
				mr.Spec.Readiness.RequestsPerPodQuery = "min(model_capacity_rps)"
			},
			rejection{"spec.readiness.requestsPerPodQuery", "set requestsPerPod (a number) or requestsPerPodQuery"},
		},
		"deploymentName without {{subset}}": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Scaling = &v1alpha1.Scaling{DeploymentName: "fraud"} },
			rejection{"spec.scaling.deploymentName", "must contain {{subset}}"},
		},
		"deploymentName not a DNS name": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Scaling = &v1alpha1.Scaling{DeploymentName: "Fraud_{{subset}}"}
			},
			rejection{"spec.scaling.deploymentName", "must give a DNS-1123 subdomain"},
		},
		"scaleDownAfter 0s": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Scaling = &v1alpha1.Scaling{DeploymentName: "fraud-{{subset}}", ScaleDownAfter: &metav1.Duration{}}
			},
			rejection{"spec.scaling.scaleDownAfter", "must be between 1s and 720h"},
		},
		"minStepDuration 0s": {
			// A Go zero duration is omitted and defaulted, so send "0s" as a
			// YAML author would.
			func(mr *v1alpha1.ModelRollout) { mr.Annotations = map[string]string{rawMinStepDuration: "0s"} },
			rejection{"spec.strategy.canary.minStepDuration", "must be between 1s and 24h"},
		},
		"minStepDuration 48h": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Strategy.Canary.MinStepDuration.Duration = 48 * time.Hour },
			rejection{"spec.strategy.canary.minStepDuration", "must be between 1s and 24h"},
		},
		"warm-up objective above 1h": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Readiness.Warmup = &v1alpha1.WarmupGate{MaxP99: metav1.Duration{Duration: 2 * time.Hour}}
			},
			rejection{"spec.readiness.warmup.maxP99", "must be between 1ms and 1h"},
		},
		"warm-up window below 5s": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Readiness.Warmup = &v1alpha1.WarmupGate{MaxP99: metav1.Duration{Duration: 200 * time.Millisecond}, Window: metav1.Duration{Duration: time.Second}}
			},
			rejection{"spec.readiness.warmup.window", "must be between 5s and 1h"},
		},
		"warm-up URL not http": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Readiness.Warmup = &v1alpha1.WarmupGate{MaxP99: metav1.Duration{Duration: 200 * time.Millisecond},
					Requests: &v1alpha1.WarmupRequests{ConfigMap: "w", URL: "file:///etc/passwd"}}
			},
			rejection{"spec.readiness.warmup.requests.url", "must be an http or https URL"},
		},
		"analysis interval below 1s": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Interval.Duration = 500 * time.Millisecond },
			rejection{"spec.analysis.interval", "spec.analysis.interval must be between 1s and 1h"},
		},
		"analysis interval above 1h": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Interval.Duration = 2 * time.Hour },
			rejection{"spec.analysis.interval", "spec.analysis.interval must be between 1s and 1h"},
		},
		"metric with two judges": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Analysis.Metrics[1].Relative = &v1alpha1.RelativeJudge{MaxRatio: ptr.To(1.5)}
			},
			rejection{"spec.analysis.metrics[1]", "set exactly one judge"},
		},
		"metric with no judge": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics[1].Threshold = nil },
			rejection{"spec.analysis.metrics[1]", "set exactly one judge"},
		},
		"metric with neither template nor query": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics[0].Template = "" },
			rejection{"spec.analysis.metrics[0]", "set exactly one of template"},
		},
		"metric with both template and query": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics[0].Query = "sum(up)" },
			rejection{"spec.analysis.metrics[0]", "set exactly one of template"},
		},
		"threshold min above max": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics[1].Threshold.Min = ptr.To(500.0) },
			rejection{"spec.analysis.metrics[1].threshold", "threshold.min must not exceed threshold.max"},
		},
		"threshold with no bound": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics[1].Threshold.Max = nil },
			rejection{"spec.analysis.metrics[1].threshold", "set min, max or both"},
		},
		"sequential confidence out of range": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics[0].Sequential.Confidence = 1.5 },
			rejection{"spec.analysis.metrics[0].sequential.confidence", "sequential.confidence must be in (0.5, 1)"},
		},
		"sequential maxIncrease out of range": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics[0].Sequential.MaxIncrease = -0.1 },
			rejection{"spec.analysis.metrics[0].sequential.maxIncrease", "sequential.maxIncrease must be a fraction"},
		},
		"relative judge with both bounds": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics[2].Relative.MaxIncrease = ptr.To(10.0) },
			rejection{"spec.analysis.metrics[2].relative", "set exactly one of maxRatio"},
		},
		"metric name not a DNS label": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics[0].Name = "Error_Rate" },
			rejection{"spec.analysis.metrics[0].name", "metric name must be a DNS-1123 label"},
		},
		"split intent without weights": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Intent = &v1alpha1.Intent{ID: "s", Action: v1alpha1.IntentSplit}
			},
			rejection{"spec.intent.weights", "give at least two subset weights for action Split"},
		},
		"weights on a non-split intent": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Intent = &v1alpha1.Intent{ID: "p", Action: v1alpha1.IntentPause,
					Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 50}, {Subset: "v2", Weight: 50}}}
			},
			rejection{"spec.intent.weights", "none for other actions"},
		},
		"start intent without candidate": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Candidate = ""
				mr.Spec.Intent = &v1alpha1.Intent{ID: "go", Action: v1alpha1.IntentStart}
			},
			rejection{"spec.intent.action", "action Start needs spec.candidate"},
		},
		"unknown intent action": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.Intent = &v1alpha1.Intent{ID: "x", Action: "Explode"} },
			rejection{"spec.intent.action", `supported values: "Start"`},
		},
		"unknown onMetricsUnavailable policy": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.OnMetricsUnavailable = "Ignore" },
			rejection{"spec.onMetricsUnavailable", `supported values: "Hold", "Rollback"`},
		},
		"no route object": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService, mr.Spec.DestinationRule = nil, "" },
			rejection{"spec", "exactly one of virtualService (Istio, with destinationRule), httpRoute or grpcRoute"},
		},
		"a virtualService and an httpRoute": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.HTTPRoute = &v1alpha1.GatewayRouteRef{Name: "fraud"} },
			rejection{"spec", "exactly one of virtualService"},
		},
		"virtualService without destinationRule": {
			func(mr *v1alpha1.ModelRollout) { mr.Spec.DestinationRule = "" },
			rejection{"spec.destinationRule", "a virtualService needs the DestinationRule"},
		},
		"httpRoute with a destinationRule": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.VirtualService, mr.Spec.HTTPRoute = nil, &v1alpha1.GatewayRouteRef{Name: "fraud"}
			},
			rejection{"spec.destinationRule", "an httpRoute or grpcRoute takes none"},
		},
		"grpcRoute with a shadow stage": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.VirtualService, mr.Spec.DestinationRule, mr.Spec.GRPCRoute = nil, "", &v1alpha1.GatewayRouteRef{Name: "fraud"}
				mr.Spec.Strategy.Canary.Shadow = &v1alpha1.ShadowStage{Percent: 100, MinDuration: metav1.Duration{Duration: time.Minute}}
			},
			rejection{"spec.strategy", "need an Istio virtualService"},
		},
		"httpRoute with an upper-case name": {
			func(mr *v1alpha1.ModelRollout) {
				mr.Spec.VirtualService, mr.Spec.DestinationRule, mr.Spec.HTTPRoute = nil, "", &v1alpha1.GatewayRouteRef{Name: "Fraud"}
			},
			rejection{"spec.httpRoute.name", "must be a DNS-1123 subdomain"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mr := fullRollout(ns, "invalid")
			tc.mutate(mr)
			assertRejected(t, create(context.Background(), c, mr), tc.want)
		})
	}
}

func TestInvalidMetricTemplatesAreRejected(t *testing.T) {
	c, ns := setup(t)
	valid := func() *v1alpha1.MetricTemplate {
		return &v1alpha1.MetricTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "errors"},
			Spec: v1alpha1.MetricTemplateSpec{
				Provider:    v1alpha1.Provider{Type: v1alpha1.ProviderPrometheus},
				BadQuery:    `sum by (destination_version) (increase(istio_requests_total{response_code=~"5.."}[{{.Window}}]))`,
				SampleQuery: `sum by (destination_version) (increase(istio_requests_total[{{.Window}}]))`,
			},
		}
	}
	t.Run("valid template is admitted with defaults", func(t *testing.T) {
		mt := valid()
		if err := c.Create(context.Background(), mt); err != nil {
			t.Fatalf("valid MetricTemplate refused: %v", err)
		}
		if mt.Spec.VersionLabel != "destination_version" {
			t.Errorf("versionLabel defaulted to %q, want destination_version", mt.Spec.VersionLabel)
		}
	})
	tests := map[string]struct {
		mutate func(mt *v1alpha1.MetricTemplate)
		want   rejection
	}{
		"badQuery without sampleQuery": {
			func(mt *v1alpha1.MetricTemplate) { mt.Spec.SampleQuery = "" },
			rejection{"spec.sampleQuery", "spec.sampleQuery is required with spec.badQuery"},
		},
		"no query at all": {
			func(mt *v1alpha1.MetricTemplate) { mt.Spec.BadQuery, mt.Spec.SampleQuery = "", "" },
			rejection{"spec", "set at least one of query, badQuery"},
		},
		"unknown provider type": {
			func(mt *v1alpha1.MetricTemplate) { mt.Spec.Provider.Type = "datadog" },
			rejection{"spec.provider.type", `supported values: "prometheus"`},
		},
		"provider address without scheme": {
			func(mt *v1alpha1.MetricTemplate) { mt.Spec.Provider.Address = "prometheus:9090" },
			rejection{"spec.provider.address", "should match"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mt := valid()
			mt.Name = "invalid"
			tc.mutate(mt)
			assertRejected(t, c.Create(context.Background(), mt), tc.want)
		})
	}
}

// assertRejected checks that err is an Invalid error with a cause on the
// wanted field whose message says what is wrong.
func assertRejected(t *testing.T, err error, want rejection) {
	t.Helper()
	if err == nil {
		t.Fatalf("invalid object admitted; want a rejection on %s", want.field)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("error %v is not Invalid", err)
	}
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Details == nil {
		t.Fatalf("error %v carries no causes", err)
	}
	var causes []string
	for _, c := range status.Status().Details.Causes {
		if c.Field == want.field && strings.Contains(c.Message, want.message) {
			return
		}
		causes = append(causes, c.Field+": "+c.Message)
	}
	t.Errorf("no cause on %s saying %q; causes:\n  %s", want.field, want.message, strings.Join(causes, "\n  "))
}

func TestStatusGoesThroughTheSubresource(t *testing.T) {
	c, ns := setup(t)
	ctx := context.Background()
	mr := fullRollout(ns, "status")
	if err := c.Create(ctx, mr); err != nil {
		t.Fatal(err)
	}
	if mr.Status.Phase != "" {
		t.Fatalf("status set on create: %+v", mr.Status)
	}

	// A write to the main resource changes the spec and drops status changes.
	mr.Spec.Readiness.MinReadyPods = 3
	mr.Status.Phase = v1alpha1.PhaseProgressing
	if err := c.Update(ctx, mr); err != nil {
		t.Fatal(err)
	}
	got := &v1alpha1.ModelRollout{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(mr), got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Readiness.MinReadyPods != 3 {
		t.Errorf("spec update lost: minReadyPods %d, want 3", got.Spec.Readiness.MinReadyPods)
	}
	if got.Status.Phase != "" {
		t.Errorf("spec update changed status.phase to %q", got.Status.Phase)
	}
	gen := got.Generation

	// A write to /status changes the status and drops spec changes.
	got.Status.Phase = v1alpha1.PhaseProgressing
	got.Status.Weights = []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 95}, {Subset: "v2", Weight: 5}}
	got.Status.CandidateWeight = 5
	got.Status.ObservedGeneration = gen
	got.Spec.Readiness.MinReadyPods = 7
	if err := c.Status().Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	after := &v1alpha1.ModelRollout{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(mr), after); err != nil {
		t.Fatal(err)
	}
	if after.Status.Phase != v1alpha1.PhaseProgressing || after.Status.CandidateWeight != 5 || len(after.Status.Weights) != 2 {
		t.Errorf("status update lost: %+v", after.Status)
	}
	if after.Spec.Readiness.MinReadyPods != 3 {
		t.Errorf("status update changed spec.readiness.minReadyPods to %d", after.Spec.Readiness.MinReadyPods)
	}
	if after.Generation != gen {
		t.Errorf("status update bumped generation %d -> %d", gen, after.Generation)
	}

	// Status is validated too.
	after.Status.Phase = "Exploded"
	err := c.Status().Update(ctx, after)
	assertRejected(t, err, rejection{"status.phase", `supported values: "Stable"`})
}
