package validation_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

// TestIntentNamesItsRequester: spec.intent.actor and supersedes cannot name
// someone else (issue 14, finding 7).
func TestIntentNamesItsRequester(t *testing.T) {
	pause := func(actor string) func(*v1alpha1.ModelRollout) {
		return func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Intent = &v1alpha1.Intent{ID: "p1", Action: v1alpha1.IntentPause, Actor: actor}
		}
	}
	rollbackOver := func(actor string, s *v1alpha1.SupersededIntent) func(*v1alpha1.ModelRollout) {
		return func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Intent = &v1alpha1.Intent{ID: "r1", Action: v1alpha1.IntentRollback, Actor: actor, Supersedes: s}
		}
	}
	forgedActor := wantErr{"spec.intent.actor", field.ErrorTypeForbidden,
		`is "bob", but the API server authenticated this request as "alice": set spec.intent.actor to "alice", or ask through the admin API`}
	for _, tt := range []struct {
		name     string
		old, new *v1alpha1.ModelRollout
		want     []wantErr
	}{
		{"own name", rollout(), rollout(pause("alice")), nil},
		{"someone else's name", rollout(), rollout(pause("bob")), []wantErr{forgedActor}},
		{"no name", rollout(), rollout(pause("")), []wantErr{{"spec.intent.actor", field.ErrorTypeForbidden, `is "", but the API server authenticated this request as "alice"`}}},
		{"on create", nil, rollout(pause("bob")), []wantErr{forgedActor}},
		{"an unchanged intent by someone else", rollout(pause("bob")), rollout(pause("bob"), func(mr *v1alpha1.ModelRollout) { mr.Spec.Candidate = "v3" }), nil},
		{"no intent", rollout(pause("bob")), rollout(), nil},
		{"superseding the pending intent", rollout(pause("bob")),
			rollout(rollbackOver("alice", &v1alpha1.SupersededIntent{ID: "p1", Action: v1alpha1.IntentPause, Actor: "bob"})), nil},
		{"superseding an invented intent", rollout(pause("bob")),
			rollout(rollbackOver("alice", &v1alpha1.SupersededIntent{ID: "p1", Action: v1alpha1.IntentPause, Actor: "carol"})),
			[]wantErr{{"spec.intent.supersedes", field.ErrorTypeForbidden, `names intent "p1" (Pause by "carol"), which is not the intent this edit replaces: remove spec.intent.supersedes`}}},
		{"superseding on create", nil,
			rollout(rollbackOver("alice", &v1alpha1.SupersededIntent{ID: "p0", Action: v1alpha1.IntentStart})),
			[]wantErr{{"spec.intent.supersedes", field.ErrorTypeForbidden, `names intent "p0"`}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assertErrors(t, validation.ValidateIntentRequester(tt.old, tt.new, "alice"), tt.want)
		})
	}
}
