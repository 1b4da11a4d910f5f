package faults

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	istionetv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// Given a canary serving 30%, when an engineer promotes it and splits
// v1=70 v2=30 as soon as the admin API lets her (the moment the controller
// marks the promote applied; before that a split is 409 "pending"), then the
// split sticks: ManualSplit with 70/30 on the route and in the traffic, and
// nothing (notably not the end of the promotion) undoes it.
func TestSplitAfterPromotionSticks(t *testing.T) {
	c := given(t, caseConfig{})
	f := c.startFulcrum("fulcrum")
	c.canary(at30(), split70)

	// When
	promote := c.mustAct(f, "promote", client.ActionRequest{Reason: "ship it"}).Spec.Intent
	c.waitHistory(promote.ID)
	sp := c.mustAct(f, "split", client.ActionRequest{Reason: "A/B after the promotion",
		Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 70}, {Subset: "v2", Weight: 30}}}).Spec.Intent

	// Then
	c.waitWeights(split70)
	c.waitPhase(v1alpha1.PhaseManualSplit)
	c.holds("the split, as ManualSplit", 4*time.Second, func() bool {
		return sameWeights(c.weights(), split70) && c.rollout().Status.Phase == v1alpha1.PhaseManualSplit
	})
	mr := c.rollout()
	if mr.Spec.Stable != "v2" {
		t.Fatalf("spec.stable %q after the promotion, want v2", mr.Spec.Stable)
	}
	last := mr.Status.History[len(mr.Status.History)-1]
	if last.Type != "ManualSplit" || last.IntentID != sp.ID || last.Actor != rig.EngineerUser {
		t.Fatalf("last history entry %s, want the ManualSplit of intent %s by %s\n%s", describe(last), sp.ID, rig.EngineerUser, historyText(mr))
	}
	c.historyIntact(&v1alpha1.ModelRollout{}, mr)
	c.logHistory(mr)
	c.servedShare("v2", 30, 1500)
}

// Given a VirtualService written as in Fulcrum's origin example
// (networking.istio.io/v1alpha3, one unnamed HTTP route, 70% v1 and 30% v2)
// serving live traffic, when a ModelRollout is created over it (stable v1,
// no candidate, routes not listed), then nothing moves: the route stays
// 70/30 throughout, the rollout is ManualSplit with an Adopted entry by
// fulcrum recording 70/30, and v2 keeps its 30% of the traffic.
func TestAdoptExistingSplit(t *testing.T) {
	c := given(t, caseConfig{})
	c.originExample()
	c.startFulcrum("fulcrum")
	seen := c.recordWeights()

	// When
	c.createIdleRollout()

	// Then
	c.waitPhase(v1alpha1.PhaseManualSplit)
	c.holds("70/30 on the route", 3*time.Second, func() bool { return sameWeights(c.weights(), split70) })
	if got := seen(); len(got) != 1 || !sameWeights(got[0], split70) {
		t.Fatalf("weights seen on the route since the rollout was created: %v, want 70/30 only", got)
	}
	mr := c.rollout()
	var adopted []v1alpha1.HistoryEntry
	for _, h := range mr.Status.History {
		if h.Type == "Adopted" {
			adopted = append(adopted, h)
		}
	}
	if len(adopted) != 1 || adopted[0].Actor != "fulcrum" || !sameWeights(weightMap(adopted[0].Weights), split70) {
		t.Fatalf("Adopted entries %v, want one by fulcrum with v1=70 v2=30\n%s", adopted, historyText(mr))
	}
	c.historyIntact(&v1alpha1.ModelRollout{}, mr)
	c.logHistory(mr)
	c.servedShare("v2", 30, 1500)
}

// Given the origin example's route at 70/30 with live traffic and a stalled
// controller (its admin API in a process of its own), when a ModelRollout is
// created over it and an engineer rolls back before the controller has
// looked at it (its status is empty, as if stable served 100%), then the
// rollback is accepted, because the route says otherwise; once the
// controller runs, the data plane leaves v2 within one reconcile, and
// history records the rollback by the engineer.
func TestRollbackBeforeAdoption(t *testing.T) {
	c := given(t, caseConfig{})
	c.originExample()
	ctl := c.startFulcrum("controller", func(cfg *rig.FulcrumConfig) { cfg.Admin = false })
	adm := c.startFulcrum("admin", func(cfg *rig.FulcrumConfig) { cfg.Controller = false })
	if err := ctl.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Thaw() })

	// When
	c.createIdleRollout()
	var rb *v1alpha1.ModelRollout
	var err error
	c.eventually("the admin API to know the new rollout", func() bool {
		rb, err = c.act(adm, "rollback", client.ActionRequest{Reason: "not this split"})
		return !client.IsStatus(err, http.StatusNotFound)
	})
	if err != nil {
		t.Fatalf("rollback of a new rollout over a 70/30 route: %v; want it accepted", err)
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
	if h := entryFor(mr, rb.Spec.Intent.ID); h == nil || h.Type != "RolledBack" || h.Actor != rig.EngineerUser {
		t.Fatalf("history entry for the rollback %s: %+v, want RolledBack by %s\n%s", rb.Spec.Intent.ID, h, rig.EngineerUser, historyText(mr))
	}
	c.historyIntact(&v1alpha1.ModelRollout{}, mr)
	c.logHistory(mr)
	c.servedShare("v1", 100, 600)
}

// originExample replaces the model's VirtualService with the one Fulcrum's
// origin example has: networking.istio.io/v1alpha3, one unnamed HTTP route,
// 70% v1 and 30% v2; and waits until the proxy routes by it.
func (c *faultCase) originExample() {
	c.t.Helper()
	vss := c.model.Istio.NetworkingV1alpha3().VirtualServices(c.model.NS)
	if err := vss.Delete(c.ctx, c.model.Name, metav1.DeleteOptions{}); err != nil {
		c.t.Fatal(err)
	}
	dest := func(subset string, w int32) *networking.HTTPRouteDestination {
		return &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: c.model.Name, Subset: subset}, Weight: w}
	}
	_, err := vss.Create(c.ctx, &istionetv1alpha3.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: c.model.Name},
		Spec: networking.VirtualService{Hosts: []string{c.model.Name},
			Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{dest("v1", 70), dest("v2", 30)}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.waitProxy()
}

// createIdleRollout creates a ModelRollout with stable v1, no candidate, no
// metrics, and no routes listed (the VirtualService's only route).
func (c *faultCase) createIdleRollout() {
	c.t.Helper()
	mr := c.model.NewRollout(rig.RolloutConfig{Metrics: []v1alpha1.Metric{}})
	mr.Spec.VirtualService.Routes = nil
	if err := env.Client.Create(c.ctx, mr); err != nil {
		c.t.Fatal(err)
	}
}

// Given a canary, when an engineer pauses it, then a second pause is
// refused with 409 (phase Paused); after a split, a pause is refused with
// 409 (phase ManualSplit). The refused actions leave no trace: the
// controller never sees them, so no IntentIgnored entry, and the split holds.
func TestPauseRefusedWhenNotProgressing(t *testing.T) {
	c := given(t, caseConfig{noLoad: true})
	f := c.startFulcrum("fulcrum")
	c.canary(at30(), split70)

	// When
	c.mustAct(f, "pause", client.ActionRequest{Reason: "look closer"})
	c.waitPhase(v1alpha1.PhasePaused)
	_, again := c.act(f, "pause", client.ActionRequest{Reason: "again"})
	c.mustAct(f, "split", client.ActionRequest{Reason: "hold 80/20",
		Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 80}, {Subset: "v2", Weight: 20}}})
	c.waitPhase(v1alpha1.PhaseManualSplit)
	_, inSplit := c.act(f, "pause", client.ActionRequest{Reason: "pause the split"})

	// Then
	for phase, err := range map[v1alpha1.Phase]error{v1alpha1.PhasePaused: again, v1alpha1.PhaseManualSplit: inSplit} {
		var p *client.Problem
		if !errors.As(err, &p) || p.Status != http.StatusConflict {
			t.Fatalf("pause while %s: %v, want 409", phase, err)
		}
		t.Logf("pause while %s: %v", phase, err)
	}
	want := map[string]int32{"v1": 80, "v2": 20}
	c.waitWeights(want)
	c.holds("the split", time.Second, func() bool { return sameWeights(c.weights(), want) })
	mr := c.rollout()
	if mr.Status.Phase != v1alpha1.PhaseManualSplit || lastEntry(mr, "IntentIgnored") != nil {
		t.Fatalf("phase %s, history %v; want ManualSplit and no IntentIgnored", mr.Status.Phase, rig.HistoryTypes(mr))
	}
	c.logHistory(mr)
}

// recordWeights polls the route every 50 ms and returns a function that
// stops polling and lists the distinct weights seen, in order.
func (c *faultCase) recordWeights() func() []map[string]int32 {
	var mu sync.Mutex
	var seen []map[string]int32
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			if w, err := c.model.Weights(c.ctx); err == nil {
				mu.Lock()
				if len(seen) == 0 || !sameWeights(seen[len(seen)-1], w) {
					seen = append(seen, w)
				}
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-c.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	end := func() { once.Do(func() { close(stop); <-done }) }
	c.t.Cleanup(end)
	return func() []map[string]int32 {
		end()
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

func weightMap(ws []v1alpha1.SubsetWeight) map[string]int32 {
	out := map[string]int32{}
	for _, w := range ws {
		out[w.Subset] = w.Weight
	}
	return out
}
