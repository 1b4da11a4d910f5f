package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Notifier sends the history of the ModelRollouts in its namespace (started,
// step advanced, promoted, rolled back, ...) to chat, webhooks or
// Alertmanager. Every sink's address and credentials come from Secrets in
// the Notifier's namespace; only a generic webhook or Alertmanager without
// credentials may name its URL inline.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ntf,categories=fulcrum
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Delivered",type=integer,JSONPath=`.status.delivered`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.failed`
// +kubebuilder:printcolumn:name="Last Delivery",type=date,JSONPath=`.status.lastDeliveryTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Notifier struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   NotifierSpec   `json:"spec"`
	Status NotifierStatus `json:"status,omitempty"`
}

// NotifierList is a list of Notifiers.
//
// +kubebuilder:object:root=true
type NotifierList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Notifier `json:"items"`
}

// ClusterNotifier is a Notifier for the ModelRollouts of every namespace, or
// of the namespaces its filter selects. Its sinks read their Secrets from
// spec.secretNamespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cntf,categories=fulcrum
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Delivered",type=integer,JSONPath=`.status.delivered`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.failed`
// +kubebuilder:printcolumn:name="Last Delivery",type=date,JSONPath=`.status.lastDeliveryTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterNotifier struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterNotifierSpec `json:"spec"`
	Status NotifierStatus      `json:"status,omitempty"`
}

// ClusterNotifierList is a list of ClusterNotifiers.
//
// +kubebuilder:object:root=true
type ClusterNotifierList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterNotifier `json:"items"`
}

// NotifierSpec says which events go to which sinks.
type NotifierSpec struct {
	// Sinks receive every event the filter lets through, each in its own
	// format.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	Sinks []NotifierSink `json:"sinks"`

	// Filter selects the events; unset, every event of every rollout in
	// the namespace.
	// +optional
	Filter NotifierFilter `json:"filter,omitempty"`

	// Suspend stops deliveries while true; events meanwhile are not sent
	// later.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// ClusterNotifierSpec says which events of which namespaces go to which
// sinks.
//
// +kubebuilder:validation:XValidation:rule="has(self.secretNamespace) || self.sinks.all(s, (has(s.webhook) && has(s.webhook.url)) || (has(s.alertmanager) && has(s.alertmanager.url)))",message="spec.secretNamespace is required: a ClusterNotifier reads its sinks' Secrets (urlSecretRef, authorizationSecretRef) from one namespace; name it, for example fulcrum-system",fieldPath=".secretNamespace"
type ClusterNotifierSpec struct {
	// Sinks receive every event the filter lets through, each in its own
	// format.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	Sinks []NotifierSink `json:"sinks"`

	// SecretNamespace is the namespace of every Secret the sinks name.
	// Required when any sink reads a Secret.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.secretNamespace must be a namespace name (a DNS-1123 label): lower-case letters, digits and '-'"
	SecretNamespace string `json:"secretNamespace,omitempty"`

	// Filter selects the events; unset, every event of every rollout in
	// every namespace.
	// +optional
	Filter ClusterNotifierFilter `json:"filter,omitempty"`

	// Suspend stops deliveries while true; events meanwhile are not sent
	// later.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// NotifierSink is one destination: exactly one of webhook, slack, teams or
// alertmanager.
//
// +kubebuilder:validation:XValidation:rule="[has(self.webhook), has(self.slack), has(self.teams), has(self.alertmanager)].exists_one(x, x)",message="spec.sinks: set exactly one of webhook, slack, teams or alertmanager in each sink"
type NotifierSink struct {
	// Name of the sink, unique in the Notifier; status and metrics name
	// the sink by it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.sinks[].name must be a DNS-1123 label: lower-case letters, digits and '-', for example slack-ml"
	Name string `json:"name"`

	// Webhook posts each event as a CloudEvent (version 1.0, structured
	// mode, application/cloudevents+json).
	// +optional
	Webhook *WebhookSink `json:"webhook,omitempty"`
	// Slack posts each event to a Slack incoming webhook.
	// +optional
	Slack *SlackSink `json:"slack,omitempty"`
	// Teams posts each event as an Adaptive Card to a Microsoft Teams
	// Workflows (or incoming) webhook.
	// +optional
	Teams *TeamsSink `json:"teams,omitempty"`
	// Alertmanager posts alerts to Alertmanager's /api/v2/alerts: Warning
	// and Critical events fire, later events resolve them.
	// +optional
	Alertmanager *AlertmanagerSink `json:"alertmanager,omitempty"`
}

// WebhookSink is a generic HTTP endpoint that receives CloudEvents.
//
// +kubebuilder:validation:XValidation:rule="has(self.url) != has(self.urlSecretRef)",message="spec.sinks[].webhook: set url or urlSecretRef, exactly one"
// +kubebuilder:validation:XValidation:rule="!has(self.url) || !has(self.authorizationSecretRef)",message="spec.sinks[].webhook: an inline url takes no credentials; put the URL in a Secret as well (urlSecretRef), so that only someone who may write Secrets chooses where a credential is sent",fieldPath=".authorizationSecretRef"
type WebhookSink struct {
	// URL of the endpoint, written inline: for endpoints whose address is
	// no secret and that need no credentials.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'http' || url(self).getScheme() == 'https')",message="spec.sinks[].webhook.url must be an http or https URL, for example https://events.example.com/fulcrum"
	URL string `json:"url,omitempty"`
	// URLSecretRef names the Secret key holding the endpoint's URL.
	// +optional
	URLSecretRef *SecretKeyRef `json:"urlSecretRef,omitempty"`
	// AuthorizationSecretRef names the Secret key whose value is sent as
	// the Authorization header, for example "Bearer abc123".
	// +optional
	AuthorizationSecretRef *SecretKeyRef `json:"authorizationSecretRef,omitempty"`
}

// SlackSink is a Slack incoming webhook. Its URL is a credential: anyone
// who has it can post to the channel, so it is read from a Secret.
type SlackSink struct {
	// URLSecretRef names the Secret key holding the incoming webhook's URL
	// (https://hooks.slack.com/services/...).
	URLSecretRef SecretKeyRef `json:"urlSecretRef"`
}

// TeamsSink is a Microsoft Teams webhook (a Workflows "post to a channel
// when a webhook request is received" flow, or a legacy incoming webhook).
// Its URL is a credential, read from a Secret.
type TeamsSink struct {
	// URLSecretRef names the Secret key holding the webhook's URL.
	URLSecretRef SecretKeyRef `json:"urlSecretRef"`
}

// AlertmanagerSink is an Alertmanager (or a service that speaks its
// /api/v2/alerts).
//
// +kubebuilder:validation:XValidation:rule="has(self.url) != has(self.urlSecretRef)",message="spec.sinks[].alertmanager: set url or urlSecretRef, exactly one"
// +kubebuilder:validation:XValidation:rule="!has(self.url) || !has(self.authorizationSecretRef)",message="spec.sinks[].alertmanager: an inline url takes no credentials; put the URL in a Secret as well (urlSecretRef), so that only someone who may write Secrets chooses where a credential is sent",fieldPath=".authorizationSecretRef"
type AlertmanagerSink struct {
	// URL is Alertmanager's base address, for example
	// http://alertmanager.monitoring:9093; alerts go to URL/api/v2/alerts.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'http' || url(self).getScheme() == 'https')",message="spec.sinks[].alertmanager.url must be an http or https URL, for example http://alertmanager.monitoring:9093"
	URL string `json:"url,omitempty"`
	// URLSecretRef names the Secret key holding Alertmanager's base
	// address.
	// +optional
	URLSecretRef *SecretKeyRef `json:"urlSecretRef,omitempty"`
	// AuthorizationSecretRef names the Secret key whose value is sent as
	// the Authorization header, for example "Basic dXNlcjpwYXNz".
	// +optional
	AuthorizationSecretRef *SecretKeyRef `json:"authorizationSecretRef,omitempty"`
	// Labels added to every alert, for Alertmanager's routes (team,
	// pager). They cannot replace alertname, namespace, rollout or
	// severity.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[a-zA-Z_][a-zA-Z0-9_]*$'))",message="spec.sinks[].alertmanager.labels: every key must be a Prometheus label name: letters, digits and '_', not starting with a digit"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k in ['alertname', 'namespace', 'rollout', 'severity'])",message="spec.sinks[].alertmanager.labels cannot set alertname, namespace, rollout or severity: Fulcrum sets them to find the alert again when it resolves; choose another key, for example team"
	Labels map[string]string `json:"labels,omitempty"`
	// ResolveAfter bounds how long an alert fires when no later event
	// resolves it (a rolled-back rollout that is never promoted), between
	// 5m and 720h; default 24h. Alerts for one-off events (an ignored
	// request, traffic moved off a version) last 15m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5m') && duration(self) <= duration('720h')",message="spec.sinks[].alertmanager.resolveAfter must be between 5m and 720h, for example 24h"
	ResolveAfter *metav1.Duration `json:"resolveAfter,omitempty"`
}

// Severity ranks events: Info, Warning, Critical.
// +kubebuilder:validation:Enum=Info;Warning;Critical
type Severity string

// The severities, lowest first.
const (
	SeverityInfo     Severity = "Info"
	SeverityWarning  Severity = "Warning"
	SeverityCritical Severity = "Critical"
)

// NotifierFilter selects the events of a Notifier. Every field that is set
// must match.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.rollouts) && has(self.rolloutSelector))",message="spec.filter: set rollouts (names) or rolloutSelector (labels), not both",fieldPath=".rolloutSelector"
type NotifierFilter struct {
	// Rollouts are the names of the ModelRollouts whose events are sent;
	// empty, every rollout's.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.all(n, n.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))",message="spec.filter.rollouts: each entry must be a ModelRollout name (a DNS-1123 subdomain), for example fraud"
	Rollouts []string `json:"rollouts,omitempty"`

	// RolloutSelector selects ModelRollouts by their labels.
	// +optional
	RolloutSelector *metav1.LabelSelector `json:"rolloutSelector,omitempty"`

	// Types are the history entry types sent (status.history[].type);
	// empty, every type.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Enum=Started;StepAdvanced;Paused;Resumed;ManualSplit;Promoted;RolledBack;Failed;Recovered;StableChanged;IntentIgnored;IntentSuperseded;Adopted;TrafficRestored;ShadowPassed;Warm;ExperimentEnded;ScaledUp;ScaledDown;ScaleRestored;ScaleDownCancelled;ApprovalPending;Approved;GatePassed;GateFailed
	Types []string `json:"types,omitempty"`

	// MinSeverity is the least severity sent; default Info (everything).
	// RolledBack and Failed are Critical; Paused, IntentIgnored,
	// TrafficRestored and an experiment that was stopped are Warning; the
	// rest Info.
	// +optional
	MinSeverity Severity `json:"minSeverity,omitempty"`
}

// ClusterNotifierFilter selects the events of a ClusterNotifier: those of
// NotifierFilter, in the namespaces named or selected.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.namespaces) && has(self.namespaceSelector))",message="spec.filter: set namespaces (names) or namespaceSelector (labels), not both",fieldPath=".namespaceSelector"
type ClusterNotifierFilter struct {
	NotifierFilter `json:",inline"`

	// Namespaces whose rollouts' events are sent; empty, every namespace.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.all(n, n.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))",message="spec.filter.namespaces: each entry must be a namespace name (a DNS-1123 label), for example ml"
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelector selects namespaces by their labels.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// Notifier condition types and reasons.
const (
	// NotifierReady is True when every sink's Secrets exist and hold a
	// usable URL, and the filter's selectors parse.
	NotifierReady = "Ready"

	NotifierReasonReady          = "Ready"
	NotifierReasonSecretNotFound = "SecretNotFound"
	NotifierReasonInvalidSecret  = "InvalidSecret"
	NotifierReasonInvalidFilter  = "InvalidFilter"
)

// NotifierStatus is what the controller delivered.
type NotifierStatus struct {
	// ObservedGeneration is the spec generation the Ready condition
	// reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready (every sink's Secrets found and usable).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Delivered counts the events delivered, summed over the sinks.
	// +optional
	Delivered int64 `json:"delivered,omitempty"`
	// Failed counts the events that could not be delivered after every
	// retry, summed over the sinks.
	// +optional
	Failed int64 `json:"failed,omitempty"`

	// LastDeliveryTime is when an event was last delivered.
	// +optional
	LastDeliveryTime *metav1.Time `json:"lastDeliveryTime,omitempty"`
	// LastFailureTime is when a delivery last failed.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`
	// LastError says why the latest failed delivery failed, naming the
	// sink; it never quotes a Secret's value.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastError string `json:"lastError,omitempty"`
}
