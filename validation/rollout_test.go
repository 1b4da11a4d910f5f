package validation_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

type wantErr struct {
	path string
	typ  field.ErrorType
	msg  string // substring of the detail
}

func assertErrors(t *testing.T, got field.ErrorList, want []wantErr) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(got), len(want), got.ToAggregate())
	}
	for i, w := range want {
		g := got[i]
		if g.Field != w.path || g.Type != w.typ || !strings.Contains(g.Detail, w.msg) {
			t.Errorf("error %d = %s %s %q\nwant %s %s containing %q", i, g.Field, g.Type, g.Detail, w.path, w.typ, w.msg)
		}
	}
}

func TestValidateRolloutRejects(t *testing.T) {
	other := rollout(named("other"), func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService.Routes = []string{"explain", "predict"} })
	tests := []struct {
		name  string
		mr    *v1alpha1.ModelRollout
		extra func(*fakeLookups)
		want  []wantErr
	}{
		{"virtual service missing", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService.Name = "nope" }), nil,
			[]wantErr{{"spec.virtualService.name", field.ErrorTypeInvalid, "VirtualService ml/nope does not exist: create it before the ModelRollout"}}},
		{"named route missing", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService.Routes = []string{"predict", "score"} }), nil,
			[]wantErr{{"spec.virtualService.routes[1]", field.ErrorTypeInvalid, `has no HTTP route named "score" (it has: "predict", "explain")`}}},
		{"no route named, several routes", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService.Routes = nil }), nil,
			[]wantErr{{"spec.virtualService.routes", field.ErrorTypeRequired, `has 2 HTTP routes ("predict", "explain"): name the ones Fulcrum manages`}}},
		{"no http routes", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService = &v1alpha1.VirtualServiceRef{Name: "empty"} }), nil,
			[]wantErr{{"spec.virtualService.name", field.ErrorTypeInvalid, "VirtualService ml/empty has no HTTP routes"}}},
		{"route without destinations", rollout(func(mr *v1alpha1.ModelRollout) {
			mr.Spec.VirtualService = &v1alpha1.VirtualServiceRef{Name: "redirect", Routes: []string{"old"}}
		}), nil,
			[]wantErr{{"spec.virtualService.routes[0]", field.ErrorTypeInvalid, `HTTP route "old" of VirtualService ml/redirect has no route destinations`}}},
		{"destination rule missing", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.DestinationRule = "gone" }), nil,
			[]wantErr{{"spec.destinationRule", field.ErrorTypeInvalid, "DestinationRule ml/gone does not exist"}}},
		{"stable subset missing", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.Stable = "v0" }), nil,
			[]wantErr{{"spec.stable", field.ErrorTypeInvalid, `stable subset "v0" is not defined in DestinationRule ml/fraud (it defines: "v1", "v2", "v3")`}}},
		{"candidate subset missing", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.Candidate = "v9" }), nil,
			[]wantErr{{"spec.candidate", field.ErrorTypeInvalid, `candidate subset "v9" is not defined`}}},
		{"split subset missing", rollout(func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Intent = &v1alpha1.Intent{ID: "a", Action: v1alpha1.IntentSplit, Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 50}, {Subset: "v7", Weight: 50}}}
		}), nil,
			[]wantErr{{"spec.intent.weights[1].subset", field.ErrorTypeInvalid, `split subset "v7" is not defined`}}},
		{"unknown template", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics[1].Template = "p99" }), nil,
			[]wantErr{{"spec.analysis.metrics[1].template", field.ErrorTypeInvalid, `no MetricTemplate ml/p99 and no built-in template of that name; create the MetricTemplate, or use a built-in one ("gateway-error-rate"`}}},
		{"template with bad promql", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics[1].Template = "broken" }), nil,
			[]wantErr{{"spec.analysis.metrics[1].template", field.ErrorTypeInvalid, "MetricTemplate ml/broken is broken: spec.query: Invalid value"}}},
		{"judge needs queries the template lacks", rollout(func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Analysis.Metrics[1] = v1alpha1.Metric{Name: "latency", Template: "latency", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.01, Confidence: 0.99}}
		}), nil,
			[]wantErr{{"spec.analysis.metrics[1].template", field.ErrorTypeInvalid, "the sequential judge needs MetricTemplate ml/latency to set spec.badQuery and spec.sampleQuery"}}},
		{"judge a built-in template cannot feed", rollout(func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Analysis.Metrics[0].Template = "istio-request-count"
		}), nil,
			[]wantErr{{"spec.analysis.metrics[0].template", field.ErrorTypeInvalid, "the sequential judge needs a template with spec.badQuery, and built-in template istio-request-count has none"}}},
		{"inline query bad promql", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics[2].Query = `sum(rate(x[{{.Window}}])` }), nil,
			[]wantErr{{"spec.analysis.metrics[2].query", field.ErrorTypeInvalid, "not valid PromQL once rendered (sum(rate(x[300s])):"}}},
		{"inline query bad template", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics[2].Query = `sum(x{a="{{.Nope}}"})` }), nil,
			[]wantErr{{"spec.analysis.metrics[2].query", field.ErrorTypeInvalid, "field .Nope is not allowed in a query template"}}},
		{"route managed by another rollout", rollout(), func(f *fakeLookups) { f.mrs = append(f.mrs, *other) },
			[]wantErr{{"spec.virtualService.routes[0]", field.ErrorTypeInvalid, `HTTP route "predict" of VirtualService ml/fraud is already managed by ModelRollout ml/other`}}},
		{"unnamed single route managed by another rollout", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService = &v1alpha1.VirtualServiceRef{Name: "single"} }),
			func(f *fakeLookups) {
				f.mrs = append(f.mrs, *rollout(named("first"), func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService = &v1alpha1.VirtualServiceRef{Name: "single"} }))
			},
			[]wantErr{{"spec.virtualService.routes", field.ErrorTypeInvalid, "the unnamed route spec.http[0] of VirtualService ml/single is already managed by ModelRollout ml/first"}}},
		{"lookup failure is internal, not a verdict", rollout(), func(f *fakeLookups) { f.err = errors.New("connection refused") },
			[]wantErr{
				{"spec.virtualService.name", field.ErrorTypeInternal, "read VirtualService ml/fraud: connection refused"},
				{"spec.destinationRule", field.ErrorTypeInternal, "read DestinationRule ml/fraud: connection refused"},
				{"spec.analysis.metrics[1].template", field.ErrorTypeInternal, "read MetricTemplate ml/latency: connection refused"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := cluster()
			if tt.extra != nil {
				tt.extra(l)
			}
			errs, _ := validation.ValidateRollout(context.Background(), l, tt.mr, inline)
			assertErrors(t, errs, tt.want)
		})
	}
}

func TestValidateRolloutAdmitsWithWarnings(t *testing.T) {
	tests := []struct {
		name  string
		mr    *v1alpha1.ModelRollout
		warns []string // substrings, in order
	}{
		{"well formed", rollout(), nil},
		{"sequential judge on a latency histogram with an SLO", rollout(func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Analysis.Metrics[0].Template = "istio-latency-p99"
			mr.Spec.Analysis.Metrics[0].Sequential.SLOMilliseconds = ptr(int64(250))
		}), nil},
		{"single unnamed route, no routes named", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService = &v1alpha1.VirtualServiceRef{Name: "single"} }), nil},
		{"small minSamples", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.MinSamples = 20 }),
			[]string{"spec.analysis.minSamples is 20: verdicts on fewer than 50 requests are mostly noise"}},
		{"big jump", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.Strategy.Canary.Steps = []int32{10, 100} }),
			[]string{"spec.strategy.canary.steps[1]: moves the candidate from 10% to 100% in one step (90 points)"}},
		{"big first step", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.Strategy.Canary.Steps = []int32{60, 100} }),
			[]string{"spec.strategy.canary.steps[0]: moves the candidate from 0% to 60%"}},
		{"no metrics", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis.Metrics = nil }),
			[]string{"spec.analysis.metrics is empty: steps advance on time alone"}},
		{"no analysis", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.Analysis = nil }),
			[]string{"spec.analysis.metrics is empty"}},
		{"failureLimit 1 with low confidence", rollout(func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Analysis.FailureLimit = 1
			mr.Spec.Analysis.Metrics[0].Sequential.Confidence = 0.9
		}), []string{"spec.analysis.metrics[0] (error-rate): confidence 0.9 with failureLimit 1 rolls a healthy candidate back on a single false alarm (up to 10% of rollouts)"}},
		{"rollback on missing metrics with failureLimit 1", rollout(func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Analysis.FailureLimit = 1
			mr.Spec.OnMetricsUnavailable = v1alpha1.MetricsUnavailableRollback
		}), []string{"spec.onMetricsUnavailable is Rollback with spec.analysis.failureLimit 1"}},
		{"ratio below one", rollout(func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Analysis.Metrics[1] = v1alpha1.Metric{Name: "latency", Template: "latency", Relative: &v1alpha1.RelativeJudge{MaxRatio: ptr(0.8)}}
		}), []string{"spec.analysis.metrics[1] (latency): relative.maxRatio 0.8 is below 1"}},
		{"step shorter than interval", rollout(func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Strategy.Canary.MinStepDuration = metav1.Duration{Duration: 10e9}
		}), []string{"spec.strategy.canary.minStepDuration (10s) is shorter than spec.analysis.interval (30s)"}},
		{"shadow stage over a route that mirrors elsewhere", rollout(func(mr *v1alpha1.ModelRollout) {
			mr.Spec.VirtualService = &v1alpha1.VirtualServiceRef{Name: "mirrored", Routes: []string{"predict"}}
			mr.Spec.Strategy.Canary.Shadow = &v1alpha1.ShadowStage{Percent: 100}
		}), []string{`spec.strategy.canary.shadow: HTTP route "predict" of VirtualService ml/mirrored already mirrors requests to audit.ml.svc.cluster.local`}},
		{"shadow stage over a route without a mirror", rollout(func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Strategy.Canary.Shadow = &v1alpha1.ShadowStage{Percent: 100}
		}), nil},
		{"destination host differs from the DestinationRule's", rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.DestinationRule = "other" }),
			[]string{`sends traffic to host "fraud", but DestinationRule ml/other is for host "other"`, `sends traffic to host "fraud", but DestinationRule ml/other`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs, warns := validation.ValidateRollout(context.Background(), cluster(), tt.mr, inline)
			if len(errs) != 0 {
				t.Fatalf("unexpected errors: %v", errs.ToAggregate())
			}
			if len(warns) != len(tt.warns) {
				t.Fatalf("got %d warnings, want %d:\n%s", len(warns), len(tt.warns), strings.Join(warns, "\n"))
			}
			for i, w := range tt.warns {
				if !strings.Contains(warns[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warns[i], w)
				}
			}
		})
	}
}

func TestDeletedOrOtherRouteRolloutsDoNotConflict(t *testing.T) {
	l := cluster()
	gone := rollout(named("gone"))
	gone.DeletionTimestamp = &metav1.Time{}
	l.mrs = []v1alpha1.ModelRollout{
		*gone,
		*rollout(named("explainer"), func(mr *v1alpha1.ModelRollout) { mr.Spec.VirtualService.Routes = []string{"explain"} }),
		*rollout(), // itself, as on update
	}
	errs, _ := validation.ValidateRollout(context.Background(), l, rollout(), inline)
	assertErrors(t, errs, nil)
}
