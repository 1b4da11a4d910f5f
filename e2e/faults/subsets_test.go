package faults

import (
	"slices"
	"strings"
	"testing"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// Given a canary serving 30%, when the candidate's Deployment is scaled to
// 0, then within one reconcile of its pods going the data plane sends it
// nothing (no more 503 UH answers for it), the rollout ends RolledBack, and
// history says, as fulcrum, which subset lost what.
func TestCandidatePodsLostTrafficLeaves(t *testing.T) {
	c := given(t, caseConfig{})
	c.startFulcrum("fulcrum")
	c.canary(at30(), split70)
	before := c.rollout()

	// When
	podsGone := c.podsGone("v2")
	c.scale("v2", 0)
	gone := podsGone()

	// Then
	c.safeWithin("v2", gone, reactBound)
	mr := c.waitPhase(v1alpha1.PhaseRolledBack)
	c.waitWeights(stableOnly)
	h := lastEntry(mr, "RolledBack")
	if h == nil || h.Actor != "fulcrum" || !strings.Contains(h.Reason, "v2") || !strings.Contains(h.Reason, "Ready") {
		t.Fatalf("RolledBack entry %+v, want one by fulcrum naming subset v2 and its Ready pods\n%s", h, historyText(mr))
	}
	c.historyIntact(before, mr)
	c.logHistory(mr)
	c.servedShare("v1", 100, 600)
}

// Given a canary serving 30% whose controller is stalled (SIGSTOP; the admin
// API runs in a process of its own), when the candidate's pods go and an
// engineer asks to promote and then to roll back, as in the report of issue
// 11, then the rollback is accepted (never 409 because the promote is
// pending) and names the promote it supersedes; once the controller runs
// again, the data plane leaves the candidate within one reconcile, the
// rollout is RolledBack, and history records the promote as superseded.
func TestRollbackSupersedesPendingPromote(t *testing.T) {
	c := given(t, caseConfig{})
	ctl := c.startFulcrum("controller", func(cfg *rig.FulcrumConfig) { cfg.Admin = false })
	adm := c.startFulcrum("admin", func(cfg *rig.FulcrumConfig) { cfg.Controller = false })
	c.canary(at30(), split70)
	before := c.rollout()

	// When
	if err := ctl.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Thaw() })
	c.scale("v2", 0)
	c.waitNoReadyPods("v2")
	promote := c.mustAct(adm, "promote", client.ActionRequest{Reason: "ship it"}).Spec.Intent
	rb, err := c.act(adm, "rollback", client.ActionRequest{Reason: "v2 has no pods"})
	if err != nil {
		t.Fatalf("rollback with a promote pending: %v; want it accepted", err)
	}
	if s := rb.Spec.Intent.Supersedes; s == nil || s.ID != promote.ID || s.Action != v1alpha1.IntentPromote {
		t.Fatalf("rollback intent %+v, want it to name promote %s as superseded", rb.Spec.Intent, promote.ID)
	}
	if err := ctl.Thaw(); err != nil {
		t.Fatal(err)
	}
	thawed := time.Now()

	// Then
	c.safeWithin("v2", thawed, reactBound)
	c.waitPhase(v1alpha1.PhaseRolledBack)
	c.waitWeights(stableOnly)
	mr := c.waitHistory(rb.Spec.Intent.ID)
	if h := entryFor(mr, promote.ID); h == nil || h.Type != "IntentSuperseded" {
		t.Fatalf("history entry for the promote %s: %+v, want IntentSuperseded\n%s", promote.ID, h, historyText(mr))
	}
	c.historyIntact(before, mr)
	c.logHistory(mr)
	// The rollback moved v2's 30% to v1 once, recorded once. Who recorded
	// it depends on what the thawed controller saw first: the intents
	// (RolledBack by alice, with her intent); v2 without pods before the
	// intents reached its cache (RolledBack by fulcrum; alice's rollback
	// then finds nothing to roll back and the superseded promote says so);
	// or the promote and v2 without pods before the rollback (the promote,
	// waiting for pods, is superseded by the controller's own rollback,
	// and alice's rollback finds it done). All are safe and truthful; the
	// race is the informers', not ours.
	got := rig.HistoryTypes(mr)[len(before.Status.History):]
	switch {
	case slices.Equal(got, []string{"IntentSuperseded", "RolledBack"}) && mr.Status.History[len(mr.Status.History)-1].Actor == "fulcrum":
		sup, back := mr.Status.History[len(before.Status.History)], mr.Status.History[len(mr.Status.History)-1]
		if !strings.Contains(sup.Reason, "rolled back because subset v2 has 0 Ready pod") || !strings.Contains(back.Reason, "0 Ready pod") {
			t.Fatalf("the promote superseded by the controller's rollback: %+v then %+v, want both naming v2's missing pods\n%s", sup, back, historyText(mr))
		}
		if mr.Status.ObservedIntent != rb.Spec.Intent.ID {
			t.Fatalf("observed intent %s, want the rollback %s", mr.Status.ObservedIntent, rb.Spec.Intent.ID)
		}
	case slices.Equal(got, []string{"IntentSuperseded", "RolledBack"}):
		if h := entryFor(mr, rb.Spec.Intent.ID); h == nil || h.Type != "RolledBack" || h.Actor != rig.EngineerUser {
			t.Fatalf("history entry for the rollback %s: %+v, want RolledBack by %s\n%s", rb.Spec.Intent.ID, h, rig.EngineerUser, historyText(mr))
		}
	case slices.Equal(got, []string{"RolledBack", "IntentSuperseded"}):
		if h := mr.Status.History[len(before.Status.History)]; h.Actor != "fulcrum" || !strings.Contains(h.Reason, "0 Ready pod") {
			t.Fatalf("the controller's own rollback %+v, want actor fulcrum naming the missing pods\n%s", h, historyText(mr))
		}
		if mr.Status.ObservedIntent != rb.Spec.Intent.ID {
			t.Fatalf("observed intent %s, want the rollback %s", mr.Status.ObservedIntent, rb.Spec.Intent.ID)
		}
	default:
		t.Fatalf("history added %v, want IntentSuperseded and RolledBack, once each\n%s", got, historyText(mr))
	}
	c.servedShare("v1", 100, 600)
}

// Given a canary serving 30%, when the candidate's subset is removed from
// the DestinationRule, then within one reconcile the data plane sends it
// nothing (no more 503 NC answers), the rollout ends RolledBack, and
// history says why.
func TestCandidateSubsetRemoved(t *testing.T) {
	c := given(t, caseConfig{})
	c.startFulcrum("fulcrum")
	c.canary(at30(), split70)
	before := c.rollout()

	// When
	drs := c.model.Istio.NetworkingV1().DestinationRules(c.model.NS)
	dr, err := drs.Get(c.ctx, c.model.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dr = dr.DeepCopy()
	dr.Spec.Subsets = []*networking.Subset{dr.Spec.Subsets[0]}
	if _, err := drs.Update(c.ctx, dr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()

	// Then
	c.safeWithin("v2", removed, reactBound)
	mr := c.waitPhase(v1alpha1.PhaseRolledBack)
	c.waitWeights(stableOnly)
	h := lastEntry(mr, "RolledBack")
	if h == nil || h.Actor != "fulcrum" || !strings.Contains(h.Reason, "v2") || !strings.Contains(h.Reason, "DestinationRule") {
		t.Fatalf("RolledBack entry %+v, want one by fulcrum saying subset v2 left the DestinationRule\n%s", h, historyText(mr))
	}
	c.historyIntact(before, mr)
	c.logHistory(mr)
	c.servedShare("v1", 100, 600)
}

// entryFor is the history entry of an intent, or nil.
func entryFor(mr *v1alpha1.ModelRollout, intentID string) *v1alpha1.HistoryEntry {
	for i := range mr.Status.History {
		if mr.Status.History[i].IntentID == intentID {
			return &mr.Status.History[i]
		}
	}
	return nil
}

// waitHistory waits until the controller has applied the intent (status
// observedIntent) and returns the rollout.
func (c *faultCase) waitHistory(intentID string) *v1alpha1.ModelRollout {
	c.t.Helper()
	var mr *v1alpha1.ModelRollout
	c.eventually("intent "+intentID+" observed", func() bool { mr = c.rollout(); return mr.Status.ObservedIntent == intentID })
	return mr
}
