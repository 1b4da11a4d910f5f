// Package v1alpha1 holds Fulcrum's API types: ModelRollout, the single source of
// truth for moving traffic between versions of a model; MetricTemplate, a
// reusable PromQL query template that analysis metrics refer to by name; and
// Notifier and ClusterNotifier, which send rollouts' history to chat,
// webhooks and Alertmanager.
//
// Validation that one object can prove on its own lives here as CEL rules
// (x-kubernetes-validations) so the API server enforces it with no webhook; the
// rest (objects that must exist, routes owned by two rollouts) lives in the
// webhook package. Deepcopy code and the CRD YAML in manifests/crd are
// generated from these files by `make generate`.
//
// +kubebuilder:object:generate=true
// +groupName=fulcrum.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "fulcrum.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	// It uses apimachinery only, so importing the API stays cheap.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &ModelRollout{}, &ModelRolloutList{}, &MetricTemplate{}, &MetricTemplateList{},
		&Notifier{}, &NotifierList{}, &ClusterNotifier{}, &ClusterNotifierList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Resource names as RBAC and SubjectAccessReview see them.
const (
	ResourceModelRollouts    = "modelrollouts"
	ResourceMetricTemplates  = "metrictemplates"
	ResourceNotifiers        = "notifiers"
	ResourceClusterNotifiers = "clusternotifiers"
)
