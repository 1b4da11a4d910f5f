package validation

import (
	"fmt"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Thresholds of the risk warnings.
const (
	// WarnMinSamples: a verdict on fewer requests is mostly noise.
	WarnMinSamples = 50
	// WarnMaxStepJump: a larger single move of traffic, in percentage
	// points, exposes that much traffic before analysis can react.
	WarnMaxStepJump = 50
	// WarnSingleFailureConfidence: with failureLimit 1, a judge below this
	// confidence rolls back healthy candidates too often.
	WarnSingleFailureConfidence = 0.95
)

// RiskWarnings returns the risky but legal settings of a rollout, each as
// one sentence naming the field and what to do about it. They never block.
func RiskWarnings(mr *v1alpha1.ModelRollout) []string {
	var w []string
	if c := mr.Spec.Strategy.Canary; c != nil {
		prev := int32(0)
		for i, s := range c.Steps {
			if s-prev > WarnMaxStepJump {
				w = append(w, fmt.Sprintf(
					"spec.strategy.canary.steps[%d]: moves the candidate from %d%% to %d%% in one step (%d points); a bad candidate takes that traffic before analysis can stop it: add steps in between, for example [5, 25, 50, 100]",
					i, prev, s, s-prev))
			}
			prev = s
		}
	}
	a := mr.Spec.Analysis
	if a == nil || len(a.Metrics) == 0 {
		return append(w, "spec.analysis.metrics is empty: steps advance on time alone and nothing rolls a bad candidate back; add at least an error-rate metric (template istio-error-rate)")
	}
	if a.MinSamples < WarnMinSamples {
		w = append(w, fmt.Sprintf(
			"spec.analysis.minSamples is %d: verdicts on fewer than %d requests are mostly noise; use 100 or more", a.MinSamples, WarnMinSamples))
	}
	if a.FailureLimit == 1 {
		for i, m := range a.Metrics {
			if c, ok := confidence(&m); ok && c < WarnSingleFailureConfidence {
				w = append(w, fmt.Sprintf(
					"spec.analysis.metrics[%d] (%s): confidence %.3g with failureLimit 1 rolls a healthy candidate back on a single false alarm (up to %.0f%% of rollouts); raise the confidence to 0.99 or failureLimit to 2",
					i, m.Name, c, (1-c)*100))
			}
		}
		if mr.Spec.OnMetricsUnavailable == v1alpha1.MetricsUnavailableRollback {
			w = append(w, "spec.onMetricsUnavailable is Rollback with spec.analysis.failureLimit 1: a single round without metrics (a Prometheus restart) rolls the candidate back; use Hold or raise failureLimit")
		}
	}
	for i, m := range a.Metrics {
		if m.Relative != nil && m.Relative.MaxRatio != nil && *m.Relative.MaxRatio < 1 {
			w = append(w, fmt.Sprintf(
				"spec.analysis.metrics[%d] (%s): relative.maxRatio %.3g is below 1, so a candidate exactly as good as stable fails; use a ratio of 1 or more, such as 1.2",
				i, m.Name, *m.Relative.MaxRatio))
		}
	}
	if c := mr.Spec.Strategy.Canary; c != nil && c.MinStepDuration.Duration > 0 && a.Interval.Duration > c.MinStepDuration.Duration {
		w = append(w, fmt.Sprintf(
			"spec.strategy.canary.minStepDuration (%s) is shorter than spec.analysis.interval (%s): a step may be held until a round runs, so steps take at least one interval",
			c.MinStepDuration.Duration, a.Interval.Duration))
	}
	return w
}

// confidence returns the confidence of judges that have one.
func confidence(m *v1alpha1.Metric) (float64, bool) {
	switch {
	case m.Sequential != nil && m.Sequential.Confidence > 0:
		return m.Sequential.Confidence, true
	case m.Drift != nil && m.Drift.Confidence > 0:
		return m.Drift.Confidence, true
	}
	return 0, false
}
