package scenarios

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

func userToken(t testing.TB, user string) string {
	t.Helper()
	tok, err := env.Kube.UserToken(user)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Given a canary at its first step, when an engineer pins 70/30 with
// fulcrumctl split, then the split holds for several analysis intervals
// (weights and the traffic actually served), and fulcrumctl resume continues
// the canary to promotion.
func TestManualSplitHoldsThenResumeContinues(t *testing.T) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v2", Behavior: healthy})
	f := s.startFulcrum("fulcrum")
	s.createRollout(rig.RolloutConfig{Candidate: "v2", MinStepDuration: 6 * time.Second})
	s.waitWeights(map[string]int32{"v1": 80, "v2": 20})
	alice := userToken(t, rig.EngineerUser)

	// When
	out, code, err := env.Fulcrumctl(s.ctx, f.AdminURL, alice, "split", "fraud", "-n", s.model.NS, "v1=70", "v2=30", "--reason", "A/B test")
	if err != nil || code != 0 {
		t.Fatalf("fulcrumctl split: exit %d, %v\n%s", code, err, out)
	}

	// Then
	split := map[string]int32{"v1": 70, "v2": 30}
	s.waitWeights(split)
	s.waitPhase(v1alpha1.PhaseManualSplit)
	s.holds("the 70/30 split for 4 analysis intervals", 8*time.Second, func() bool {
		return sameWeights(s.weights(), split) && s.rollout().Status.Phase == v1alpha1.PhaseManualSplit
	})
	s.assertShare(s.served(2000), "v2", 30)
	mr := s.rollout()
	last := mr.Status.History[len(mr.Status.History)-1]
	if last.Type != "ManualSplit" || last.Actor != rig.EngineerUser || last.Reason != "A/B test" {
		t.Fatalf("last history entry %+v, want ManualSplit by alice with her reason", last)
	}

	// When
	out, code, err = env.Fulcrumctl(s.ctx, f.AdminURL, alice, "resume", "fraud", "-n", s.model.NS, "--reason", "A/B done")
	if err != nil || code != 0 {
		t.Fatalf("fulcrumctl resume: exit %d, %v\n%s", code, err, out)
	}
	// Then
	mr = s.waitPhase(v1alpha1.PhasePromoted)
	types := rig.HistoryTypes(mr)
	if !slices.Contains(types, "Resumed") || types[len(types)-1] != "Promoted" {
		t.Fatalf("history %v, want Resumed then Promoted", types)
	}
	s.waitWeights(map[string]int32{"v1": 0, "v2": 100})
}

// Given a canary at its first step, when an engineer rolls back through the
// admin API, then the VirtualService has 100% on stable within one second
// (the median over repeated rollbacks; p50 and p99 are logged).
func TestManualRollbackIsFast(t *testing.T) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v2", Behavior: healthy})
	f := s.startFulcrum("fulcrum")
	s.createRollout(rig.RolloutConfig{Candidate: "v2", MinStepDuration: time.Hour})
	s.waitWeights(map[string]int32{"v1": 80, "v2": 20})
	c := s.admin(f, userToken(t, rig.EngineerUser))

	// When (once, then again and again)
	d := rollbackOnce(s.ctx, t, s.model, c, false)
	s.waitPhase(v1alpha1.PhaseRolledBack)
	s.assertShare(s.served(600), "v1", 100)
	all := []time.Duration{d}
	for range 14 {
		all = append(all, rollbackOnce(s.ctx, t, s.model, c, true))
	}

	// Then
	p50, p99 := quantile(all, 0.5), quantile(all, 0.99)
	t.Logf("rollback request → VirtualService at stable 100%%: first %s, over %d: p50 %s, p99 %s, max %s",
		d.Round(time.Millisecond), len(all), p50.Round(time.Millisecond), p99.Round(time.Millisecond), slices.Max(all).Round(time.Millisecond))
	if p50 > time.Second {
		t.Fatalf("median rollback took %s, want within one second (all: %v)", p50, all)
	}
	mr := s.rollout()
	last := mr.Status.History[len(mr.Status.History)-1]
	if last.Type != "RolledBack" || last.Actor != rig.EngineerUser {
		t.Fatalf("last history entry %+v, want RolledBack by alice", last)
	}
}

// rollbackOnce (after starting a canary again when restart is set) asks for
// a rollback and returns the time until a watch sees the VirtualService at
// 100% stable.
func rollbackOnce(ctx context.Context, t testing.TB, m *rig.Model, c *client.Client, restart bool) time.Duration {
	t.Helper()
	if restart {
		mr, err := c.Act(ctx, m.NS, m.Name, "start", client.ActionRequest{Candidate: "v2", Reason: "again"})
		if err != nil {
			t.Fatal(err)
		}
		waitVS(ctx, t, m.Istio, m, func(w map[string]int32) bool { return w["v2"] > 0 })
		// The controller writes the VirtualService before the status that
		// marks the intent applied; a rollback before that is refused (409).
		waitObserved(ctx, t, m, mr.Spec.Intent.ID)
	}
	start := time.Now()
	mr, err := c.Act(ctx, m.NS, m.Name, "rollback", client.ActionRequest{Reason: "measure"})
	if err != nil {
		t.Fatal(err)
	}
	at := waitVS(ctx, t, m.Istio, m, func(w map[string]int32) bool { return w["v1"] == 100 })
	waitObserved(ctx, t, m, mr.Spec.Intent.ID)
	return at.Sub(start)
}

// waitObserved waits until the controller marks the intent applied.
func waitObserved(ctx context.Context, t testing.TB, m *rig.Model, id string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit())
	for {
		got, err := m.Rollout(ctx)
		if err == nil && got.Status.ObservedIntent == id {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("intent %s never observed (last error %v)", id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitVS watches the model's VirtualService until cond holds for its
// weights and returns when the watch saw it.
func waitVS(ctx context.Context, t testing.TB, ic istioclient.Interface, m *rig.Model, cond func(map[string]int32) bool) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitLimit())
	defer cancel()
	vss := ic.NetworkingV1().VirtualServices(m.NS)
	cur, err := vss.Get(ctx, m.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cond(rig.RouteWeights(cur)) {
		return time.Now()
	}
	w, err := vss.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + m.Name, ResourceVersion: cur.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if vs, ok := ev.Object.(*istionetv1.VirtualService); ok && cond(rig.RouteWeights(vs)) {
			return time.Now()
		}
	}
	t.Fatalf("VirtualService %s/%s never reached the weights (watch ended: %v)", m.NS, m.Name, ctx.Err())
	return time.Time{}
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return s[i]
}

// Given a canary at its first step, when an ordinary user (not Fulcrum) or
// even the cluster admin edits the managed weights by hand, then the
// webhook denies it with a message naming the fulcrumctl command, and the
// weights and traffic stay where Fulcrum put them.
func TestHandEditOfManagedWeightsDenied(t *testing.T) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v2", Behavior: healthy})
	s.startFulcrum("fulcrum")
	s.createRollout(rig.RolloutConfig{Candidate: "v2", MinStepDuration: time.Hour})
	s.waitWeights(map[string]int32{"v1": 80, "v2": 20})
	aliceCfg, err := env.Kube.ConfigForUser(rig.EngineerUser)
	if err != nil {
		t.Fatal(err)
	}
	for name, ic := range map[string]istioclient.Interface{"alice": mustIstio(t, aliceCfg), "cluster admin": s.model.Istio} {
		// When
		vs, err := ic.NetworkingV1().VirtualServices(s.model.NS).Get(s.ctx, "fraud", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		vs = vs.DeepCopy()
		vs.Spec.Http[0].Route[0].Weight, vs.Spec.Http[0].Route[1].Weight = 50, 50
		_, err = ic.NetworkingV1().VirtualServices(s.model.NS).Update(s.ctx, vs, metav1.UpdateOptions{})
		// Then
		if err == nil || !strings.Contains(err.Error(), "managed by ModelRollout "+s.model.NS+"/fraud") || !strings.Contains(err.Error(), "fulcrumctl -n "+s.model.NS+" split fraud") {
			t.Fatalf("%s's edit of managed weights: %v, want a webhook denial naming the rollout and fulcrumctl split", name, err)
		}
	}
	if w := s.weights(); !sameWeights(w, map[string]int32{"v1": 80, "v2": 20}) {
		t.Fatalf("weights %v after denied edits, want 80/20", w)
	}
	s.assertShare(s.served(2000), "v2", 20)
}

// Given a stable v1, a good v2 and a bad v3, when a CI pipeline runs
// fulcrumctl start --wait, then it exits 0 for v2 (promoted) and 1 for v3
// (rolled back to v2).
func TestCIFlowExitCodes(t *testing.T) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v2", Behavior: healthy}, rig.Version{Name: "v3", Behavior: erroring})
	f := s.startFulcrum("fulcrum")
	s.createRollout(rig.RolloutConfig{})
	s.waitPhase(v1alpha1.PhaseStable)
	ci := userToken(t, rig.CIUser)

	// When
	out, code, err := env.Fulcrumctl(s.ctx, f.AdminURL, ci, "start", "fraud", "-n", s.model.NS, "--candidate", "v2", "--reason", "pipeline 1", "--wait", "--timeout", "3m")
	// Then
	if err != nil || code != 0 {
		t.Fatalf("fulcrumctl start v2 --wait: exit %d (want 0), %v\n%s", code, err, out)
	}
	s.waitWeights(map[string]int32{"v2": 100})

	// When
	out, code, err = env.Fulcrumctl(s.ctx, f.AdminURL, ci, "start", "fraud", "-n", s.model.NS, "--candidate", "v3", "--reason", "pipeline 2", "--wait", "--timeout", "3m")
	// Then
	if err != nil || code != 1 {
		t.Fatalf("fulcrumctl start v3 --wait: exit %d (want 1), %v\n%s", code, err, out)
	}
	t.Logf("fulcrumctl output for the bad model:\n%s", out)
	mr := s.rollout()
	if mr.Status.Phase != v1alpha1.PhaseRolledBack || mr.Spec.Stable != "v2" {
		t.Fatalf("phase %s stable %s, want RolledBack to v2", mr.Status.Phase, mr.Spec.Stable)
	}
	s.waitWeights(map[string]int32{"v2": 100})
	s.assertShare(s.served(600), "v2", 100)
}

func mustIstio(t testing.TB, cfg *rest.Config) istioclient.Interface {
	t.Helper()
	ic, err := istioclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ic
}
