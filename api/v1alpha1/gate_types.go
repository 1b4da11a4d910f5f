package v1alpha1

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Gates (spec.gates) are hooks that run at fixed points of a rollout: an
// HTTP call, a Kubernetes Job, or a person's approval. Those before a
// weight rises (PreStart, EachStep, PrePromote) hold the rollout until they
// pass; those after its end (PostPromote, OnRollback) run, are recorded and
// reported, and never hold anything. docs/hooks.md has every hook and the
// payload each gate receives.

// GateHook is the point of a rollout where a gate runs.
// +kubebuilder:validation:Enum=PreStart;EachStep;PrePromote;PostPromote;OnRollback
type GateHook string

// The hooks, in the order a rollout meets them.
const (
	// GatePreStart: the candidate's pods are Ready and it has no weight
	// yet (before the shadow stage's mirror, when there is one).
	GatePreStart GateHook = "PreStart"
	// GateEachStep: before each step's weight is written, the first
	// included; the move to 100% is the promotion (PrePromote).
	GateEachStep GateHook = "EachStep"
	// GatePrePromote: the last step passed; before the candidate gets
	// 100% and becomes stable.
	GatePrePromote GateHook = "PrePromote"
	// GatePostPromote: after a promotion. Never holds.
	GatePostPromote GateHook = "PostPromote"
	// GateOnRollback: after a rollback. Never holds.
	GateOnRollback GateHook = "OnRollback"
)

// Holds reports whether gates at the hook hold the rollout until they pass.
func (h GateHook) Holds() bool {
	return h == GatePreStart || h == GateEachStep || h == GatePrePromote
}

// GateFailurePolicy says what a failed gate does to the rollout.
// +kubebuilder:validation:Enum=Rollback;Hold
type GateFailurePolicy string

const (
	// GateFailRollback sends all traffic back to stable.
	GateFailRollback GateFailurePolicy = "Rollback"
	// GateFailHold pauses the rollout where it is, for a person to resume
	// (the gate runs again), promote or roll back.
	GateFailHold GateFailurePolicy = "Hold"
)

// Gate is one hook of spec.gates.
//
// +kubebuilder:validation:XValidation:rule="[has(self.http), has(self.job), has(self.approval)].filter(x, x).size() == 1",message="spec.gates[]: set exactly one of http, job and approval"
// +kubebuilder:validation:XValidation:rule="!has(self.approval) || self.at in ['PreStart', 'EachStep', 'PrePromote']",message="spec.gates[].approval waits for a person before a weight rises, so it runs only at PreStart, EachStep or PrePromote: after a promotion or a rollback nothing waits",fieldPath=".approval"
// +kubebuilder:validation:XValidation:rule="!has(self.onFailure) || self.at in ['PreStart', 'EachStep', 'PrePromote']",message="spec.gates[].onFailure: PostPromote and OnRollback gates never hold or roll back anything (a failure is recorded in history and an Event); leave onFailure out",fieldPath=".onFailure"
type Gate struct {
	// Name of the gate, unique in spec.gates; it names the gate in status,
	// history and the Job Fulcrum creates.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.gates[].name must be a DNS-1123 label of at most 40 characters: lower-case letters, digits and '-', for example load-test"
	Name string `json:"name"`

	// At is the hook: PreStart, EachStep, PrePromote, PostPromote or
	// OnRollback.
	At GateHook `json:"at"`

	// HTTP calls a URL and judges its answer.
	// +optional
	HTTP *HTTPGate `json:"http,omitempty"`

	// Job runs a Kubernetes Job in the rollout's namespace; it passes when
	// the Job completes and fails when the Job fails.
	// +optional
	Job *JobGate `json:"job,omitempty"`

	// Approval waits until a person approves (fulcrumctl approve, the
	// dashboard, or POST .../approve; RBAC verb approve).
	// +optional
	Approval *ApprovalGate `json:"approval,omitempty"`

	// OnFailure says what a failed or timed-out gate does: Rollback (the
	// default) or Hold (the rollout pauses; resuming runs the gate again).
	// Only for PreStart, EachStep and PrePromote.
	// +optional
	OnFailure GateFailurePolicy `json:"onFailure,omitempty"`

	// Timeout is how long the gate may take, retries and waiting
	// included, between 1s and 168h. Defaults: http 2m, job 30m; an
	// approval without one waits until a person acts.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('168h')",message="spec.gates[].timeout must be between 1s and 168h, for example 10m"
	Timeout metav1.Duration `json:"timeout,omitzero"`
}

// HTTPGate is a call to a URL. Its body is the gate's JSON payload
// (docs/hooks.md) unless Body gives a template.
//
// The controller makes the call, so whoever may create ModelRollouts
// chooses where the controller connects: by default only to Services of
// the rollout's own namespace (NAME.NAMESPACE.svc); fulcrum's
// --gate-allowed-hosts opens more.
type HTTPGate struct {
	// URL to call, http or https.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'http' || url(self).getScheme() == 'https')",message="spec.gates[].http.url must be an http or https URL, for example http://smoke.ml.svc:8080/check"
	URL string `json:"url"`

	// Method of the request; default POST.
	// +optional
	// +kubebuilder:validation:Enum=GET;POST;PUT
	Method string `json:"method,omitempty"`

	// Headers to send; values may come from Secrets in the rollout's
	// namespace.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Headers []GateHeader `json:"headers,omitempty"`

	// Body is a Go template (text/template) rendered with the payload
	// (docs/hooks.md), with the function json; empty sends the payload
	// itself as JSON. Not sent with GET.
	// +optional
	// +kubebuilder:validation:MaxLength=8192
	Body string `json:"body,omitempty"`

	// Retries after a failed attempt (no answer, a timeout, 429 or 5xx,
	// or an unreadable verdict), 0 to 10; default 2. An answer that says
	// fail is not retried.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	Retries *int32 `json:"retries,omitempty"`

	// RetryBackoff is the wait before the first retry, doubled for each
	// next one up to 1m, between 100ms and 5m; default 1s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('5m')",message="spec.gates[].http.retryBackoff must be between 100ms and 5m, for example 1s"
	RetryBackoff metav1.Duration `json:"retryBackoff,omitzero"`

	// AttemptTimeout bounds one attempt, between 100ms and 10m; default
	// 10s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('10m')",message="spec.gates[].http.attemptTimeout must be between 100ms and 10m, for example 10s"
	AttemptTimeout metav1.Duration `json:"attemptTimeout,omitzero"`

	// Expect says which answers pass; default: any 2xx status.
	// +optional
	Expect *HTTPExpect `json:"expect,omitempty"`
}

// GateHeader is one request header.
//
// +kubebuilder:validation:XValidation:rule="has(self.value) != has(self.valueFrom)",message="spec.gates[].http.headers[]: set value or valueFrom, exactly one"
type GateHeader struct {
	// Name of the header.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Name string `json:"name"`
	// Value of the header.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Value *string `json:"value,omitempty"`
	// ValueFrom reads the value from a key of a Secret in the rollout's
	// namespace, when the call is made.
	// +optional
	ValueFrom *SecretKeyRef `json:"valueFrom,omitempty"`
}

// HTTPExpect says which answers pass.
type HTTPExpect struct {
	// Status codes that pass; default any 2xx. Another status below 500
	// (but 429) fails at once; 429 and 5xx are retried.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Minimum=100
	// +kubebuilder:validation:items:Maximum=599
	Status []int32 `json:"status,omitempty"`
	// Verdict, when set, reads a field of the JSON answer: the gate passes
	// only when the status passes and the field holds one of pass.
	// +optional
	Verdict *JSONVerdict `json:"verdict,omitempty"`
}

// JSONVerdict reads a field of a JSON answer, such as
// {"verdict": "pass"}.
type JSONVerdict struct {
	// Field is the field's path, its names joined by dots: verdict, or
	// result.status for {"result": {"status": "ok"}}.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`
	Field string `json:"field"`
	// Pass are the values that pass (compared as text: "true" matches
	// true, "1" matches 1); default ["pass"]. Any other value fails
	// without a retry; a missing field or a body that is not JSON is
	// retried.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=256
	Pass []string `json:"pass,omitempty"`
}

// JobGate is a Job Fulcrum creates in the rollout's namespace, named
// after the rollout, the gate and the run, owned by the rollout. Every
// container gets FULCRUM_* variables describing the rollout, the payload
// among them (docs/hooks.md).
type JobGate struct {
	// Spec of the Job (batch/v1 JobSpec). The API server checks it when
	// Fulcrum creates the Job; a spec it refuses fails the gate with its
	// message. Defaults when left out: backoffLimit 0, the pods'
	// restartPolicy Never, ttlSecondsAfterFinished one day.
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Spec batchv1.JobSpec `json:"spec"`
}

// ApprovalGate waits for a person.
type ApprovalGate struct {
	// Instructions say what to check before approving; fulcrumctl and the
	// dashboard show them with the pending gate.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Instructions string `json:"instructions,omitempty"`
}

// GatesStatus is where the rollout's gates stand.
type GatesStatus struct {
	// Cleared is the latest hold point of the current rollout whose gates
	// all passed; a point at or before it does not run its gates again.
	// +optional
	Cleared *GatePoint `json:"cleared,omitempty"`
	// Point is the hold point whose gates run now, one after another in
	// spec order.
	// +optional
	Point *GatePoint `json:"point,omitempty"`
	// Pending is the gate of Point holding the rollout now.
	// +optional
	Pending *GateRun `json:"pending,omitempty"`
	// Passed are the gates of Point that passed already.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	Passed []string `json:"passed,omitempty"`
	// Background are PostPromote and OnRollback gates still running.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Background []GateRun `json:"background,omitempty"`
	// Results of the latest finished gates, newest last, bounded.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	Results []GateResult `json:"results,omitempty"`
}

// MaxGateResults bounds status.gates.results.
const MaxGateResults = 20

// GatePoint is a point of the rollout where gates hold it.
type GatePoint struct {
	// At is the hook.
	At GateHook `json:"at"`
	// Step is, for EachStep, the index of the step whose weight waits.
	// +optional
	Step *int32 `json:"step,omitempty"`
}

// GateType is the kind of a gate.
// +kubebuilder:validation:Enum=HTTP;Job;Approval
type GateType string

// The kinds of gates.
const (
	GateTypeHTTP     GateType = "HTTP"
	GateTypeJob      GateType = "Job"
	GateTypeApproval GateType = "Approval"
)

// GateRunState is what a running gate is doing.
// +kubebuilder:validation:Enum=Running;WaitingForApproval
type GateRunState string

// The states of a running gate.
const (
	GateRunning            GateRunState = "Running"
	GateWaitingForApproval GateRunState = "WaitingForApproval"
)

// GateRun is one run of a gate.
type GateRun struct {
	// Name of the gate in spec.gates.
	Name string `json:"name"`
	// At is its hook.
	At GateHook `json:"at"`
	// Step is the index of the step whose weight waits (EachStep), or the
	// step the rollout was at (the other hooks).
	// +optional
	Step *int32 `json:"step,omitempty"`
	// Weight is the candidate's weight the gate holds back (0 for the
	// hooks that hold nothing).
	// +optional
	Weight int32 `json:"weight,omitempty"`
	// Type of the gate.
	Type GateType `json:"type"`
	// ID names this run: the Job's name suffix, the runner's key, and the
	// payload's id (a receiver can tell a retry from a new run).
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id"`
	// State is Running, or WaitingForApproval.
	State GateRunState `json:"state"`
	// StartedAt is when the run started.
	StartedAt metav1.Time `json:"startedAt"`
	// Deadline is when the run times out; none for an approval without a
	// timeout.
	// +optional
	Deadline *metav1.Time `json:"deadline,omitempty"`
	// Attempts made so far (HTTP).
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// Job is the name of the Job (Job gates).
	// +optional
	Job string `json:"job,omitempty"`
	// Message says what the gate is doing or waiting for.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Message string `json:"message,omitempty"`
}

// GateOutcome is how a gate run ended.
// +kubebuilder:validation:Enum=Passed;Failed;TimedOut;Approved;Cancelled
type GateOutcome string

// The outcomes of a gate run.
const (
	GatePassed    GateOutcome = "Passed"
	GateFailed    GateOutcome = "Failed"
	GateTimedOut  GateOutcome = "TimedOut"
	GateApproved  GateOutcome = "Approved"
	GateCancelled GateOutcome = "Cancelled"
)

// GateResult is a finished gate run.
type GateResult struct {
	// Name of the gate.
	Name string `json:"name"`
	// At is its hook.
	At GateHook `json:"at"`
	// Step as in GateRun.
	// +optional
	Step *int32 `json:"step,omitempty"`
	// Type of the gate.
	Type GateType `json:"type"`
	// ID of the run.
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id"`
	// Outcome of the run.
	Outcome GateOutcome `json:"outcome"`
	// StartedAt and FinishedAt bound the run.
	StartedAt  metav1.Time `json:"startedAt"`
	FinishedAt metav1.Time `json:"finishedAt"`
	// Attempts made (HTTP).
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// Actor who approved, or whose action cancelled the run.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Actor string `json:"actor,omitempty"`
	// Message says why.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Message string `json:"message,omitempty"`
}

// MaxGates bounds spec.gates.
const MaxGates = 16
