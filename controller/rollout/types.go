// Package rollout is the ModelRollout state machine. It is pure: Decide turns
// a rollout and what the reconciler observed (route weights, Ready pods per
// subset, an analysis round, the time) into the weights to write, the new
// status, the events to record and when to look again. Nothing here reads a
// clock or talks to the API server, so every transition is tested with a fake
// clock and plain structs.
package rollout

import (
	"time"

	"github.com/fulcrum-ml/fulcrum/analysis/experiment"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Actors recorded in history for decisions nobody asked for explicitly.
const (
	// ActorController marks the controller's own decisions (steps, analysis).
	ActorController = "fulcrum"
	// ActorSpec marks changes made by editing the spec directly (GitOps, kubectl).
	ActorSpec = "spec"
)

// Bounds that keep the status object small.
const (
	MaxHistory      = v1alpha1.MaxHistoryEntries
	MaxRecentRounds = v1alpha1.MaxRecentRounds
	// maxRoundMetrics bounds the metric results kept per round (the CRD's
	// limit); the spec allows 32 metrics plus the engine's own checks.
	maxRoundMetrics = 40
	// maxEventNote keeps an Event's note under the API server's 1 KiB limit.
	maxEventNote = 1000
)

// Defaults applied when a field is zero (the CRD defaults them too; these
// cover objects that bypassed defaulting, such as in unit tests).
var (
	DefaultSteps    = []int32{5, 25, 50, 100}
	DefaultInterval = 30 * time.Second
)

// History entry types, as the API names them (see api/v1alpha1).
const (
	HistoryStarted          = v1alpha1.HistoryStarted
	HistoryStepAdvanced     = v1alpha1.HistoryStepAdvanced
	HistoryPaused           = v1alpha1.HistoryPaused
	HistoryResumed          = v1alpha1.HistoryResumed
	HistoryManualSplit      = v1alpha1.HistoryManualSplit
	HistoryPromoted         = v1alpha1.HistoryPromoted
	HistoryRolledBack       = v1alpha1.HistoryRolledBack
	HistoryFailed           = v1alpha1.HistoryFailed
	HistoryRecovered        = v1alpha1.HistoryRecovered
	HistoryStableChanged    = v1alpha1.HistoryStableChanged
	HistoryIntentIgnored    = v1alpha1.HistoryIntentIgnored
	HistoryIntentSuperseded = v1alpha1.HistoryIntentSuperseded
	HistoryAdopted          = v1alpha1.HistoryAdopted
	HistoryTrafficRestored  = v1alpha1.HistoryTrafficRestored
	HistoryShadowPassed     = v1alpha1.HistoryShadowPassed
	HistoryWarm             = v1alpha1.HistoryWarm
	HistoryExperimentEnded  = v1alpha1.HistoryExperimentEnded

	HistoryScaledUp           = v1alpha1.HistoryScaledUp
	HistoryScaledDown         = v1alpha1.HistoryScaledDown
	HistoryScaleRestored      = v1alpha1.HistoryScaleRestored
	HistoryScaleDownCancelled = v1alpha1.HistoryScaleDownCancelled
)

// Event reasons, constant so alerts and dashboards can select on them.
const (
	ReasonStarted             = "RolloutStarted"
	ReasonStepAdvanced        = "StepAdvanced"
	ReasonShadowPassed        = "ShadowPassed"
	ReasonWarm                = "CandidateWarm"
	ReasonExperimentEnded     = "ExperimentEnded"
	ReasonPaused              = "RolloutPaused"
	ReasonResumed             = "RolloutResumed"
	ReasonManualSplit         = "ManualSplit"
	ReasonPromoted            = "RolloutPromoted"
	ReasonRolledBack          = "RolloutRolledBack"
	ReasonFailed              = "RolloutFailed"
	ReasonRecovered           = "RolloutRecovered"
	ReasonStableChanged       = "StableChanged"
	ReasonIntentIgnored       = "IntentIgnored"
	ReasonWeightDriftReverted = "WeightDriftReverted"
	ReasonWaitingForPods      = "WaitingForReadyPods"
	ReasonAnalysisFailed      = "AnalysisFailed"
	ReasonAnalysisError       = "AnalysisError"
	ReasonInconclusive        = "AnalysisInconclusive"
	ReasonIntentSuperseded    = "IntentSuperseded"
	ReasonAdopted             = "WeightsAdopted"
	ReasonSubsetUnavailable   = "SubsetUnavailable"
	ReasonStableUnavailable   = "StableUnavailable"
	ReasonRouteConflict       = "RouteConflict"
	ReasonRoutesChanged       = "ManagedRouteChanged"
	ReasonRestoredStable      = "RestoredStable"
	ReasonDeletionKeptWeights = "DeletionKeptWeights"
	ReasonScaledUp            = "ScaledUp"
	ReasonScaledDown          = "ScaledDown"
	ReasonScaleRestored       = "ScaleRestored"
	ReasonScaleDownCancelled  = "ScaleDownCancelled"
	ReasonScaleFailed         = "ScaleFailed"
)

// Condition reasons.
const (
	CondReasonReconciled     = "Reconciled"
	CondReasonInvalidRef     = "InvalidReference"
	CondReasonPodsReady      = "PodsReady"
	CondReasonPodsNotReady   = "PodsNotReady"
	CondReasonNotWarm        = "CandidateNotWarm"
	CondReasonNoMetrics      = "NoMetrics"
	CondReasonNoRoundYet     = "NoRoundYet"
	CondReasonNotProgressing = "NotProgressing"
	CondReasonStableNotReady = "StableNotReady"
	CondReasonSubsetGone     = "SubsetUnavailable"
	CondReasonRouteConflict  = "RouteConflict"
	CondReasonRoutesIntact   = "RoutesIntact"
	CondReasonRouteShadowed  = "RouteShadowed"
	CondReasonRouteChanged   = "RouteChanged"
)

// Outcomes of a rollout, the label of fulcrum_rollout_duration_seconds.
const (
	OutcomePromoted   = "promoted"
	OutcomeRolledBack = "rolled_back"
)

// Event types, as Kubernetes names them.
const (
	EventTypeNormal  = "Normal"
	EventTypeWarning = "Warning"
)

// Observed is what the reconciler saw in the cluster this round.
type Observed struct {
	// Now is the injected clock's time.
	Now time.Time
	// Problem, when set, is a configuration problem (a missing VirtualService,
	// DestinationRule, stable subset or route) phrased as what to create or
	// fix. The rollout goes to Failed and no weight is written.
	Problem string
	// Conflict, when set, says which older ModelRollout already manages one
	// of this rollout's routes. Like a Problem, nothing is written: two
	// controllers of one weight would fight.
	Conflict string
	// Shadowed says which managed routes a route in front of them catches
	// all the traffic of, one message each.
	Shadowed []string
	// RouteChanges says which steering fields of the managed routes changed
	// since the baseline in status.routeShapes, one message each.
	RouteChanges []string
	// RouteShapes are the managed routes' shapes now; they become the
	// baseline when a rollout starts or a person acts.
	RouteShapes []v1alpha1.RouteShape
	// Subsets are the DestinationRule's subset names (to validate Split
	// intents).
	Subsets map[string]bool
	// RouteWeights are the weights on each managed route now, by subset.
	RouteWeights map[string]map[string]int32
	// ReadyPods counts Ready pods per subset.
	ReadyPods map[string]int32
	// TrafficRate is the model's request rate, all versions, in requests
	// per second, read only when spec.readiness.requestsPerPod is set.
	TrafficRate *float64
	// TrafficProblem says why the rate could not be read; weights that
	// would rise wait while it is set.
	TrafficProblem string
	// Warmth is the candidate's latency over the warm-up window, read only
	// when spec.readiness.warmup is set (see WarmupSubset).
	Warmth *Warmth
	// RequestsPerPod is one pod's capacity as measured by
	// spec.readiness.requestsPerPodQuery; CapacityProblem says why it could
	// not be, and holds rising weights like TrafficProblem.
	RequestsPerPod  *float64
	CapacityProblem string
	// Workloads are the versions' workloads (spec.scaling) by subset, read
	// for the candidate and the subset of a pending scale-down.
	Workloads map[string]Workload
	// ScaleValues are the current values of the fields Fulcrum may scale:
	// those of Workloads and those recorded in status.scaling. A field
	// whose object is gone is absent.
	ScaleValues map[ScaleTarget]int32
	// ScaleProblem says why the workloads could not be read (no RBAC for
	// Deployments, say): nothing is scaled or restored while it is set,
	// and the message says so.
	ScaleProblem string
	// Rewards are the experiment's cumulative reward counts per arm since
	// it started, the control first, read only while it runs and a look is
	// due; RewardProblem says why they could not be read.
	Rewards       []experiment.ArmData
	RewardProblem string
	// Round is the analysis round run this reconcile, only when AnalysisDue
	// said so; nil otherwise.
	Round *v1alpha1.AnalysisRound
	// Gates are what the reconciler read about the HTTP and Job gate runs
	// in status.gates, by run id (gates.go).
	Gates map[string]GateObservation
}

// Event is one Kubernetes Event for the reconciler to record.
type Event struct {
	Type, Reason, Message string
}

// Decision is what the reconciler must write.
type Decision struct {
	// Weights to set on every managed route; nil leaves the VirtualService
	// alone (Failed). Subsets with weight 0 are listed so that they are
	// drained; the router sets unlisted subsets to 0 too.
	Weights []v1alpha1.SubsetWeight
	// Status is the complete new status.
	Status v1alpha1.ModelRolloutStatus
	// Promote asks for the spec update of a promotion: spec.stable becomes
	// Status.Candidate and spec.candidate is cleared.
	Promote bool
	// Events to record, after the writes succeeded.
	Events []Event
	// Outcome is set when a rollout ended this round (promoted, rolled_back,
	// failed), with its Duration from status.rolloutStartedAt.
	Outcome  string
	Duration time.Duration
	// Scale are the workload changes to write after the weights, each with
	// the reason history recorded. A failed one is retried: the status
	// still holds what should be there.
	Scale []ScaleAction
	// RequeueAfter is when the rollout needs another look even if nothing
	// changes in the cluster (0: only on watch events).
	RequeueAfter time.Duration
}

// Workload is one version's Deployment and the HPA that targets it, as
// spec.scaling.deploymentName names it.
type Workload struct {
	// Deployment is the Deployment's name.
	Deployment string
	// HPA is the name of the HorizontalPodAutoscaler whose scaleTargetRef
	// is the Deployment; empty when there is none.
	HPA string
	// Problem says why the workload cannot be scaled (the Deployment is
	// missing, or cannot be read), phrased with the fix.
	Problem string
}

// ScaleTarget is one field of one object Fulcrum scales.
type ScaleTarget struct {
	Kind, Name, Field string
}

// ScaleAction is one field to write.
type ScaleAction struct {
	ScaleTarget
	Subset   string
	From, To int32
	Reason   string
}
