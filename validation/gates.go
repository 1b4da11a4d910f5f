package validation

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/gates"
)

var gatesPath = specPath.Child("gates")

// gateChecks are what the CRD cannot check of spec.gates: a Job gate's
// spec is kept as written (the CRD carries no pod schema), so the parts
// every Job needs are checked here, before a rollout would fail at its
// first gate; and an HTTP gate's host that the controller's default refuses
// is a warning (the controller's --gate-allowed-hosts may allow it).
func gateChecks(mr *v1alpha1.ModelRollout) check {
	var errs field.ErrorList
	var warns []string
	for i, g := range mr.Spec.Gates {
		p := gatesPath.Index(i)
		if j := g.Job; j != nil {
			pod := p.Child("job", "spec", "template", "spec")
			if len(j.Spec.Template.Spec.Containers) == 0 {
				errs = append(errs, field.Required(pod.Child("containers"), "a Job gate runs a pod: give it at least one container, e.g. {name: check, image: ..., command: [...]}"))
			}
			switch rp := j.Spec.Template.Spec.RestartPolicy; rp {
			case "", corev1.RestartPolicyNever, corev1.RestartPolicyOnFailure:
			default:
				errs = append(errs, field.NotSupported(pod.Child("restartPolicy"), rp, []string{string(corev1.RestartPolicyNever), string(corev1.RestartPolicyOnFailure)}))
			}
		}
		if h := g.HTTP; h != nil {
			if err := (gates.Hosts{}).Check(h.URL, mr.Namespace); err != nil {
				warns = append(warns, fmt.Sprintf("%s: %v (unless fulcrum runs with --gate-allowed-hosts naming it, the gate fails when it runs)", p.Child("http", "url"), err))
			}
		}
	}
	return check{errs: errs, warns: warns, changed: func(o, n *v1alpha1.ModelRollout) bool {
		return !equality.Semantic.DeepEqual(o.Spec.Gates, n.Spec.Gates)
	}}
}
