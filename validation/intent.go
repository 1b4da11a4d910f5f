package validation

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

var intentPath = specPath.Child("intent")

// ValidateIntentRequester checks that a new or changed spec.intent tells
// the truth about who asked: spec.intent.actor must be user, the name the
// API server authenticated the request with, and spec.intent.supersedes may
// only name the intent that was pending before (old's). The history entry,
// the Event and the audit log all name the actor, so a forged one would
// blame someone else. old is nil on create. An intent that did not change
// is not checked: a GitOps tool re-applying the spec, or a person editing
// another field, leaves the intent someone else asked for in place.
//
// The caller exempts Fulcrum's own service account: the admin API writes
// intents on behalf of the user it authenticated.
func ValidateIntentRequester(old, mr *v1alpha1.ModelRollout, user string) field.ErrorList {
	in := mr.Spec.Intent
	if in == nil || old != nil && equality.Semantic.DeepEqual(old.Spec.Intent, in) {
		return nil
	}
	var errs field.ErrorList
	if in.Actor != user {
		errs = append(errs, field.Forbidden(intentPath.Child("actor"), fmt.Sprintf(
			"is %q, but the API server authenticated this request as %q: set spec.intent.actor to %q, or ask through the admin API (fulcrumctl, the dashboard), which records the user it authenticated",
			in.Actor, user, user)))
	}
	if s := in.Supersedes; s != nil {
		var pending *v1alpha1.Intent
		if old != nil {
			pending = old.Spec.Intent
		}
		if pending == nil || s.ID != pending.ID || s.Action != pending.Action || s.Actor != pending.Actor {
			errs = append(errs, field.Forbidden(intentPath.Child("supersedes"), fmt.Sprintf(
				"names intent %q (%s by %q), which is not the intent this edit replaces: remove spec.intent.supersedes (the admin API records it when a rollback replaces a pending request)",
				s.ID, s.Action, s.Actor)))
		}
	}
	return errs
}
