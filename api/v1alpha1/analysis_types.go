package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Analysis judges every step of a rollout from metrics.
type Analysis struct {
	// Interval between analysis rounds, between 1s and 1h. A rollout with a
	// sequential metric looks more often, as often as the data refresh
	// (every 5s, or every interval when shorter); its failed,
	// inconclusive and error rounds count toward failureLimit and
	// inconclusiveLimit at most once per interval.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="spec.analysis.interval must be between 1s and 1h, for example 30s"
	Interval metav1.Duration `json:"interval,omitzero"`

	// MinSamples is the least number of candidate requests in a round's
	// window for a verdict; with fewer the round is Inconclusive, never Fail.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	MinSamples int64 `json:"minSamples,omitempty"`

	// FailureLimit is how many consecutive failed rounds roll the candidate back.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	FailureLimit int32 `json:"failureLimit,omitempty"`

	// InconclusiveLimit is how many consecutive rounds without a verdict
	// pause the rollout for a person to look.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	InconclusiveLimit int32 `json:"inconclusiveLimit,omitempty"`

	// Metrics judged each round.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Metrics []Metric `json:"metrics,omitempty"`
}

// Metric is one measurement and the judge that decides on it.
//
// +kubebuilder:validation:XValidation:rule="has(self.template) != has(self.query)",message="spec.analysis.metrics: set exactly one of template (a built-in or MetricTemplate name) or query (inline PromQL)"
// +kubebuilder:validation:XValidation:rule="[has(self.threshold), has(self.relative), has(self.sequential), has(self.drift), has(self.sampleRatio)].exists_one(x, x)",message="spec.analysis.metrics: set exactly one judge: threshold, relative, sequential, drift or sampleRatio"
type Metric struct {
	// Name of the metric, unique in the rollout.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metric name must be a DNS-1123 label: lower-case letters, digits and '-'"
	Name string `json:"name"`

	// Template is a built-in template (istio-error-rate, istio-latency-p99,
	// ...) or the name of a MetricTemplate in the rollout's namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Template string `json:"template,omitempty"`

	// Query is an inline PromQL template returning one series per version
	// (destination_version), written as a MetricTemplate's query. Refused
	// unless Fulcrum runs with --allow-inline-queries; its selectors are
	// confined to the rollout's namespace (--query-namespace-label).
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Query string `json:"query,omitempty"`

	// Threshold judges the candidate's value against fixed bounds.
	// +optional
	Threshold *ThresholdJudge `json:"threshold,omitempty"`
	// Relative judges the candidate's value against the stable version's.
	// +optional
	Relative *RelativeJudge `json:"relative,omitempty"`
	// Sequential runs an always-valid sequential test on counts of bad
	// events (errors, slow requests), candidate against stable.
	// +optional
	Sequential *SequentialJudge `json:"sequential,omitempty"`
	// Drift compares the candidate's and stable's score distributions.
	// +optional
	Drift *DriftJudge `json:"drift,omitempty"`
	// SampleRatio checks that the observed request split matches the weights.
	// +optional
	SampleRatio *SampleRatioJudge `json:"sampleRatio,omitempty"`
}

// ThresholdJudge passes when min <= value <= max.
//
// +kubebuilder:validation:XValidation:rule="has(self.min) || has(self.max)",message="threshold: set min, max or both"
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || self.min <= self.max",message="threshold.min must not exceed threshold.max"
type ThresholdJudge struct {
	// +optional
	Min *float64 `json:"min,omitempty"`
	// +optional
	Max *float64 `json:"max,omitempty"`
}

// RelativeJudge passes when the candidate is no worse than stable by more
// than the given ratio or difference.
//
// +kubebuilder:validation:XValidation:rule="has(self.maxRatio) != has(self.maxIncrease)",message="relative: set exactly one of maxRatio (candidate/stable) or maxIncrease (candidate-stable)"
type RelativeJudge struct {
	// MaxRatio bounds candidate/stable, for example 1.2 for "at most 20% worse".
	// +optional
	// +kubebuilder:validation:XValidation:rule="self > 0.0",message="relative.maxRatio must be positive, for example 1.2"
	MaxRatio *float64 `json:"maxRatio,omitempty"`
	// MaxIncrease bounds candidate-stable, in the metric's unit.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self >= 0.0",message="relative.maxIncrease must not be negative"
	MaxIncrease *float64 `json:"maxIncrease,omitempty"`
}

// SequentialJudge tests whether the candidate's rate of bad events exceeds
// stable's by more than MaxIncrease. It may decide at any round; its error
// rates hold however often it looks.
type SequentialJudge struct {
	// MaxIncrease is the increase of the bad-event rate over stable, as a
	// fraction (0.005 = half a percentage point), that must not be promoted:
	// a candidate this much worse passes with probability at most
	// 1-confidence. A candidate no worse than stable is rolled back with
	// probability at most 1-confidence. Between 0 and MaxIncrease either
	// verdict may come (the test's indifference zone).
	// +kubebuilder:validation:XValidation:rule="self >= 0.0 && self < 1.0",message="sequential.maxIncrease must be a fraction in [0, 1), for example 0.005"
	MaxIncrease float64 `json:"maxIncrease"`
	// Confidence is 1 minus the false-decision rate, in (0.5, 1).
	// +optional
	// +kubebuilder:default=0.99
	// +kubebuilder:validation:XValidation:rule="self > 0.5 && self < 1.0",message="sequential.confidence must be in (0.5, 1), for example 0.99"
	Confidence float64 `json:"confidence,omitempty"`
	// SLOMilliseconds turns a latency histogram into bad events: requests
	// slower than this count as bad. Used with latency templates.
	// +optional
	// +kubebuilder:validation:Minimum=1
	SLOMilliseconds *int64 `json:"sloMilliseconds,omitempty"`
	// ExposureBudget lets a step advance before its evidence is in: the
	// expected number of extra bad events (above stable's rate) the next
	// step may serve in one look (5s) were the candidate as bad as its
	// evidence still allows (the upper confidence bound on the increase).
	// At high traffic it asks for evidence before more traffic moves; at
	// low traffic, where a look serves few requests, it lets steps advance
	// so that evidence comes sooner. 0 advances only on evidence. It never
	// moves onto the last step: promotion needs a Pass. Unset: 25.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self >= 0.0",message="sequential.exposureBudget must not be negative, for example 25 (extra bad events per look)"
	ExposureBudget *float64 `json:"exposureBudget,omitempty"`
}

// DriftJudge compares histograms of model scores between candidate and stable.
type DriftJudge struct {
	// MaxPSI is the largest population stability index tolerated once the
	// difference is also statistically significant at Confidence.
	// +optional
	// +kubebuilder:default=0.2
	// +kubebuilder:validation:XValidation:rule="self > 0.0",message="drift.maxPSI must be positive, for example 0.2"
	MaxPSI float64 `json:"maxPSI,omitempty"`
	// Confidence of the chi-square test on bucket counts, in (0.5, 1).
	// +optional
	// +kubebuilder:default=0.99
	// +kubebuilder:validation:XValidation:rule="self > 0.5 && self < 1.0",message="drift.confidence must be in (0.5, 1), for example 0.99"
	Confidence float64 `json:"confidence,omitempty"`
}

// SampleRatioJudge fails when the observed split of requests differs from the
// weights that were set, with p below MaxPValue.
type SampleRatioJudge struct {
	// +optional
	// +kubebuilder:default=0.001
	// +kubebuilder:validation:XValidation:rule="self > 0.0 && self < 0.5",message="sampleRatio.maxPValue must be in (0, 0.5), for example 0.001"
	MaxPValue float64 `json:"maxPValue,omitempty"`
}
