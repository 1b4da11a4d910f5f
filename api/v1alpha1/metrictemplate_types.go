package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MetricTemplate is a reusable PromQL query template. ModelRollout metrics
// refer to it by name (spec.analysis.metrics[].template). Queries are Go text
// templates rendered with .Namespace, .Service, .Subsets, .SubsetRegex,
// .Stable, .Candidate, .Window and .VersionLabel (no range, if or other
// actions; functions index, len and print), and must return one series per
// version, labelled with the version label, so that one query serves every
// subset at once. Every selector of every query is confined to the
// rollout's namespace through namespaceLabel.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=mt,categories=fulcrum
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider.type`
// +kubebuilder:printcolumn:name="Unit",type=string,JSONPath=`.spec.unit`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MetricTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec MetricTemplateSpec `json:"spec"`
}

// MetricTemplateList is a list of MetricTemplates.
//
// +kubebuilder:object:root=true
type MetricTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetricTemplate `json:"items"`
}

// MetricTemplateSpec describes how to read one metric for every version.
//
// +kubebuilder:validation:XValidation:rule="has(self.query) || has(self.badQuery) || has(self.histogramQuery) || has(self.successQuery) || has(self.sumQuery)",message="spec: set at least one of query, badQuery (with sampleQuery), histogramQuery, or for an experiment's reward successQuery or sumQuery (with sampleQuery)"
// +kubebuilder:validation:XValidation:rule="(!has(self.successQuery) && !has(self.sumQuery)) || has(self.sampleQuery)",message="spec.sampleQuery is required with spec.successQuery or spec.sumQuery: a reward needs the trials (or the count of values) as well",fieldPath=".sampleQuery"
// +kubebuilder:validation:XValidation:rule="!(has(self.successQuery) && has(self.sumQuery))",message="spec: set successQuery (a Proportion reward) or sumQuery (a Mean reward), not both",fieldPath=".sumQuery"
// +kubebuilder:validation:XValidation:rule="!has(self.badQuery) || has(self.sampleQuery)",message="spec.sampleQuery is required with spec.badQuery: a sequential judge needs the number of requests as well as the number of bad ones",fieldPath=".sampleQuery"
type MetricTemplateSpec struct {
	// Provider that runs the queries.
	Provider Provider `json:"provider"`

	// Query returns the metric's value per version (for threshold and
	// relative judges).
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Query string `json:"query,omitempty"`

	// SampleQuery returns the number of samples (requests) per version in
	// the window; it feeds minSamples and the sequential and sample-ratio
	// judges.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	SampleQuery string `json:"sampleQuery,omitempty"`

	// BadQuery returns the number of bad events (errors, slow requests) per
	// version in the window, for sequential judges.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	BadQuery string `json:"badQuery,omitempty"`

	// SuccessQuery returns, for an experiment's Proportion reward, the
	// successes per version since the experiment started ({{.Window}} is
	// its age); sampleQuery then returns the trials.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	SuccessQuery string `json:"successQuery,omitempty"`

	// SumQuery returns, for an experiment's Mean reward, the sum of the
	// per-request values per version since the experiment started;
	// sampleQuery then returns how many values were summed.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	SumQuery string `json:"sumQuery,omitempty"`

	// HistogramQuery returns bucket counts per version and `le`, for drift
	// judges.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	HistogramQuery string `json:"histogramQuery,omitempty"`

	// VersionLabel is the label that carries the subset name in results.
	// +optional
	// +kubebuilder:default=destination_version
	// +kubebuilder:validation:Pattern=`^[a-zA-Z_][a-zA-Z0-9_]*$`
	VersionLabel string `json:"versionLabel,omitempty"`

	// NamespaceLabel is the label that carries a series' namespace. Fulcrum
	// sets it to the rollout's namespace on every selector of every query
	// (replacing any matcher the query has on it), so a template reads only
	// its rollout's namespace. Empty: the controller's default
	// (--query-namespace-label, destination_service_namespace, which Istio's
	// metrics carry); use namespace for series labelled by the scrape
	// configuration, such as Triton's, KServe's or a model server's own.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-zA-Z_][a-zA-Z0-9_]*$`
	NamespaceLabel string `json:"namespaceLabel,omitempty"`

	// Unit of the value, for display (ms, ratio, psi).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Unit string `json:"unit,omitempty"`
}

// ProviderType names a metrics provider.
// +kubebuilder:validation:Enum=prometheus
type ProviderType string

// ProviderPrometheus reads metrics from a Prometheus HTTP API.
const ProviderPrometheus ProviderType = "prometheus"

// Provider says where queries run.
type Provider struct {
	// Type of the provider. Only prometheus is supported; any other type is
	// rejected rather than silently replaced.
	// +kubebuilder:default=prometheus
	Type ProviderType `json:"type"`
	// Address overrides the controller's default Prometheus address. The
	// controller's credentials, headers and client certificate never go to
	// another address: a template that sets one connects with nothing but
	// what its httpClientConfigSecretRef gives.
	// +optional
	// +kubebuilder:validation:Pattern=`^https?://`
	Address string `json:"address,omitempty"`
	// HTTPClientConfigSecretRef names a key of a Secret in the template's
	// namespace whose value is Prometheus's HTTP client settings in YAML,
	// as in a Prometheus scrape config: basic_auth, authorization, oauth2,
	// tls_config (ca, cert, key as PEM text), proxy_url, http_headers,
	// follow_redirects, enable_http2. Values are written inline: fields
	// that name files (password_file, ca_file, ...) are refused, because
	// they would read the controller's own files. When set, the template's
	// queries use these settings and none of the controller's, at address
	// or, without one, at the controller's Prometheus. A changed Secret
	// takes effect within seconds; a missing or invalid one makes the
	// metric's rounds Error, never Pass.
	// +optional
	HTTPClientConfigSecretRef *SecretKeyRef `json:"httpClientConfigSecretRef,omitempty"`
}

// SecretKeyRef names one key of a Secret in the referring object's
// namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// Key within the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}
