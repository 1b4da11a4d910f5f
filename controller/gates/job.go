package gates

import (
	"fmt"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
)

// Labels and annotations on the Jobs of gates. The controller's cache
// keeps only Jobs labelled LabelGate.
const (
	LabelGate    = "fulcrum.dev/gate"
	LabelGateRun = "fulcrum.dev/gate-run"
	// AnnotationRollout names the rollout (a label value could not hold a
	// name of up to 253 characters).
	AnnotationRollout = "fulcrum.dev/rollout"
	labelManagedBy    = "app.kubernetes.io/managed-by"
)

// Defaults of a Job gate's spec.
const (
	defaultJobTTL = 24 * 60 * 60
)

// Env names the variables every container of a gate's Job gets (a
// variable the spec sets itself is left alone).
var Env = []string{
	"FULCRUM_NAMESPACE", "FULCRUM_ROLLOUT", "FULCRUM_GATE", "FULCRUM_HOOK", "FULCRUM_RUN_ID",
	"FULCRUM_STABLE", "FULCRUM_CANDIDATE", "FULCRUM_SERVICE", "FULCRUM_STEP", "FULCRUM_STEP_WEIGHT",
	"FULCRUM_WEIGHTS", "FULCRUM_PAYLOAD",
}

// BuildJob is the Job of run of gate g, owned by the rollout: g's spec with
// the defaults filled in (backoffLimit 0, restartPolicy Never, a day's
// TTL after it finishes, activeDeadlineSeconds from the gate's timeout)
// and the FULCRUM_* variables in every container.
func BuildJob(mr *v1alpha1.ModelRollout, g *v1alpha1.Gate, run *v1alpha1.GateRun, p Payload) *batchv1.Job {
	spec := g.Job.Spec.DeepCopy()
	if spec.BackoffLimit == nil {
		spec.BackoffLimit = ptr.To[int32](0)
	}
	if spec.TTLSecondsAfterFinished == nil {
		spec.TTLSecondsAfterFinished = ptr.To[int32](defaultJobTTL)
	}
	if spec.ActiveDeadlineSeconds == nil {
		if d := rollout.GateTimeout(g); d > 0 {
			spec.ActiveDeadlineSeconds = ptr.To(int64(d.Seconds()))
		}
	}
	pod := &spec.Template.Spec
	if pod.RestartPolicy == "" {
		pod.RestartPolicy = corev1.RestartPolicyNever
	}
	if spec.Template.Labels == nil {
		spec.Template.Labels = map[string]string{}
	}
	spec.Template.Labels[LabelGate] = g.Name
	spec.Template.Labels[LabelGateRun] = run.ID
	env := jobEnv(p)
	for i := range pod.InitContainers {
		pod.InitContainers[i].Env = withEnv(pod.InitContainers[i].Env, env)
	}
	for i := range pod.Containers {
		pod.Containers[i].Env = withEnv(pod.Containers[i].Env, env)
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: run.Job, Namespace: mr.Namespace,
			Labels:      map[string]string{LabelGate: g.Name, LabelGateRun: run.ID, labelManagedBy: "fulcrum"},
			Annotations: map[string]string{AnnotationRollout: mr.Name},
			// Deleting the rollout deletes its Jobs. No blockOwnerDeletion:
			// setting it needs update on the rollout's finalizers.
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: "ModelRollout", Name: mr.Name, UID: mr.UID,
				Controller: ptr.To(true),
			}},
		},
		Spec: *spec,
	}
}

func jobEnv(p Payload) []corev1.EnvVar {
	ws := make([]string, len(p.Weights))
	for i, w := range p.Weights {
		ws[i] = fmt.Sprintf("%s=%d", w.Subset, w.Weight)
	}
	vals := []string{
		p.Rollout.Namespace, p.Rollout.Name, p.Gate, string(p.At), p.ID,
		p.Stable, p.Candidate, p.Service, strconv.Itoa(int(p.Step.Number)), strconv.Itoa(int(p.Step.Weight)),
		strings.Join(ws, ","), string(p.JSON()),
	}
	out := make([]corev1.EnvVar, len(Env))
	for i, name := range Env {
		out[i] = corev1.EnvVar{Name: name, Value: vals[i]}
	}
	return out
}

// withEnv puts add before have, leaving out what have sets itself (a
// later variable may refer to an earlier one with $(NAME)).
func withEnv(have, add []corev1.EnvVar) []corev1.EnvVar {
	set := map[string]bool{}
	for _, e := range have {
		set[e.Name] = true
	}
	out := make([]corev1.EnvVar, 0, len(have)+len(add))
	for _, e := range add {
		if !set[e.Name] {
			out = append(out, e)
		}
	}
	return append(out, have...)
}

// Observe reads a gate's Job: done when it is Complete (passed) or Failed.
func Observe(job *batchv1.Job) rollout.GateObservation {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return rollout.GateObservation{Done: true, Passed: true, Message: fmt.Sprintf("Job %s completed", job.Name)}
		case batchv1.JobFailed:
			msg := fmt.Sprintf("Job %s failed", job.Name)
			if c.Reason != "" {
				msg += ": " + c.Reason
			}
			if c.Message != "" {
				msg += ": " + oneLine(c.Message, 200)
			}
			return rollout.GateObservation{Done: true, Message: msg}
		}
	}
	msg := fmt.Sprintf("Job %s: %d active, %d succeeded, %d failed pod(s)", job.Name, job.Status.Active, job.Status.Succeeded, job.Status.Failed)
	if job.Status.Active == 0 && job.Status.Succeeded == 0 && job.Status.Failed == 0 {
		msg = fmt.Sprintf("Job %s created, no pod running yet", job.Name)
	}
	return rollout.GateObservation{Message: msg}
}

// Finished reports whether a Job reached Complete or Failed.
func Finished(job *batchv1.Job) bool {
	return Observe(job).Done
}
