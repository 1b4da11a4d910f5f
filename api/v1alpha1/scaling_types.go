package v1alpha1

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SubsetPlaceholder is replaced by a subset's name in
// spec.scaling.deploymentName.
const SubsetPlaceholder = "{{subset}}"

// Scaling says which workload serves each version and what Fulcrum may do
// to its replicas.
//
// One Deployment per version, named after the subset, is what Fulcrum
// expects; an HPA whose scaleTargetRef names that Deployment is found on its
// own. With such an HPA Fulcrum changes the HPA's minReplicas (never its
// maxReplicas when raising: above it, the raise stops at maxReplicas and
// the condition says so); without one, the Deployment's spec.replicas.
type Scaling struct {
	// DeploymentName is the name of each version's Deployment, in the
	// rollout's namespace, with {{subset}} standing for the subset's name:
	// "fraud-{{subset}}" is fraud-v2 for subset v2.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.contains('{{subset}}')",message="spec.scaling.deploymentName must contain {{subset}}, which stands for each version's subset name, for example fraud-{{subset}}"
	// +kubebuilder:validation:XValidation:rule="self.replace('{{subset}}', 'v1').matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="spec.scaling.deploymentName must give a DNS-1123 subdomain once {{subset}} is replaced: lower-case letters, digits, '-' and '.', for example fraud-{{subset}}"
	DeploymentName string `json:"deploymentName"`

	// ScaleAhead raises the candidate's replicas before a step (or the
	// promotion) that its Ready pods cannot carry, to
	// ceil(its share of the traffic / spec.readiness.requestsPerPod); the
	// step then waits, as without scaling, until those pods are Ready.
	// Needs spec.readiness.requestsPerPod.
	// +optional
	ScaleAhead bool `json:"scaleAhead,omitempty"`

	// ScaleDownAfter is how long after a promotion the previous stable
	// version's workload is scaled down to ScaleDownTo replicas, between
	// 1s and 720h. A new rollout, or the old version getting traffic
	// again, before then cancels it. Unset: the old version is never
	// scaled down.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('720h')",message="spec.scaling.scaleDownAfter must be between 1s and 720h, for example 30m"
	ScaleDownAfter *metav1.Duration `json:"scaleDownAfter,omitempty"`

	// ScaleDownTo is the replicas the old version keeps after
	// ScaleDownAfter, 0 by default. With an HPA, 0 sets the Deployment's
	// replicas to 0 (Kubernetes then leaves it alone); more than 0 lowers
	// the HPA's minReplicas and maxReplicas to it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	ScaleDownTo int32 `json:"scaleDownTo,omitempty"`
}

// DeploymentFor is the name of subset's Deployment.
func (s *Scaling) DeploymentFor(subset string) string {
	return strings.ReplaceAll(s.DeploymentName, SubsetPlaceholder, subset)
}

// Kinds and fields Fulcrum scales (ScaleChange.Kind, ScaleChange.Field).
const (
	KindDeployment = "Deployment"
	KindHPA        = "HorizontalPodAutoscaler"

	FieldReplicas    = "spec.replicas"
	FieldMinReplicas = "spec.minReplicas"
	FieldMaxReplicas = "spec.maxReplicas"
)

// ScalingStatus is what Fulcrum changed on the versions' workloads and
// what it will change next.
type ScalingStatus struct {
	// Changes Fulcrum made and still answers for, one per object field,
	// with the value it replaced. A rollback (or deleting the rollout with
	// onDelete RestoreStable) writes Original back, and the entry goes once
	// the field reads Original again.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Changes []ScaleChange `json:"changes,omitempty"`

	// ScaleDown is the old version's scale-down after a promotion, while it
	// waits for its time.
	// +optional
	ScaleDown *PendingScaleDown `json:"scaleDown,omitempty"`
}

// ScaleChange is one field of one workload that Fulcrum set.
type ScaleChange struct {
	// Subset whose workload this is.
	// +kubebuilder:validation:MaxLength=63
	Subset string `json:"subset"`
	// Kind is Deployment or HorizontalPodAutoscaler.
	// +kubebuilder:validation:Enum=Deployment;HorizontalPodAutoscaler
	Kind string `json:"kind"`
	// Name of the object, in the rollout's namespace.
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Field is spec.replicas, spec.minReplicas or spec.maxReplicas.
	// +kubebuilder:validation:Enum=spec.replicas;spec.minReplicas;spec.maxReplicas
	Field string `json:"field"`
	// Original is the value before Fulcrum's first change.
	Original int32 `json:"original"`
	// Set is the value Fulcrum wrote last.
	Set int32 `json:"set"`
	// At is when Fulcrum wrote it.
	At metav1.Time `json:"at"`
	// Reason Fulcrum wrote it.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
	// Restoring is true once Fulcrum decided to put Original back (a
	// rollback, or the version starting a new rollout after its
	// scale-down), until the field reads Original.
	// +optional
	Restoring bool `json:"restoring,omitempty"`
}

// PendingScaleDown is a scale-down waiting for its time.
type PendingScaleDown struct {
	// Subset to scale down: the stable version before the promotion.
	// +kubebuilder:validation:MaxLength=63
	Subset string `json:"subset"`
	// At is when it happens.
	At metav1.Time `json:"at"`
	// Replicas it goes down to (spec.scaling.scaleDownTo).
	Replicas int32 `json:"replicas"`
}
