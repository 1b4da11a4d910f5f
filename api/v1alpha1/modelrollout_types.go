package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ModelRollout moves live traffic from a model's stable version to a candidate
// version, step by step, judging every step from metrics. Each version is a
// subset of an Istio DestinationRule, whose traffic the named HTTP routes of
// a VirtualService split; or a Kubernetes Service, named in the backendRefs
// of a Gateway API HTTPRoute's or GRPCRoute's rules. The route object stays
// the user's: Fulcrum owns only the weights of the routes it manages.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mro;mr,categories=fulcrum
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Stable",type=string,JSONPath=`.spec.stable`
// +kubebuilder:printcolumn:name="Candidate",type=string,JSONPath=`.spec.candidate`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.status.candidateWeight`,description="Percent of traffic on the candidate"
// +kubebuilder:printcolumn:name="Step",type=integer,JSONPath=`.status.step`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ModelRollout struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ModelRolloutSpec   `json:"spec"`
	Status ModelRolloutStatus `json:"status,omitempty"`
}

// ModelRolloutList is a list of ModelRollouts.
//
// +kubebuilder:object:root=true
type ModelRolloutList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ModelRollout `json:"items"`
}

// ModelRolloutSpec is what the user asks for.
//
// +kubebuilder:validation:XValidation:rule="!has(self.candidate) || self.candidate != self.stable",message="spec.candidate must differ from spec.stable: name the new version's subset as the candidate",fieldPath=".candidate"
// +kubebuilder:validation:XValidation:rule="!has(self.scaling) || !has(self.scaling.scaleAhead) || !self.scaling.scaleAhead || (has(self.readiness) && (has(self.readiness.requestsPerPod) || (has(self.readiness.requestsPerPodQuery) && size(self.readiness.requestsPerPodQuery) > 0)))",message="spec.scaling.scaleAhead needs spec.readiness.requestsPerPod (what one Ready pod serves, requests/s) or requestsPerPodQuery to know how many replicas a step needs: set one, or set scaleAhead to false",fieldPath=".scaling.scaleAhead"
// +kubebuilder:validation:XValidation:rule="!has(self.intent) || self.intent.action != 'Start' || (has(self.candidate) && size(self.candidate) > 0)",message="spec.intent: action Start needs spec.candidate set to the subset to roll out",fieldPath=".intent.action"
// +kubebuilder:validation:XValidation:rule="[has(self.virtualService), has(self.httpRoute), has(self.grpcRoute)].filter(x, x).size() == 1",message="spec: name the routes Fulcrum manages with exactly one of virtualService (Istio, with destinationRule), httpRoute or grpcRoute (Gateway API)"
// +kubebuilder:validation:XValidation:rule="has(self.virtualService) == (has(self.destinationRule) && size(self.destinationRule) > 0)",message="spec.destinationRule: a virtualService needs the DestinationRule whose subsets are the versions; an httpRoute or grpcRoute takes none (its versions are the Services in its backendRefs)",fieldPath=".destinationRule"
// +kubebuilder:validation:XValidation:rule="has(self.virtualService) || !has(self.strategy) || (!has(self.strategy.experiment) && (!has(self.strategy.canary) || !has(self.strategy.canary.shadow)))",message="spec.strategy: the experiment strategy and the shadow stage need an Istio virtualService (sticky match routes and mirrors); with a Gateway API route use a canary without shadow",fieldPath=".strategy"
// +kubebuilder:validation:XValidation:rule="has(self.virtualService) || !has(self.readiness) || !has(self.readiness.warmup) || !has(self.readiness.warmup.requests)",message="spec.readiness.warmup.requests need an Istio virtualService (Fulcrum routes them with a header match route); with a Gateway API route, leave requests out and let the gate read the candidate's latency",fieldPath=".readiness.warmup.requests"
// +kubebuilder:validation:XValidation:rule="!has(self.gates) || size(self.gates) == 0 || !has(self.strategy) || !has(self.strategy.experiment)",message="spec.gates run at a canary's steps and promotion; an experiment has neither: remove spec.gates or use a canary strategy",fieldPath=".gates"
type ModelRolloutSpec struct {
	// VirtualService whose HTTP route weights Fulcrum manages. It stays the
	// user's: only the weights of the routes named here are ever written.
	// Set exactly one of virtualService, httpRoute and grpcRoute.
	// +optional
	VirtualService *VirtualServiceRef `json:"virtualService,omitempty"`

	// DestinationRule (in the rollout's namespace) whose subsets are the
	// model's versions. Required with virtualService, and only then.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="spec.destinationRule must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.'"
	DestinationRule string `json:"destinationRule,omitempty"`

	// HTTPRoute (gateway.networking.k8s.io/v1) whose rules' backendRef
	// weights Fulcrum manages. Each version is the Service a backendRef
	// names: spec.stable and spec.candidate are Service names.
	// +optional
	HTTPRoute *GatewayRouteRef `json:"httpRoute,omitempty"`

	// GRPCRoute (gateway.networking.k8s.io/v1), as httpRoute, for model
	// servers that speak gRPC (Triton, KServe v2).
	// +optional
	GRPCRoute *GatewayRouteRef `json:"grpcRoute,omitempty"`

	// Service is the Kubernetes Service of the model, as metrics name it
	// (destination_service_name). Defaults to the short name of the
	// DestinationRule's host.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.service must be a DNS-1123 label: lower-case letters, digits and '-'"
	Service string `json:"service,omitempty"`

	// Stable is the subset that serves all traffic when no rollout runs.
	// Fulcrum sets it to the candidate when a rollout is promoted.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.stable must be a DNS-1123 label (a DestinationRule subset, or a Service for a Gateway API route): lower-case letters, digits and '-'"
	Stable string `json:"stable"`

	// Candidate is the subset to roll out. Setting it starts a rollout;
	// Fulcrum clears it when the rollout is promoted.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == '' || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.candidate must be a DNS-1123 label (a DestinationRule subset, or a Service for a Gateway API route): lower-case letters, digits and '-'"
	Candidate string `json:"candidate,omitempty"`

	// Strategy says how traffic moves to the candidate.
	// +optional
	Strategy Strategy `json:"strategy,omitempty"`

	// Readiness gates traffic on the pods of each subset.
	// +optional
	Readiness Readiness `json:"readiness,omitempty"`

	// Scaling lets Fulcrum change the replicas of each version's Deployment
	// (or the minReplicas of the HPA that targets it): raise the
	// candidate's ahead of a step its Ready pods cannot carry
	// (scaleAhead), and scale the old version down some time after a
	// promotion (scaleDownAfter). Every change is recorded in
	// status.scaling with the value it replaced, and a rollback puts that
	// value back. Unset: Fulcrum never scales anything.
	// +optional
	Scaling *Scaling `json:"scaling,omitempty"`

	// Analysis judges every step from metrics. Without metrics a rollout
	// advances on time alone, and its status says that no analysis ran.
	// +optional
	Analysis *Analysis `json:"analysis,omitempty"`

	// Gates are hooks at fixed points of a rollout: an HTTP call, a Job,
	// or a person's approval (docs/hooks.md). Gates before a weight rises
	// hold the rollout until they pass; a rollback, or a person's promote
	// or split, never waits for them.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Gates []Gate `json:"gates,omitempty"`

	// OnMetricsUnavailable says what happens while the metrics provider
	// cannot answer: Hold keeps the current step, Rollback returns all
	// traffic to stable once the analysis failure limit is reached.
	// +optional
	// +kubebuilder:default=Hold
	OnMetricsUnavailable MetricsUnavailablePolicy `json:"onMetricsUnavailable,omitempty"`

	// OnDelete says what deleting the ModelRollout does to the managed
	// routes: RestoreStable (the default) puts the stable subset back at 100%
	// before the object goes (a finalizer); Keep leaves the weights as they
	// are, for handing the VirtualService back to a person or another tool.
	// +optional
	// +kubebuilder:default=RestoreStable
	OnDelete OnDeletePolicy `json:"onDelete,omitempty"`

	// Intent is the latest action requested by a person or a pipeline
	// (through the admin API, fulcrumctl or kubectl). The controller applies
	// each intent once and records its id in status.observedIntent.
	// +optional
	Intent *Intent `json:"intent,omitempty"`
}

// GatewayRouteRef names a Gateway API route in the rollout's namespace and
// the rules whose backendRef weights Fulcrum manages.
type GatewayRouteRef struct {
	// Name of the HTTPRoute or GRPCRoute.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="the route's name must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.'"
	Name string `json:"name"`

	// Rules are the names of the rules to manage (rules[].name). May be
	// left out when the route has exactly one rule, named or not.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	Rules []string `json:"rules,omitempty"`
}

// VirtualServiceRef names a VirtualService in the rollout's namespace and the
// HTTP routes whose weights Fulcrum manages.
type VirtualServiceRef struct {
	// Name of the VirtualService.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="spec.virtualService.name must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.'"
	Name string `json:"name"`

	// Routes are the names of the HTTP routes to manage. May be left out when
	// the VirtualService has exactly one HTTP route, named or not.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	Routes []string `json:"routes,omitempty"`
}

// Strategy says how traffic moves to the candidate.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.canary) && has(self.experiment))",message="spec.strategy: set canary or experiment, not both"
type Strategy struct {
	// Canary moves traffic in steps.
	// +optional
	Canary *CanaryStrategy `json:"canary,omitempty"`
	// Experiment compares versions on a business metric with sticky users
	// and stops when the answer is clear; setting spec.candidate to one of
	// its arms starts it.
	// +optional
	Experiment *ExperimentStrategy `json:"experiment,omitempty"`
}

// CanaryStrategy moves traffic to the candidate in increasing steps.
type CanaryStrategy struct {
	// Steps are the candidate's weights in percent, strictly increasing and
	// ending at 100. Reaching 100 promotes the candidate.
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=100
	// +kubebuilder:validation:XValidation:rule="self[size(self)-1] == 100",message="spec.strategy.canary.steps must end at 100 (the last step promotes the candidate), for example [5, 25, 50, 100]"
	// +kubebuilder:validation:XValidation:rule="self.isSorted() && self.all(x, self.filter(y, y == x).size() == 1)",message="spec.strategy.canary.steps must strictly increase, for example [5, 25, 50, 100]"
	Steps []int32 `json:"steps"`

	// MinStepDuration is the least time spent at each step, between 1s and
	// 24h, whatever the analysis says. Unset, a rollout with a sequential
	// metric (its steps follow the evidence) stays at least 5s at a step,
	// and any other rollout 1m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="spec.strategy.canary.minStepDuration must be between 1s and 24h, for example 1m"
	MinStepDuration metav1.Duration `json:"minStepDuration,omitzero"`
	// Shadow, when set, comes before the first step: the managed routes
	// mirror a share of live requests to the candidate (Istio's mirror and
	// mirrorPercentage) while every user is still answered by stable, and
	// the analysis judges the candidate on those copies. When it passes
	// for MinDuration the mirror is removed and the first step starts; when
	// it fails the rollout rolls back having exposed no user.
	// +optional
	Shadow *ShadowStage `json:"shadow,omitempty"`
}

// ShadowStage mirrors traffic to the candidate before any user is served by
// it.
type ShadowStage struct {
	// Percent of requests copied to the candidate, 1 to 100.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent,omitempty"`
	// MinDuration is the least time in shadow, between 1s and 24h; the
	// canary's minStepDuration rule when unset.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="spec.strategy.canary.shadow.minDuration must be between 1s and 24h, for example 1m"
	MinDuration metav1.Duration `json:"minDuration,omitzero"`
}

// Readiness gates traffic on the pods of each subset.
//
// +kubebuilder:validation:XValidation:rule="!has(self.requestsPerPod) || !has(self.requestsPerPodQuery) || size(self.requestsPerPodQuery) == 0",message="spec.readiness: set requestsPerPod (a number) or requestsPerPodQuery (a PromQL query that measures it), not both",fieldPath=".requestsPerPodQuery"
type Readiness struct {
	// MinReadyPods is how many Ready pods a subset needs before any traffic
	// goes to it.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MinReadyPods int32 `json:"minReadyPods,omitempty"`
	// RequestsPerPod is the most requests per second one Ready pod of any
	// version serves well. When set, no step, promotion or split raises a
	// version's weight beyond what its Ready pods carry: its share of the
	// model's traffic (istio_requests_total of all versions, the larger of
	// its rate over the last minute and between the last two scrapes) must
	// not exceed Ready pods × RequestsPerPod. A
	// step that would waits for more Ready pods, saying how many. Rollbacks
	// are never held back. Unset: no capacity check.
	// +optional
	// +kubebuilder:validation:Minimum=0.001
	// +kubebuilder:validation:Maximum=1000000
	RequestsPerPod *float64 `json:"requestsPerPod,omitempty"`
	// RequestsPerPodQuery measures what one Ready pod serves instead of
	// stating it: a PromQL query (Go template with {{.Namespace}} and
	// {{.Service}}) whose result is one pod's capacity in requests per
	// second, for model servers that export it. A vector takes its
	// smallest value; no data holds rising weights, as an unreadable rate
	// does. Like spec.analysis.metrics[].query it is an inline query:
	// fulcrum runs it only with --allow-inline-queries, confined to the
	// rollout's namespace (--query-namespace-label). Exclusive with
	// RequestsPerPod.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	RequestsPerPodQuery string `json:"requestsPerPodQuery,omitempty"`
	// Warmup holds the candidate's first user-facing weight (and, with
	// eachStep, every increase) until it is warm: its p99 latency, as its
	// sidecar reports it over the last window, is at most maxP99 on at least
	// minRequests requests. Mirrored copies (the shadow stage) and warm-up
	// requests count. Not warm within timeout: the rollout rolls back,
	// having served no user at the weight it waited for. Unset: Ready pods
	// are enough.
	// +optional
	Warmup *WarmupGate `json:"warmup,omitempty"`
}

// WarmupGate says when a candidate is warm enough to serve users.
type WarmupGate struct {
	// MaxP99 is the latency objective a warm candidate meets: its p99 over
	// window, between 1ms and 1h (200ms is the usual figure for an online
	// model).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1ms') && duration(self) <= duration('1h')",message="spec.readiness.warmup.maxP99 must be between 1ms and 1h, for example 200ms"
	MaxP99 metav1.Duration `json:"maxP99"`
	// Window the p99 is measured over, between 5s and 1h; default 1m. Slow
	// cold requests count until they are older than the window.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5s') && duration(self) <= duration('1h')",message="spec.readiness.warmup.window must be between 5s and 1h, for example 1m"
	Window metav1.Duration `json:"window,omitzero"`
	// MinRequests the candidate must have answered in the window before its
	// p99 counts; default 50. Fewer is not evidence of warmth.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MinRequests int32 `json:"minRequests,omitempty"`
	// EachStep checks warmth before every increase of the candidate's
	// weight, not only the first (a model that scaled out has new, cold
	// replicas).
	// +optional
	EachStep bool `json:"eachStep,omitempty"`
	// Timeout is how long the gate waits for warmth before the rollout rolls
	// back, between 10s and 24h; default 10m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s') && duration(self) <= duration('24h')",message="spec.readiness.warmup.timeout must be between 10s and 24h, for example 10m"
	Timeout metav1.Duration `json:"timeout,omitzero"`
	// Requests, when set, are warm-up requests Fulcrum sends to the
	// candidate through the mesh while the gate waits, for models with no
	// mirrored traffic to warm them.
	// +optional
	Requests *WarmupRequests `json:"requests,omitempty"`
}

// WarmupRequests are the warm-up requests Fulcrum sends while a warm-up gate
// waits. Each carries the header x-fulcrum-warmup naming the candidate, and
// Fulcrum writes a route in front of the managed routes that sends exactly
// those requests to the candidate's subset; the route goes when the gate
// passes or the rollout ends. VirtualService routing happens in the
// client's proxy, so Fulcrum's pod must be in the mesh (sidecar injection),
// or url must be a gateway the VirtualService is bound to.
type WarmupRequests struct {
	// ConfigMap in the rollout's namespace holding the request bodies: one
	// request per key of data and binaryData, sent in key order, round and
	// round.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ConfigMap string `json:"configMap"`
	// URL the requests are sent to: the model's address in the mesh, e.g.
	// http://fraud.ml.svc.cluster.local/v1/models/fraud:predict.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'http' || url(self).getScheme() == 'https')",message="spec.readiness.warmup.requests.url must be an http or https URL, for example http://fraud.ml.svc.cluster.local/predict"
	URL string `json:"url"`
	// Host overrides the Host header (the mesh routes by it), for a url
	// that names a gateway's address rather than the model's host.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Host string `json:"host,omitempty"`
	// Method of the requests; default POST.
	// +optional
	// +kubebuilder:validation:Enum=GET;POST;PUT
	Method string `json:"method,omitempty"`
	// ContentType of the bodies; default application/json.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ContentType string `json:"contentType,omitempty"`
	// RatePerSecond is how many requests are sent per second, 1 to 1000;
	// default 10.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	RatePerSecond int32 `json:"ratePerSecond,omitempty"`
}

// MetricsUnavailablePolicy says what to do while metrics cannot be read.
// +kubebuilder:validation:Enum=Hold;Rollback
type MetricsUnavailablePolicy string

const (
	// MetricsUnavailableHold keeps the current step until metrics return.
	MetricsUnavailableHold MetricsUnavailablePolicy = "Hold"
	// MetricsUnavailableRollback treats unreadable metrics as failed rounds.
	MetricsUnavailableRollback MetricsUnavailablePolicy = "Rollback"
)

// OnDeletePolicy says what deleting a ModelRollout does to its routes.
// +kubebuilder:validation:Enum=RestoreStable;Keep
type OnDeletePolicy string

const (
	// OnDeleteRestoreStable returns the managed routes to stable 100% before
	// the ModelRollout is removed.
	OnDeleteRestoreStable OnDeletePolicy = "RestoreStable"
	// OnDeleteKeep leaves the weights as they are.
	OnDeleteKeep OnDeletePolicy = "Keep"
)

// SubsetWeight is the share of traffic, in percent, sent to one subset.
type SubsetWeight struct {
	// Subset is a DestinationRule subset name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="subset must be a DNS-1123 label (a DestinationRule subset name)"
	Subset string `json:"subset"`
	// Weight in percent, an integer from 0 to 100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight int32 `json:"weight"`
}

// IntentAction is an action a person or a pipeline asks for.
// +kubebuilder:validation:Enum=Start;Pause;Resume;Promote;Rollback;Split;Approve
type IntentAction string

// The actions of an Intent.
const (
	IntentStart    IntentAction = "Start"
	IntentPause    IntentAction = "Pause"
	IntentResume   IntentAction = "Resume"
	IntentPromote  IntentAction = "Promote"
	IntentRollback IntentAction = "Rollback"
	IntentSplit    IntentAction = "Split"
	// IntentApprove passes the pending approval gate (spec.gates[].approval).
	IntentApprove IntentAction = "Approve"
)

// Intent is one requested action. The admin API writes it; the controller
// applies it once (status.observedIntent == id) and records it in history.
//
// +kubebuilder:validation:XValidation:rule="self.action == 'Split' ? (has(self.weights) && size(self.weights) >= 2) : !has(self.weights)",message="spec.intent.weights: give at least two subset weights for action Split, and none for other actions",fieldPath=".weights"
// +kubebuilder:validation:XValidation:rule="!has(self.gate) || self.action == 'Approve'",message="spec.intent.gate names the approval gate an Approve passes; other actions take none",fieldPath=".gate"
type Intent struct {
	// ID makes the intent unique; repeating a request with the same id does
	// not repeat the action.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._-]+$`
	ID string `json:"id"`

	// Action to apply.
	Action IntentAction `json:"action"`

	// Weights pinned by a Split, one entry per subset, summing to 100.
	// +optional
	// +listType=map
	// +listMapKey=subset
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.map(w, w.weight).sum() == 100",message="spec.intent.weights must sum to 100, for example v1=70 v2=30"
	Weights []SubsetWeight `json:"weights,omitempty"`

	// Gate is the approval gate an Approve passes; the admin API fills in
	// the pending one. An Approve for a gate that is not pending is
	// ignored.
	// +optional
	// +kubebuilder:validation:MaxLength=40
	Gate string `json:"gate,omitempty"`

	// Actor who asked, as authenticated by the admin API.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Actor string `json:"actor,omitempty"`

	// Reason the actor gave.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`

	// RequestedAt is when the action was asked for.
	// +optional
	RequestedAt *metav1.Time `json:"requestedAt,omitempty"`

	// Supersedes is the intent this one replaced before the controller
	// applied it (a rollback wins over anything pending). The controller
	// records it in history as superseded, so no request is lost silently.
	// +optional
	Supersedes *SupersededIntent `json:"supersedes,omitempty"`
}

// SupersededIntent names a pending intent that a newer one replaced.
type SupersededIntent struct {
	// ID of the replaced intent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id"`
	// Action it asked for.
	Action IntentAction `json:"action"`
	// Actor who asked for it.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Actor string `json:"actor,omitempty"`
}
