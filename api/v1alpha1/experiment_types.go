package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ExperimentStrategy compares two or more versions of the model on a business
// metric (the reward), keeping each user on one version, and stops when the
// answer is clear: a winner with its lift, no difference worth having, or
// inconclusive at the deadline. Guardrails are spec.analysis's metrics,
// judged for every arm against the control.
//
// +kubebuilder:validation:XValidation:rule="self.arms.map(a, a.weight).sum() == 100",message="spec.strategy.experiment.arms weights must sum to 100, for example v1=50 v2=50",fieldPath=".arms"
// +kubebuilder:validation:XValidation:rule="self.arms.all(a, self.arms.filter(b, b.subset == a.subset).size() == 1)",message="spec.strategy.experiment.arms must name each subset once",fieldPath=".arms"
// +kubebuilder:validation:XValidation:rule="!has(self.minDuration) || !has(self.maxDuration) || duration(self.minDuration) <= duration(self.maxDuration)",message="spec.strategy.experiment.minDuration must not exceed maxDuration",fieldPath=".minDuration"
type ExperimentStrategy struct {
	// Arms are the versions compared, each with its share of new users.
	// The first arm is the control, which every lift is measured against;
	// it is normally spec.stable.
	// +listType=atomic
	// +kubebuilder:validation:MinItems=2
	// +kubebuilder:validation:MaxItems=8
	Arms []ExperimentArm `json:"arms"`

	// Stickiness keeps a user on the arm they were first sent to.
	// +optional
	Stickiness Stickiness `json:"stickiness,omitempty"`

	// Reward is the business metric that decides.
	Reward Reward `json:"reward"`

	// Confidence of the decision, 0.8 to 0.9999; default 0.99. The chance
	// of naming a winner that is not better, over all arms and however
	// often Fulcrum looks, is at most 1 - confidence.
	// +optional
	// +kubebuilder:validation:Minimum=0.8
	// +kubebuilder:validation:Maximum=0.9999
	Confidence *float64 `json:"confidence,omitempty"`

	// MinDuration is the least time before any decision, between 1s and
	// 720h; default 1h (a day or a week covers daily or weekly cycles).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('720h')",message="spec.strategy.experiment.minDuration must be between 1s and 720h, for example 24h"
	MinDuration metav1.Duration `json:"minDuration,omitzero"`

	// MaxDuration is the deadline: without a winner or a clear "no
	// difference" by then, the experiment ends inconclusive. Between 1s
	// and 2160h; default 336h (two weeks).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('2160h')",message="spec.strategy.experiment.maxDuration must be between 1s and 2160h, for example 336h"
	MaxDuration metav1.Duration `json:"maxDuration,omitzero"`

	// OnWinner says what a winner gets: Keep (the default) keeps the
	// experiment's split until a person acts; Promote makes the winner
	// stable, as a canary's promotion does.
	// +optional
	// +kubebuilder:default=Keep
	OnWinner WinnerPolicy `json:"onWinner,omitempty"`
}

// ExperimentArm is one version in an experiment.
type ExperimentArm struct {
	// Subset of the DestinationRule (the version).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.strategy.experiment.arms[].subset must be a DNS-1123 label (a DestinationRule subset name)"
	Subset string `json:"subset"`
	// Weight is the arm's share of new users, in percent.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=99
	Weight int32 `json:"weight"`
}

// StickinessMode says how a user stays on one arm.
// +kubebuilder:validation:Enum=Cookie;Header;None
type StickinessMode string

const (
	// StickinessCookie: the first answer sets a cookie naming the arm, and
	// a route in front of the managed routes sends requests carrying it
	// back to that arm.
	StickinessCookie StickinessMode = "Cookie"
	// StickinessHeader: a request header set upstream (a user's group)
	// names the arm; requests without it are split by weight.
	StickinessHeader StickinessMode = "Header"
	// StickinessNone: every request is split by weight.
	StickinessNone StickinessMode = "None"
)

// Stickiness keeps a user on the arm they were first sent to, with what
// Istio itself expresses: response headers and match routes.
//
// +kubebuilder:validation:XValidation:rule="self.mode != 'Header' || (has(self.header) && size(self.header) > 0)",message="spec.strategy.experiment.stickiness.header is required with mode Header: name the request header whose value is the arm's subset, for example x-user-group",fieldPath=".header"
type Stickiness struct {
	// Mode is Cookie (the default), Header or None.
	// +optional
	// +kubebuilder:default=Cookie
	Mode StickinessMode `json:"mode,omitempty"`
	// CookieName of the cookie naming the arm; default
	// fulcrum-exp-<ModelRollout name>.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9_-]+$')",message="spec.strategy.experiment.stickiness.cookieName may hold only letters, digits, '_' and '-'"
	CookieName string `json:"cookieName,omitempty"`
	// MaxAge of the cookie, between 1m and 8760h; default 168h (a week).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('8760h')",message="spec.strategy.experiment.stickiness.maxAge must be between 1m and 8760h, for example 168h"
	MaxAge metav1.Duration `json:"maxAge,omitzero"`
	// Header whose value names the arm's subset, for mode Header.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9-]+$')",message="spec.strategy.experiment.stickiness.header must be a lower-case HTTP header name, for example x-user-group"
	Header string `json:"header,omitempty"`
}

// RewardKind is how an arm's reward is counted.
// +kubebuilder:validation:Enum=Proportion;Mean
type RewardKind string

const (
	// RewardProportion: successes out of trials (clicks per prediction).
	RewardProportion RewardKind = "Proportion"
	// RewardMean: the mean of a bounded per-request value (revenue per
	// request, capped), from its sum and count.
	RewardMean RewardKind = "Mean"
)

// Reward is the business metric of an experiment, per arm.
//
// +kubebuilder:validation:XValidation:rule="self.kind != 'Mean' || (has(self.min) && has(self.max) && self.min < self.max)",message="spec.strategy.experiment.reward: kind Mean needs min < max, the range every per-request value lies in (for example 0 and 100 for revenue capped at 100)",fieldPath=".max"
type Reward struct {
	// Template is a MetricTemplate in the rollout's namespace with a
	// successQuery (Proportion) or a sumQuery (Mean) and a sampleQuery
	// (trials or count), or the built-in model-feedback
	// (model_feedback_total{outcome="success"} out of all outcomes).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Template string `json:"template"`
	// Kind is Proportion (the default) or Mean.
	// +optional
	// +kubebuilder:default=Proportion
	Kind RewardKind `json:"kind,omitempty"`
	// Min and Max bound every per-request value of a Mean reward.
	// +optional
	Min *float64 `json:"min,omitempty"`
	// +optional
	Max *float64 `json:"max,omitempty"`
	// MinEffect is the smallest absolute difference worth having, in the
	// reward's unit (0.02 is two points of a proportion): a winner beats
	// every other arm by more than this, and "no difference" means every
	// arm is within it of the control.
	// +kubebuilder:validation:ExclusiveMinimum=true
	// +kubebuilder:validation:Minimum=0
	MinEffect float64 `json:"minEffect"`
	// LowerIsBetter is set when a smaller reward wins (a cost).
	// +optional
	LowerIsBetter bool `json:"lowerIsBetter,omitempty"`
}

// WinnerPolicy says what happens to an experiment's winner.
// +kubebuilder:validation:Enum=Keep;Promote
type WinnerPolicy string

const (
	// WinnerKeep keeps the experiment's split until a person acts.
	WinnerKeep WinnerPolicy = "Keep"
	// WinnerPromote makes the winner stable.
	WinnerPromote WinnerPolicy = "Promote"
)

// ExperimentStatus is an experiment's evidence and outcome. It stays after
// the experiment ends, as its record, until the next rollout starts.
type ExperimentStatus struct {
	// StartedAt is when the arms' weights were first written; counts are
	// taken from then on.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// Arms are the latest per-arm figures, the control first.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Arms []ArmStatus `json:"arms,omitempty"`
	// LastReadAt is when the reward was last read.
	// +optional
	LastReadAt *metav1.Time `json:"lastReadAt,omitempty"`
	// Outcome is empty while the experiment runs, then Winner,
	// NoDifference, Inconclusive, Stopped (a person or a guardrail ended
	// it).
	// +optional
	Outcome ExperimentOutcome `json:"outcome,omitempty"`
	// Winner is the winning arm's subset, with Outcome Winner.
	// +optional
	Winner string `json:"winner,omitempty"`
	// Reason says in one line why the experiment ended, or what it waits
	// for, with the evidence.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
	// DecidedAt is when the outcome was reached.
	// +optional
	DecidedAt *metav1.Time `json:"decidedAt,omitempty"`
}

// ExperimentOutcome is how an experiment ended.
type ExperimentOutcome string

const (
	// ExperimentWinner: one arm beat every other by more than minEffect.
	ExperimentWinner ExperimentOutcome = "Winner"
	// ExperimentNoDifference: every arm is within minEffect of the control.
	ExperimentNoDifference ExperimentOutcome = "NoDifference"
	// ExperimentInconclusive: neither by maxDuration.
	ExperimentInconclusive ExperimentOutcome = "Inconclusive"
	// ExperimentStopped: a person rolled back, or a guardrail failed.
	ExperimentStopped ExperimentOutcome = "Stopped"
)

// ArmStatus is one arm's evidence.
type ArmStatus struct {
	// Subset of the arm.
	Subset string `json:"subset"`
	// Weight is the arm's share of new users.
	Weight int32 `json:"weight"`
	// Samples are trials (Proportion) or values counted (Mean) since the
	// start.
	// +optional
	Samples float64 `json:"samples,omitempty"`
	// Value is the arm's reward: success rate or mean.
	// +optional
	Value *float64 `json:"value,omitempty"`
	// Lower and Upper bound the arm's reward (confidence sequence).
	// +optional
	Lower *float64 `json:"lower,omitempty"`
	// +optional
	Upper *float64 `json:"upper,omitempty"`
	// Lift is Value minus the control's, with its bounds; absent on the
	// control.
	// +optional
	Lift *float64 `json:"lift,omitempty"`
	// +optional
	LiftLower *float64 `json:"liftLower,omitempty"`
	// +optional
	LiftUpper *float64 `json:"liftUpper,omitempty"`
}
