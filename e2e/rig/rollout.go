package rig

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// RolloutConfig is a ModelRollout for a Model with short, test-sized times.
type RolloutConfig struct {
	// Stable and Candidate subsets; Candidate empty creates an idle rollout.
	Stable, Candidate string
	// Steps of the canary; [20, 50, 100] when nil.
	Steps []int32
	// MinStepDuration (5s) and Interval (2s) when zero. A step advances on
	// the last round before its time is up, so the step must be long enough
	// for that round's window to hold MinSamples candidate requests.
	MinStepDuration, Interval time.Duration
	// FailureLimit (2), MinSamples (50), InconclusiveLimit (30) when zero.
	FailureLimit      int32
	MinSamples        int64
	InconclusiveLimit int32
	// Metrics; StandardMetrics when nil.
	Metrics []v1alpha1.Metric
	// OnMetricsUnavailable; Hold when empty.
	OnMetricsUnavailable v1alpha1.MetricsUnavailablePolicy
	// Experiment replaces the canary strategy (Steps, MinStepDuration are
	// then unused); Candidate names one of its arms to start it.
	Experiment *v1alpha1.ExperimentStrategy
}

// StandardMetrics judge errors (sequential, 5 points over stable at 99%),
// p99 latency (at most 100 ms) and prediction drift (PSI at most 0.2): what a
// healthy test model passes within a few rounds at a few hundred requests per
// second, and what each injected regression fails.
func StandardMetrics() []v1alpha1.Metric {
	return []v1alpha1.Metric{
		{Name: "error-rate", Template: "istio-error-rate", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.05, Confidence: 0.99}},
		{Name: "latency-p99", Template: "istio-latency-p99", Threshold: &v1alpha1.ThresholdJudge{Max: ptr.To(250.0)}}, // headroom: a loaded CI machine adds real latency to the healthy model
		{Name: "prediction-drift", Template: "prediction-psi", Drift: &v1alpha1.DriftJudge{MaxPSI: 0.2, Confidence: 0.99}},
	}
}

// NewRollout is the ModelRollout for cfg, named like the model.
func (m *Model) NewRollout(cfg RolloutConfig) *v1alpha1.ModelRollout {
	def := func(d, v time.Duration) time.Duration {
		if d == 0 {
			return v
		}
		return d
	}
	if cfg.Steps == nil {
		cfg.Steps = []int32{20, 50, 100}
	}
	if cfg.FailureLimit == 0 {
		cfg.FailureLimit = 2
	}
	if cfg.MinSamples == 0 {
		cfg.MinSamples = 50
	}
	if cfg.InconclusiveLimit == 0 {
		cfg.InconclusiveLimit = 30
	}
	if cfg.Metrics == nil {
		cfg.Metrics = StandardMetrics()
		if m.gatewayRouted() {
			cfg.Metrics = GatewayMetrics()
		}
	}
	if cfg.OnMetricsUnavailable == "" {
		cfg.OnMetricsUnavailable = v1alpha1.MetricsUnavailableHold
	}
	if cfg.Stable == "" {
		cfg.Stable = "v1"
	}
	strategy := v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{
		Steps: cfg.Steps, MinStepDuration: metav1.Duration{Duration: def(cfg.MinStepDuration, 5*time.Second)},
	}}
	if cfg.Experiment != nil {
		strategy = v1alpha1.Strategy{Experiment: cfg.Experiment.DeepCopy()}
	}
	mr := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.NS},
		Spec: v1alpha1.ModelRolloutSpec{
			VirtualService:  &v1alpha1.VirtualServiceRef{Name: m.Name, Routes: []string{"predict"}},
			DestinationRule: m.Name,
			Service:         m.Name,
			Stable:          m.VersionName(cfg.Stable),
			Candidate:       m.VersionName(cfg.Candidate),
			Strategy:        strategy,
			Readiness:       v1alpha1.Readiness{MinReadyPods: 1},
			Analysis: &v1alpha1.Analysis{
				Interval:          metav1.Duration{Duration: def(cfg.Interval, 2*time.Second)},
				MinSamples:        cfg.MinSamples,
				FailureLimit:      cfg.FailureLimit,
				InconclusiveLimit: cfg.InconclusiveLimit,
				Metrics:           cfg.Metrics,
			},
			OnMetricsUnavailable: cfg.OnMetricsUnavailable,
		},
	}
	if m.gatewayRouted() {
		mr.Spec.VirtualService, mr.Spec.DestinationRule = nil, ""
		mr.Spec.HTTPRoute = &v1alpha1.GatewayRouteRef{Name: m.Name, Rules: []string{"predict"}}
	}
	return mr
}

// CreateRollout creates the ModelRollout for cfg as the cluster admin.
func (m *Model) CreateRollout(ctx context.Context, cfg RolloutConfig) (*v1alpha1.ModelRollout, error) {
	mr := m.NewRollout(cfg)
	if err := m.env.Client.Create(ctx, mr); err != nil {
		return nil, fmt.Errorf("create ModelRollout %s/%s: %w", mr.Namespace, mr.Name, err)
	}
	return mr, nil
}

// Rollout reads the model's ModelRollout from the API server.
func (m *Model) Rollout(ctx context.Context) (*v1alpha1.ModelRollout, error) {
	var mr v1alpha1.ModelRollout
	err := m.env.Client.Get(ctx, types.NamespacedName{Namespace: m.NS, Name: m.Name}, &mr)
	return &mr, err
}

// HistoryTypes lists the history entry types, oldest first.
func HistoryTypes(mr *v1alpha1.ModelRollout) []string {
	var out []string
	for _, h := range mr.Status.History {
		out = append(out, h.Type)
	}
	return out
}

// Verdicts renders the rollout's recent rounds as one line each, for
// failure messages and logs.
func Verdicts(mr *v1alpha1.ModelRollout) string {
	if mr.Status.Analysis == nil {
		return "(no analysis)"
	}
	var b strings.Builder
	for _, r := range mr.Status.Analysis.RecentRounds {
		fmt.Fprintf(&b, "step %d %s:", r.Step, r.Verdict)
		for _, m := range r.Metrics {
			fmt.Fprintf(&b, " %s=%s(%s)", m.Name, m.Verdict, m.Message)
		}
		b.WriteString("\n")
	}
	return b.String()
}
