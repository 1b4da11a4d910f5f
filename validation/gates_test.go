package validation_test

import (
	"context"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

// What the CRD cannot check of a gate: a Job gate's pod (its spec is kept
// as written), and an HTTP gate's host the controller refuses by default.
func TestValidateGates(t *testing.T) {
	mr := rollout(func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Gates = []v1alpha1.Gate{
			{Name: "ok-job", At: v1alpha1.GatePreStart, Job: &v1alpha1.JobGate{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "eval:1"}}}}}}},
			{Name: "no-pod", At: v1alpha1.GateEachStep, Job: &v1alpha1.JobGate{}},
			{Name: "always", At: v1alpha1.GatePrePromote, Job: &v1alpha1.JobGate{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{{Name: "c", Image: "eval:1"}}}}}}},
			{Name: "here", At: v1alpha1.GatePreStart, HTTP: &v1alpha1.HTTPGate{URL: "http://smoke.ml.svc:8080/check"}},
			{Name: "elsewhere", At: v1alpha1.GatePostPromote, HTTP: &v1alpha1.HTTPGate{URL: "https://registry.example.com/promoted"}},
		}
	})
	errs, warns := validation.ValidateRollout(context.Background(), cluster(), mr, inline)
	assertErrors(t, errs, []wantErr{
		{"spec.gates[1].job.spec.template.spec.containers", field.ErrorTypeRequired, "a Job gate runs a pod"},
		{"spec.gates[2].job.spec.template.spec.restartPolicy", field.ErrorTypeNotSupported, ""},
	})
	joined := strings.Join(warns, "\n")
	if !strings.Contains(joined, "spec.gates[4].http.url: registry.example.com is not a Service of namespace ml") || strings.Contains(joined, "spec.gates[3]") {
		t.Fatalf("warnings:\n%s", joined)
	}
	// An update that leaves the gates alone does not fail on them.
	old := mr.DeepCopy()
	mr.Spec.Candidate = "v3"
	errs, _ = validation.ValidateRolloutUpdate(context.Background(), cluster(), old, mr, inline)
	for _, e := range errs {
		if strings.HasPrefix(e.Field, "spec.gates") {
			t.Fatalf("unchanged gates refused: %v", e)
		}
	}
}
