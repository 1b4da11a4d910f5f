package intent

import (
	"testing"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// TestIdempotencyKey: a key already used is a no-op for the same payload and
// a 422 naming the key for another, wherever the rollout still tells what
// the earlier intent asked for: the current intent, the intent it
// superseded, or the history entry the controller wrote.
func TestIdempotencyKey(t *testing.T) {
	const key = "ci-42"
	id := KeyedID("ml", "fraud", "alice", key)
	entry := func(typ, reason string, weights ...any) v1alpha1.HistoryEntry {
		return v1alpha1.HistoryEntry{Type: typ, IntentID: id, Reason: reason, Weights: ws(weights...)}
	}
	keyedIntent := func(a v1alpha1.IntentAction) rolloutOpt { return pending(a, id) }
	tests := map[string]struct {
		mr       *v1alpha1.ModelRollout
		req      Request
		wantNoOp bool // else 422
	}{
		"pending, same":                  {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), keyedIntent(v1alpha1.IntentRollback)), req: rollback, wantNoOp: true},
		"pending, another action":        {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), keyedIntent(v1alpha1.IntentRollback)), req: pause},
		"pending start, same candidate":  {mr: rollout(pendingStart("v2", id)), req: start("v2"), wantNoOp: true},
		"pending start, other candidate": {mr: rollout(pendingStart("v2", id)), req: start("v3")},
		"applied, same":                  {mr: rollout(atStable(v1alpha1.PhaseRolledBack, "v2"), keyedIntent(v1alpha1.IntentRollback), observed(id)), req: rollback, wantNoOp: true},
		"applied, another action":        {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), keyedIntent(v1alpha1.IntentRollback), observed(id)), req: pause},
		"applied start, other candidate": {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), keyedIntent(v1alpha1.IntentStart), observed(id)), req: start("v3")},
		"applied start, promoted since":  {mr: rollout(atStable(v1alpha1.PhasePromoted, ""), keyedIntent(v1alpha1.IntentStart), observed(id)), req: start("v3"), wantNoOp: true},

		"replaced, history says rolled back, same":    {mr: rollout(atStable(v1alpha1.PhaseRolledBack, "v2"), history(entry("RolledBack", ""))), req: rollback, wantNoOp: true},
		"replaced, history says rolled back, another": {mr: rollout(rollingOut(v1alpha1.PhasePaused), history(entry("RolledBack", ""))), req: resume},
		"replaced, history says started, start":       {mr: rollout(rollingOut(v1alpha1.PhasePaused), history(entry("Started", ""))), req: start("v3"), wantNoOp: true},
		"replaced, history says promoted, rollback":   {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), history(entry("Promoted", ""))), req: rollback},
		"replaced, history says paused, pause":        {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), history(entry("Paused", ""))), req: pause, wantNoOp: true},
		"replaced, history says resumed, pause":       {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), history(entry("Resumed", ""))), req: pause},
		"replaced, split, same weights other order":   {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), history(entry("ManualSplit", "", "v1", 70, "v2", 30))), req: split("v2", 30, "v1", 70), wantNoOp: true},
		"replaced, split, other weights":              {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), history(entry("ManualSplit", "", "v1", 70, "v2", 30))), req: split("v1", 50, "v2", 50)},
		"replaced, ignored start, start":              {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), history(entry("IntentIgnored", "Start ignored: spec.candidate is empty"))), req: start("v2"), wantNoOp: true},
		"replaced, ignored pause, resume":             {mr: rollout(rollingOut(v1alpha1.PhasePaused), history(entry("IntentIgnored", "Pause ignored: only a progressing rollout can pause"))), req: resume},
		"replaced, superseded promote, rollback":      {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), history(entry("IntentSuperseded", "promote requested by alice was superseded by rollback from bob before it was applied"))), req: rollback},
		"replaced, superseded promote, promote":       {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), history(entry("IntentSuperseded", "promote requested by alice was superseded by rollback from bob before it was applied"))), req: promote, wantNoOp: true},
		"replaced, entry says nothing":                {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), history(entry("StepAdvanced", ""))), req: pause, wantNoOp: true},
		"only observedIntent left":                    {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), observed(id)), req: pause, wantNoOp: true},
		"superseded by the current intent, same": {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), pending(v1alpha1.IntentRollback, "r1"), func(m *v1alpha1.ModelRollout) {
			m.Spec.Intent.Supersedes = &v1alpha1.SupersededIntent{ID: id, Action: v1alpha1.IntentPromote, Actor: "alice"}
		}), req: promote, wantNoOp: true},
		"superseded by the current intent, another": {mr: rollout(rollingOut(v1alpha1.PhaseProgressing), pending(v1alpha1.IntentRollback, "r1"), func(m *v1alpha1.ModelRollout) {
			m.Spec.Intent.Supersedes = &v1alpha1.SupersededIntent{ID: id, Action: v1alpha1.IntentPromote, Actor: "alice"}
		}), req: pause},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, _, err := plan(tc.mr, tc.req, key)
			if !tc.wantNoOp {
				e := refusal(t, err, 422, `Idempotency-Key "ci-42" was already used on ml/fraud`, id)
				if e.Field != "Idempotency-Key" {
					t.Fatalf("field %q", e.Field)
				}
				return
			}
			if err != nil || !res.NoOp || res.IntentID != id {
				t.Fatalf("want a no-op for intent %s, got %+v, %v", id, res, err)
			}
		})
	}
	// A fresh key is a new intent with the key's id.
	res, _, err := plan(rollout(rollingOut(v1alpha1.PhaseProgressing)), pause, key)
	if err != nil || res.Updated == nil || res.Updated.Spec.Intent.ID != id {
		t.Fatalf("fresh key: %+v, %v", res, err)
	}
}
