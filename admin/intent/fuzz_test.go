package intent

import (
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// FuzzDecodePlan decodes arbitrary bodies for every action and plans them
// against a progressing rollout. Whatever the input: no panic, every refusal
// is a 4xx *Error with a detail, and every accepted request yields an intent
// the CRD would accept (weights integral 0..100 summing to 100, known
// subsets, candidate != stable). `go test` runs the seeds in f.Add and in
// testdata/fuzz/FuzzDecodePlan; `go test -fuzz=FuzzDecodePlan -fuzztime=30s
// ./admin/intent` explores further.
func FuzzDecodePlan(f *testing.F) {
	seeds := []string{
		``, `{}`, `{"reason":"x"}`, `{"candidate":"v2"}`, `{"candidate":"v1"}`, `{"candidate":"v9"}`,
		`{"weights":[{"subset":"v1","weight":70},{"subset":"v2","weight":30}]}`,
		`{"weights":[{"subset":"v1","weight":70.0},{"subset":"v2","weight":30}]}`,
		`{"weights":[{"subset":"v1","weight":-0},{"subset":"v2","weight":100}]}`,
		`{"weights":[{"subset":"v1","weight":1e2},{"subset":"v2","weight":0}]}`,
		`{"weights":[{"subset":"v3","weight":50},{"subset":"v2","weight":50}]}`,
		`{"weights":null}`, `{"candidate":null}`, `{"reason":null}`, `null`, `"x"`, `{"a":1}`, `{`, "\x00",
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	mr := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "fraud"},
		Spec:       v1alpha1.ModelRolloutSpec{DestinationRule: "fraud", Stable: "v1", Candidate: "v2"},
		Status:     v1alpha1.ModelRolloutStatus{Phase: v1alpha1.PhaseProgressing},
	}
	subsets := []string{"v1", "v2"}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		action := Actions[int(which)%len(Actions)]
		req, err := DecodeBytes(action, body)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		res, err := Plan(mr, req, Inputs{Subsets: subsets, Actor: "fuzz", ID: NewID(action, time.Unix(0, 0)), Now: time.Unix(0, 0)})
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if res.NoOp || res.Updated == nil {
			t.Fatalf("accepted request planned nothing: %+v", res)
		}
		in := res.Updated.Spec.Intent
		if in == nil || in.Action != action || len(in.ID) == 0 || len(in.ID) > 64 || len(in.Reason) > MaxReasonLength {
			t.Fatalf("bad intent %+v", in)
		}
		if action == v1alpha1.IntentSplit {
			sum := int32(0)
			for _, w := range in.Weights {
				if w.Weight < 0 || w.Weight > 100 || (w.Subset != "v1" && w.Subset != "v2") {
					t.Fatalf("bad weight %+v", w)
				}
				sum += w.Weight
			}
			if sum != 100 || len(in.Weights) < 2 {
				t.Fatalf("weights %+v", in.Weights)
			}
		} else if len(in.Weights) != 0 {
			t.Fatalf("weights on %s: %+v", action, in.Weights)
		}
		if mr.Spec.Intent != nil {
			t.Fatal("Plan mutated its input")
		}
	})
}

func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("refusal is not *Error: %v", err)
	}
	if e.Status < 400 || e.Status > 499 || e.Detail == "" || e.Title == "" {
		t.Fatalf("refusal %+v", e)
	}
}
