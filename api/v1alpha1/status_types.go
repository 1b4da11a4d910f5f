package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase is where a rollout stands.
// +kubebuilder:validation:Enum=Stable;Progressing;Paused;ManualSplit;Promoted;RolledBack;Failed
type Phase string

// The phases of a rollout.
const (
	// PhaseStable: no rollout; the stable subset serves 100%.
	PhaseStable Phase = "Stable"
	// PhaseProgressing: traffic moves to the candidate step by step.
	PhaseProgressing Phase = "Progressing"
	// PhasePaused: a person or the inconclusive limit stopped progression.
	PhasePaused Phase = "Paused"
	// PhaseManualSplit: a person pinned explicit weights.
	PhaseManualSplit Phase = "ManualSplit"
	// PhasePromoted: the candidate became stable and serves 100%.
	PhasePromoted Phase = "Promoted"
	// PhaseRolledBack: all traffic went back to stable.
	PhaseRolledBack Phase = "RolledBack"
	// PhaseFailed: the rollout cannot proceed (missing objects or subsets);
	// the Ready condition says what to create or fix.
	PhaseFailed Phase = "Failed"
)

// Verdict is the outcome of judging one metric in one round.
// +kubebuilder:validation:Enum=Pass;Fail;Inconclusive;Error
type Verdict string

// The verdicts.
const (
	VerdictPass         Verdict = "Pass"
	VerdictFail         Verdict = "Fail"
	VerdictInconclusive Verdict = "Inconclusive"
	VerdictError        Verdict = "Error"
)

// Condition types.
const (
	// ConditionReady is True when the referenced objects and subsets exist
	// and the rollout can act on them.
	ConditionReady = "Ready"
	// ConditionSubsetsReady is False while a subset lacks Ready pods.
	ConditionSubsetsReady = "SubsetsReady"
	// ConditionAnalysis reports the latest analysis round.
	ConditionAnalysis = "Analysis"
	// ConditionRoutesIntact is False when a managed route is shadowed by a
	// route in front of it, or changed in ways that alter who gets its
	// traffic (match, mirror, fault, redirect, direct response, delegate)
	// since Fulcrum took its baseline.
	ConditionRoutesIntact = "RoutesIntact"
	// ConditionNotified is False while a Notifier's sink failed to receive
	// the rollout's latest event (see docs/notifications.md); absent when no
	// notifier is configured.
	ConditionNotified = "Notified"
)

// ModelRolloutStatus is what the controller observed and did.
type ModelRolloutStatus struct {
	// Phase of the rollout.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// Candidate being rolled out (or last rolled out), as the controller
	// knows it.
	// +optional
	Candidate string `json:"candidate,omitempty"`

	// Weights the controller last wrote to the managed routes.
	// +optional
	// +listType=map
	// +listMapKey=subset
	// +kubebuilder:validation:MaxItems=16
	Weights []SubsetWeight `json:"weights,omitempty"`

	// CandidateWeight is the candidate's weight, for printing.
	// +optional
	CandidateWeight int32 `json:"candidateWeight,omitempty"`

	// Step is the index into spec.strategy.canary.steps of the current step.
	// +optional
	Step *int32 `json:"step,omitempty"`

	// StepStartedAt is when the current step's weights were written.
	// +optional
	StepStartedAt *metav1.Time `json:"stepStartedAt,omitempty"`
	// Shadow is set while the candidate is in its shadow stage
	// (spec.strategy.canary.shadow): the mirror Fulcrum sets on the managed
	// routes, and when it was first written (empty while the candidate's
	// pods are awaited). Fulcrum removes only the mirror recorded here.
	// +optional
	Shadow *ShadowStatus `json:"shadow,omitempty"`

	// Warmup is set while the warm-up gate (spec.readiness.warmup) holds
	// the candidate's weight: since when, and the latest reading.
	// +optional
	Warmup *WarmupStatus `json:"warmup,omitempty"`
	// Scaling is what Fulcrum changed on the versions' workloads
	// (spec.scaling), with the values it replaced, and the old version's
	// pending scale-down.
	// +optional
	Scaling *ScalingStatus `json:"scaling,omitempty"`

	// Gates are the rollout's gates (spec.gates): the one holding it, those
	// running after its end, and the latest results.
	// +optional
	Gates *GatesStatus `json:"gates,omitempty"`

	// Experiment is the latest experiment's evidence and outcome
	// (spec.strategy.experiment).
	// +optional
	Experiment *ExperimentStatus `json:"experiment,omitempty"`

	// RolloutStartedAt is when the current rollout started.
	// +optional
	RolloutStartedAt *metav1.Time `json:"rolloutStartedAt,omitempty"`

	// Analysis of the current step, and the evidence of earlier steps.
	// +optional
	Analysis *AnalysisStatus `json:"analysis,omitempty"`

	// History of transitions, newest last, bounded; HistoryDropped counts
	// the oldest entries that were dropped to keep the object small.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	History []HistoryEntry `json:"history,omitempty"`

	// HistoryDropped is how many old history entries were dropped.
	// +optional
	HistoryDropped int64 `json:"historyDropped,omitempty"`

	// ObservedIntent is the id of the last intent the controller applied.
	// +optional
	ObservedIntent string `json:"observedIntent,omitempty"`

	// Message says, in one line, what the rollout is doing or waiting for.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// RouteShapes are fingerprints of the managed routes' traffic-steering
	// fields (everything but the weights), taken when a rollout starts or a
	// person acts; a change is reported by the RoutesIntact condition.
	// +optional
	// +listType=map
	// +listMapKey=route
	// +kubebuilder:validation:MaxItems=32
	RouteShapes []RouteShape `json:"routeShapes,omitempty"`

	// Conditions: Ready, SubsetsReady, Analysis.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the spec generation the status reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// AnalysisStatus is the analysis of the current step, with the evidence of
// the rollout's completed steps.
type AnalysisStatus struct {
	// Ran is false when the rollout has no metrics: steps advance on time
	// alone and no analysis ran.
	Ran bool `json:"ran"`
	// Rounds run at the current step.
	// +optional
	Rounds int32 `json:"rounds,omitempty"`
	// ConsecutiveFailures counts failed rounds in a row.
	// +optional
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`
	// ConsecutiveInconclusive counts rounds without a verdict in a row.
	// +optional
	ConsecutiveInconclusive int32 `json:"consecutiveInconclusive,omitempty"`
	// LastRoundAt is when the latest round ran.
	// +optional
	LastRoundAt *metav1.Time `json:"lastRoundAt,omitempty"`
	// RecentRounds are the latest rounds, newest last, bounded.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	RecentRounds []AnalysisRound `json:"recentRounds,omitempty"`
	// Evidence is what each sequential metric counted in the rollout's
	// completed steps. It is kept from step to step (the rest of this
	// status starts afresh with each step) so that one always-valid test
	// covers the whole rollout; a new rollout starts with none.
	// +optional
	// +listType=map
	// +listMapKey=metric
	// +kubebuilder:validation:MaxItems=32
	Evidence []MetricEvidence `json:"evidence,omitempty"`
}

// MaxEvidenceSteps bounds the steps kept per metric in
// status.analysis.evidence. A rollout has at most 20 steps; a step restarted
// after a manual split counts again.
const MaxEvidenceSteps = 40

// MetricEvidence is one sequential metric's counts, step by step.
type MetricEvidence struct {
	// Metric is the metric's name in spec.analysis.metrics.
	// +kubebuilder:validation:MaxLength=63
	Metric string `json:"metric"`
	// Steps are the completed steps, oldest first, each with its counts
	// from the step's start to its last round.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=40
	Steps []StepEvidence `json:"steps,omitempty"`
}

// StepEvidence is what a sequential judge counted during one step, while
// the traffic split stayed the same.
type StepEvidence struct {
	// Step is the index of the step in spec.strategy.canary.steps.
	Step int32 `json:"step"`
	// Candidate requests and bad events in the window.
	Candidate EventCounts `json:"candidate"`
	// Stable requests and bad events in the window.
	Stable EventCounts `json:"stable"`
	// Window is how long the counts cover, from the step's start.
	// +optional
	Window metav1.Duration `json:"window,omitzero"`
}

// EventCounts are one version's requests and, among them, bad events
// (errors, or responses slower than the SLO).
type EventCounts struct {
	// Bad events.
	// +kubebuilder:validation:Minimum=0
	Bad int64 `json:"bad"`
	// Total requests.
	// +kubebuilder:validation:Minimum=0
	Total int64 `json:"total"`
}

// AnalysisRound is one round of analysis.
type AnalysisRound struct {
	// Time the round ran.
	Time metav1.Time `json:"time"`
	// Step the round judged.
	Step int32 `json:"step"`
	// Verdict of the round: Fail if any metric failed, Error if any could
	// not be read, Inconclusive if any lacked evidence, else Pass.
	Verdict Verdict `json:"verdict"`
	// Metrics judged in the round.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=40
	Metrics []MetricResult `json:"metrics,omitempty"`
}

// MetricResult is the verdict on one metric with the evidence behind it.
type MetricResult struct {
	// Name of the metric.
	Name string `json:"name"`
	// Verdict on the metric.
	Verdict Verdict `json:"verdict"`
	// Value measured on the candidate.
	// +optional
	Value *float64 `json:"value,omitempty"`
	// Baseline value measured on stable.
	// +optional
	Baseline *float64 `json:"baseline,omitempty"`
	// Threshold describes the bound the judge applied, for example "<= 300".
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Threshold string `json:"threshold,omitempty"`
	// CandidateSamples in the window (for sequential judges: in the whole
	// rollout so far).
	// +optional
	CandidateSamples int64 `json:"candidateSamples,omitempty"`
	// BaselineSamples in the window (for sequential judges: in the whole
	// rollout so far).
	// +optional
	BaselineSamples int64 `json:"baselineSamples,omitempty"`
	// PValue of the judge's test, where it has one (always valid for
	// sequential judges).
	// +optional
	PValue *float64 `json:"pValue,omitempty"`
	// Lower and Upper bound a confidence interval on the difference, where
	// the judge computes one.
	// +optional
	Lower *float64 `json:"lower,omitempty"`
	// +optional
	Upper *float64 `json:"upper,omitempty"`
	// SamplesNeeded estimates how many more candidate samples a verdict
	// needs, when it is Inconclusive for lack of evidence.
	// +optional
	SamplesNeeded *int64 `json:"samplesNeeded,omitempty"`
	// EvidenceETA estimates how long SamplesNeeded takes at the candidate's
	// current request rate.
	// +optional
	EvidenceETA *metav1.Duration `json:"evidenceETA,omitempty"`
	// Evidence is what a sequential judge counted in the current step's
	// window this round; the controller keeps the step's last one in
	// status.analysis.evidence when the step ends.
	// +optional
	Evidence *StepEvidence `json:"evidence,omitempty"`
	// Message says in one line why.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Message string `json:"message,omitempty"`
}

// History entry types (HistoryEntry.Type), constant so that clients can
// select on them.
const (
	HistoryStarted          = "Started"
	HistoryStepAdvanced     = "StepAdvanced"
	HistoryPaused           = "Paused"
	HistoryResumed          = "Resumed"
	HistoryManualSplit      = "ManualSplit"
	HistoryPromoted         = "Promoted"
	HistoryRolledBack       = "RolledBack"
	HistoryFailed           = "Failed"
	HistoryRecovered        = "Recovered"
	HistoryStableChanged    = "StableChanged"
	HistoryIntentIgnored    = "IntentIgnored"
	HistoryIntentSuperseded = "IntentSuperseded"
	HistoryAdopted          = "Adopted"
	HistoryTrafficRestored  = "TrafficRestored"
	// HistoryShadowPassed: the shadow stage passed; the mirror is removed
	// and the first step starts.
	HistoryShadowPassed = "ShadowPassed"
	// HistoryWarm: the warm-up gate passed; the reason gives the reading.
	HistoryWarm = "Warm"
	// HistoryExperimentEnded: an experiment reached its outcome; the
	// reason gives the evidence.
	HistoryExperimentEnded = "ExperimentEnded"
	// HistoryScaledUp: Fulcrum raised a version's replicas (or its HPA's
	// minReplicas) ahead of a step (spec.scaling.scaleAhead).
	HistoryScaledUp = "ScaledUp"
	// HistoryScaledDown: Fulcrum scaled the old version down after a
	// promotion (spec.scaling.scaleDownAfter).
	HistoryScaledDown = "ScaledDown"
	// HistoryScaleRestored: Fulcrum put back what it had scaled.
	HistoryScaleRestored = "ScaleRestored"
	// HistoryScaleDownCancelled: a pending scale-down will not happen.
	HistoryScaleDownCancelled = "ScaleDownCancelled"
	// HistoryApprovalPending: an approval gate (spec.gates) started
	// waiting for a person.
	HistoryApprovalPending = "ApprovalPending"
	// HistoryApproved: a person approved a pending approval gate; actor
	// and reason are theirs.
	HistoryApproved = "Approved"
	// HistoryGatePassed: an HTTP or Job gate passed.
	HistoryGatePassed = "GatePassed"
	// HistoryGateFailed: a gate failed or timed out; its onFailure
	// followed (a RolledBack or Paused entry), or, after a promotion or a
	// rollback, nothing.
	HistoryGateFailed = "GateFailed"
)

// WarmupStatus is the warm-up gate while it holds the candidate's weight.
type WarmupStatus struct {
	// Subset being warmed (the candidate).
	Subset string `json:"subset"`
	// Weight the candidate waits to get.
	Weight int32 `json:"weight"`
	// Since is when the gate started holding; the rollout rolls back at
	// Since + spec.readiness.warmup.timeout.
	Since metav1.Time `json:"since"`
	// P99Milliseconds is the candidate's p99 latency at the latest reading.
	// +optional
	P99Milliseconds *float64 `json:"p99Milliseconds,omitempty"`
	// Requests the candidate answered in the window at the latest reading.
	// +optional
	Requests int64 `json:"requests,omitempty"`
	// Sent counts the warm-up requests sent since the gate started holding,
	// and Failed those that got no answer or a 5xx.
	// +optional
	Sent int64 `json:"sent,omitempty"`
	// +optional
	Failed int64 `json:"failed,omitempty"`
	// Message says in one line what the gate waits for.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Message string `json:"message,omitempty"`
}

// ShadowStatus is the mirror of the shadow stage.
type ShadowStatus struct {
	// Subset the requests are copied to (the candidate).
	Subset string `json:"subset"`
	// Percent of requests copied.
	Percent int32 `json:"percent"`
	// StartedAt is when the mirror was first written.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
}

// HistoryEntry records one transition of a rollout.
type HistoryEntry struct {
	// Time of the transition.
	Time metav1.Time `json:"time"`
	// Type is a constant such as Started, StepAdvanced, Promoted.
	Type string `json:"type"`
	// From and To are the phases before and after.
	// +optional
	From Phase `json:"from,omitempty"`
	// +optional
	To Phase `json:"to,omitempty"`
	// Step after the transition, when progressing.
	// +optional
	Step *int32 `json:"step,omitempty"`
	// Weights after the transition.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Weights []SubsetWeight `json:"weights,omitempty"`
	// Actor is the person or pipeline who asked, or "fulcrum" for the
	// controller's own decisions.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Actor string `json:"actor,omitempty"`
	// Reason given by the actor, or the analysis verdict that decided.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
	// IntentID links the entry to the intent that caused it.
	// +optional
	IntentID string `json:"intentID,omitempty"`
}

// RouteShape fingerprints one managed route: a short hash per
// traffic-steering field (match, mirror, fault, ...) that is set on it when
// the baseline was taken.
type RouteShape struct {
	// Route is the route's key: its name, or http[INDEX] when unnamed.
	// +kubebuilder:validation:MaxLength=253
	Route string `json:"route"`
	// Fields maps each steering field set on the route to a hash of its value.
	// +optional
	Fields map[string]string `json:"fields,omitempty"`
}
