package scenarios

import (
	"slices"
	"strings"
	"testing"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// Given a healthy candidate under live load, when a canary starts, then it
// is promoted: 100% on it (and the requests say so), spec.stable updated,
// history complete.
func TestHealthyCandidateIsPromoted(t *testing.T) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v2", Behavior: healthy})
	s.startFulcrum("fulcrum")
	rec := s.recordWeights("v2")

	// When
	s.createRollout(rig.RolloutConfig{Candidate: "v2"})

	// Then
	mr := s.waitPhase(v1alpha1.PhasePromoted)
	if mr.Spec.Stable != "v2" || mr.Spec.Candidate != "" {
		t.Fatalf("after promotion spec.stable=%q spec.candidate=%q, want v2 and empty", mr.Spec.Stable, mr.Spec.Candidate)
	}
	s.waitWeights(map[string]int32{"v1": 0, "v2": 100})
	if got := rec.Seen(); !slices.Equal(got, []int32{0, 20, 50, 100}) {
		t.Errorf("candidate weights seen %v, want 0,20,50,100", got)
	}
	if got := strings.Join(rig.HistoryTypes(mr), ","); got != "Started,StepAdvanced,Promoted" {
		t.Errorf("history %s, want Started,StepAdvanced,Promoted", got)
	}
	for _, h := range mr.Status.History[1:] {
		if h.Actor != "fulcrum" || h.Reason == "" {
			t.Errorf("history entry %s: actor %q reason %q, want fulcrum with a reason", h.Type, h.Actor, h.Reason)
		}
	}
	if v := metricVerdicts(mr, "error-rate"); len(v) == 0 || v[len(v)-1] != v1alpha1.VerdictPass {
		t.Errorf("error-rate verdicts %v, want a Pass last", v)
	}
	w := s.served(600)
	s.assertShare(w, "v2", 100)
	if w.Errors("") != 0 {
		t.Errorf("errors after promotion: %s", w)
	}
}

// assertRolledBackFor runs a canary of a bad v2 and checks it is rolled
// back before the third step, with the named metric failing in status and
// the others not, and stable serving everything afterwards.
func assertRolledBackFor(t *testing.T, bad rig.Version, failing string) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, bad)
	s.startFulcrum("fulcrum")
	rec := s.recordWeights("v2")

	// When
	s.createRollout(rig.RolloutConfig{Candidate: "v2", Steps: []int32{20, 40, 60, 100}})

	// Then
	mr := s.waitPhase(v1alpha1.PhaseRolledBack)
	s.waitWeights(map[string]int32{"v1": 100, "v2": 0})
	seen := rec.Seen()
	if slices.Max(seen) > 40 {
		t.Errorf("candidate weights seen %v: reached the third step (60) before the rollback", seen)
	}
	last := mr.Status.History[len(mr.Status.History)-1]
	if last.Type != "RolledBack" || last.Actor != "fulcrum" || !strings.Contains(last.Reason, failing) {
		t.Errorf("last history entry %+v, want RolledBack by fulcrum naming %s", last, failing)
	}
	if v := metricVerdicts(mr, failing); !slices.Contains(v, v1alpha1.VerdictFail) {
		t.Errorf("%s verdicts %v in status, want a Fail explaining the rollback\n%s", failing, v, rig.Verdicts(mr))
	}
	// The other metrics did not regress, so none may have decided the
	// rollback: none failed in failureLimit (2) consecutive rounds. A single
	// Fail of a fixed-sample judge (drift) among many looks is within its
	// per-look error rate, and failureLimit is what absorbs it.
	for _, other := range []string{"error-rate", "latency-p99", "prediction-drift"} {
		if other != failing && consecutiveFails(metricVerdicts(mr, other)) >= 2 {
			t.Errorf("%s failed in consecutive rounds too, but only %s regressed\n%s", other, failing, rig.Verdicts(mr))
		}
	}
	t.Logf("rolled back; weights seen %v; verdicts:\n%s", seen, rig.Verdicts(mr))
	w := s.served(600)
	s.assertShare(w, "v1", 100)
}

// Given a candidate answering 30% of requests with 500, when a canary
// starts, then it is rolled back before the third step, and status says
// error-rate failed.
func TestErrorRateRegressionRolledBack(t *testing.T) {
	assertRolledBackFor(t, rig.Version{Name: "v2", Behavior: erroring}, "error-rate")
}

// Given a candidate whose p99 is about 900 ms (threshold 250 ms), then it is
// rolled back with latency-p99 failing.
func TestLatencyRegressionRolledBack(t *testing.T) {
	assertRolledBackFor(t, rig.Version{Name: "v2", Behavior: slow}, "latency-p99")
}

// Given a candidate with the same errors and latency but shifted scores
// (beta 5,2 instead of 2,5), then drift alone catches it.
func TestPredictionDriftAloneCaught(t *testing.T) {
	assertRolledBackFor(t, rig.Version{Name: "v2", Behavior: drifted}, "prediction-drift")
}

// consecutiveFails is the longest run of Fail verdicts.
func consecutiveFails(vs []v1alpha1.Verdict) int {
	best, run := 0, 0
	for _, v := range vs {
		if v == v1alpha1.VerdictFail {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}
