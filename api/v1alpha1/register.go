package v1alpha1

func init() {
	SchemeBuilder.Register(&ModelRollout{}, &ModelRolloutList{}, &MetricTemplate{}, &MetricTemplateList{})
}
