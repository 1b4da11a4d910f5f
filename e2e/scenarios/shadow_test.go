package scenarios

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// Given a candidate that answers 30% of requests with 500 and a shadow
// stage (all requests copied to it), when the rollout starts, then the
// managed route mirrors to v2 while it is judged, the error rate fails on
// the copies, the rollout rolls back saying no user was served by v2, the
// mirror is gone, and not one of the users' answers came from v2.
func TestShadowFailureServesNoUser(t *testing.T) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v2", Behavior: erroring})
	s.startFulcrum("fulcrum")
	before := s.load.Snapshot()
	mr := s.model.NewRollout(rig.RolloutConfig{Candidate: "v2"})
	mr.Spec.Strategy.Canary.Shadow = &v1alpha1.ShadowStage{Percent: 100, MinDuration: metav1.Duration{Duration: 20 * time.Second}}
	if err := env.Client.Create(s.ctx, mr); err != nil {
		t.Fatal(err)
	}
	s.eventually("the managed route mirroring to v2", func() bool { return s.mirrorSubset() == "v2" })

	got := s.waitPhase(v1alpha1.PhaseRolledBack)
	last := got.Status.History[len(got.Status.History)-1]
	if !strings.Contains(last.Reason, "in shadow, no user was served by v2") {
		t.Errorf("rollback reason %q, want it to say no user was served", last.Reason)
	}
	if !strings.Contains(rig.Verdicts(got), "error-rate=Fail") {
		t.Errorf("no error-rate Fail judged on the copies:\n%s", rig.Verdicts(got))
	}
	s.eventually("the mirror removed", func() bool { return s.mirrorSubset() == "" })
	w := s.load.Snapshot().Sub(before)
	if n := w.ByVersion["v2"]; n != 0 || w.ByVersion["v1"] == 0 {
		t.Errorf("users' answers by version %v: v2 answered %d, want none", w.ByVersion, n)
	}
	t.Logf("users' answers during the rollout: %v; verdicts:\n%s", w.ByVersion, rig.Verdicts(got))
}

// mirrorSubset is the subset the "predict" route mirrors to ("" for none).
func (s *scenario) mirrorSubset() string {
	vs, err := s.model.Istio.NetworkingV1().VirtualServices(s.model.NS).Get(s.ctx, s.model.Name, metav1.GetOptions{})
	if err != nil || len(vs.Spec.Http) == 0 || vs.Spec.Http[0].Mirror == nil {
		return ""
	}
	return vs.Spec.Http[0].Mirror.Subset
}
