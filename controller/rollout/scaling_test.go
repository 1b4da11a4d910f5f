package rollout

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

var (
	hpaMin = func(name string) ScaleTarget {
		return ScaleTarget{Kind: v1alpha1.KindHPA, Name: name, Field: v1alpha1.FieldMinReplicas}
	}
	hpaMax = func(name string) ScaleTarget {
		return ScaleTarget{Kind: v1alpha1.KindHPA, Name: name, Field: v1alpha1.FieldMaxReplicas}
	}
	replicas = func(name string) ScaleTarget {
		return ScaleTarget{Kind: v1alpha1.KindDeployment, Name: name, Field: v1alpha1.FieldReplicas}
	}
)

// withScaling sets spec.scaling with Deployments fraud-{{subset}}, and
// gives the sim a Deployment per version (2 replicas each), v2's with an
// HPA (min 1, max 10) when hpa is true.
func withScaling(s *sim, hpa bool, mutate func(*v1alpha1.Scaling)) {
	sc := &v1alpha1.Scaling{DeploymentName: "fraud-{{subset}}"}
	if mutate != nil {
		mutate(sc)
	}
	s.r.Spec.Scaling = sc
	s.workloads = map[string]Workload{}
	s.values = map[ScaleTarget]int32{}
	for _, v := range []string{"v1", "v2", "v3"} {
		s.workloads[v] = Workload{Deployment: "fraud-" + v}
		s.values[replicas("fraud-"+v)] = 2
	}
	if hpa {
		s.workloads["v2"] = Workload{Deployment: "fraud-v2", HPA: "fraud-v2"}
		s.values[hpaMin("fraud-v2")], s.values[hpaMax("fraud-v2")] = 1, 10
	}
}

func (s *sim) lastHistory(typ string) v1alpha1.HistoryEntry {
	s.t.Helper()
	for i := len(s.r.Status.History) - 1; i >= 0; i-- {
		if h := s.r.Status.History[i]; h.Type == typ {
			return h
		}
	}
	s.t.Fatalf("no %s in history %v", typ, s.historyTypes())
	return v1alpha1.HistoryEntry{}
}

func (s *sim) count(typ string) int {
	n := 0
	for _, h := range s.r.Status.History {
		if h.Type == typ {
			n++
		}
	}
	return n
}

// Given 100 requests/s and 20 per pod, and v2 with one Ready pod under an
// HPA (min 1): the first step (20 requests/s) goes ahead; before the second
// (50) Fulcrum raises the HPA's minReplicas to 3 and waits until 3 pods are
// Ready; before promotion (100) to 5. The promoted version keeps them.
func TestScaleAheadRaisesHPAMinReplicasThenSteps(t *testing.T) {
	s := newSim(t, withCapacity(20))
	withScaling(s, true, func(sc *v1alpha1.Scaling) { sc.ScaleAhead = true })
	s.rate = ptr.To(100.0)
	s.ready["v2"] = 1
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})
	if s.count(HistoryScaledUp) != 0 {
		t.Fatal("scaled up for a step that one pod carries")
	}

	s.clk.Step(time.Minute)
	d := s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20}) // raised, not shifted
	if len(d.Scale) != 1 || d.Scale[0].ScaleTarget != hpaMin("fraud-v2") || d.Scale[0].From != 1 || d.Scale[0].To != 3 {
		t.Fatalf("scale actions %+v, want HPA fraud-v2 minReplicas 1→3", d.Scale)
	}
	h := s.lastHistory(HistoryScaledUp)
	want := "step 2 (50%) needs 3 Ready pods of v2 at 20 requests/s each (50 of 100 requests/s); it had 1: raised HPA fraud-v2 minReplicas 1→3"
	if h.Reason != want || h.Actor != ActorController || h.Step != nil || h.Weights != nil {
		t.Fatalf("history %+v, want reason %q by fulcrum", h, want)
	}
	s.wantEvent(ReasonScaledUp)
	s.wantWaiting(t, "waiting for 3 Ready pods; scaled ahead: HPA fraud-v2 minReplicas 1→3")
	c := s.r.Status.Scaling.Changes
	if len(c) != 1 || c[0].Original != 1 || c[0].Set != 3 || c[0].Kind != v1alpha1.KindHPA || c[0].Field != v1alpha1.FieldMinReplicas {
		t.Fatalf("status.scaling.changes %+v", c)
	}
	if s.values[hpaMax("fraud-v2")] != 10 {
		t.Fatal("maxReplicas changed")
	}
	s.steady() // waiting for pods: no second raise, no second entry

	s.ready["v2"] = 3
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})

	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	if h := s.lastHistory(HistoryScaledUp); !strings.HasPrefix(h.Reason, "promotion (100%) needs 5 Ready pods") || !strings.HasSuffix(h.Reason, "raised HPA fraud-v2 minReplicas 3→5") {
		t.Fatalf("second raise %q", h.Reason)
	}
	if c := s.r.Status.Scaling.Changes; len(c) != 1 || c[0].Original != 1 || c[0].Set != 5 {
		t.Fatalf("the change must keep the original value 1: %+v", c)
	}
	s.ready["v2"] = 5
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePromoted)
	if s.r.Status.Scaling != nil || s.values[hpaMin("fraud-v2")] != 5 {
		t.Fatalf("the promoted version keeps its replicas: status.scaling %+v, minReplicas %d", s.r.Status.Scaling, s.values[hpaMin("fraud-v2")])
	}
}

// atSecondStep is a rollout of v2 with scaleAhead at 100 requests/s and 20
// per pod, its first step (20%) applied with one Ready pod, and the second
// (50%, 3 pods) just decided; given sets the workloads up first.
func atSecondStep(t *testing.T, hpa bool, given func(*sim)) *sim {
	s := newSim(t, withCapacity(20))
	withScaling(s, hpa, func(sc *v1alpha1.Scaling) { sc.ScaleAhead = true })
	given(s)
	s.rate = ptr.To(100.0)
	s.ready["v2"] = 1
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	return s
}

// An HPA whose maxReplicas is below what the step needs is raised to its
// maximum only; the wait says to raise maxReplicas.
func TestScaleAheadStopsAtHPAMaxReplicas(t *testing.T) {
	s := atSecondStep(t, true, func(s *sim) { s.values[hpaMax("fraud-v2")] = 2 })
	if got := s.values[hpaMin("fraud-v2")]; got != 2 {
		t.Fatalf("minReplicas %d, want 2 (the HPA's maxReplicas)", got)
	}
	s.wantWaiting(t, "HorizontalPodAutoscaler fraud-v2 allows at most 2 replicas (spec.maxReplicas), fewer than the 3 needed: raise its maxReplicas")
	s.steady()
}

// Without an HPA the Deployment's replicas are raised. A rollback puts them
// back: when the write fails, the rollback is not held, the restore is
// retried and the message says so, until it lands.
func TestRollbackRestoresWhatWasScaled(t *testing.T) {
	s := atSecondStep(t, false, func(s *sim) { s.values[replicas("fraud-v2")] = 1 })
	if got := s.values[replicas("fraud-v2")]; got != 3 {
		t.Fatalf("Deployment fraud-v2 replicas %d, want 3", got)
	}

	s.scaleFails = true
	s.intent("rb-1", v1alpha1.IntentRollback)
	d := s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseRolledBack)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	h := s.lastHistory(HistoryScaleRestored)
	if h.Reason != "v2 was rolled back: put back Deployment fraud-v2 replicas 3→1, its value before Fulcrum changed it" {
		t.Fatalf("restore reason %q", h.Reason)
	}
	if len(d.Scale) != 1 || d.Scale[0].To != 1 || d.RequeueAfter != retryScaling {
		t.Fatalf("scale %+v requeue %s, want a write to 1 and a look again in %s", d.Scale, d.RequeueAfter, retryScaling)
	}
	if !strings.Contains(s.r.Status.Message, "putting back Deployment fraud-v2 replicas to 1") {
		t.Fatalf("message %q", s.r.Status.Message)
	}
	d = s.reconcile(nil) // still failing: the same write again, no new entry
	if len(d.Scale) != 1 || s.count(HistoryScaleRestored) != 1 {
		t.Fatalf("retry: scale %+v, %d ScaleRestored entries", d.Scale, s.count(HistoryScaleRestored))
	}

	s.scaleFails = false
	s.reconcile(nil)
	if s.values[replicas("fraud-v2")] != 1 {
		t.Fatal("not restored")
	}
	s.reconcile(nil)
	if s.r.Status.Scaling != nil {
		t.Fatalf("status.scaling %+v after the restore landed, want none", s.r.Status.Scaling)
	}
	s.steady()
}

// After a promotion the old version waits spec.scaling.scaleDownAfter, then
// goes to 0; a new rollout of it puts its replicas back.
func TestScaleDownAfterPromotion(t *testing.T) {
	s := newSim(t)
	withScaling(s, false, func(sc *v1alpha1.Scaling) { sc.ScaleDownAfter = &metav1.Duration{Duration: 30 * time.Minute} })
	s.r.Spec.Candidate = "v2"
	s.intent("p-1", v1alpha1.IntentPromote)
	d := s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePromoted)
	sd := s.r.Status.Scaling.ScaleDown
	if sd == nil || sd.Subset != "v1" || !sd.At.Time.Equal(t0.Add(30*time.Minute)) || sd.Replicas != 0 {
		t.Fatalf("pending scale-down %+v", sd)
	}
	if d.RequeueAfter != 30*time.Minute || len(d.Scale) != 0 {
		t.Fatalf("requeue %s scale %+v, want a look in 30m and nothing scaled yet", d.RequeueAfter, d.Scale)
	}
	if !strings.Contains(s.r.Status.Message, "v1 scales down to 0 replicas at 2026-11-03T10:30:00Z") {
		t.Fatalf("message %q", s.r.Status.Message)
	}
	s.steady()

	s.clk.Step(30 * time.Minute)
	d = s.reconcile(nil)
	if s.values[replicas("fraud-v1")] != 0 || len(d.Scale) != 1 {
		t.Fatalf("v1 replicas %d, actions %+v", s.values[replicas("fraud-v1")], d.Scale)
	}
	h := s.lastHistory(HistoryScaledDown)
	if h.Reason != "v1 scaled down 30m0s after v2 was promoted (spec.scaling.scaleDownAfter): Deployment fraud-v1 replicas 2→0" {
		t.Fatalf("scale-down reason %q", h.Reason)
	}
	if c := s.r.Status.Scaling.Changes; len(c) != 1 || c[0].Original != 2 || c[0].Set != 0 || s.r.Status.Scaling.ScaleDown != nil {
		t.Fatalf("status.scaling %+v", s.r.Status.Scaling)
	}
	s.steady()

	// Going back to v1 as a new rollout brings its replicas back first.
	s.ready["v1"] = 0
	s.r.Spec.Candidate = "v1"
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v2": 100, "v1": 0})
	if s.values[replicas("fraud-v1")] != 2 {
		t.Fatalf("v1 replicas %d, want 2 put back", s.values[replicas("fraud-v1")])
	}
	if h := s.lastHistory(HistoryScaleRestored); !strings.HasPrefix(h.Reason, "v1 is the candidate of a new rollout: put back Deployment fraud-v1 replicas 0→2") {
		t.Fatalf("restore reason %q", h.Reason)
	}
}

// A new rollout before the scale-down's time cancels it, and it never
// fires afterwards.
func TestNewRolloutCancelsPendingScaleDown(t *testing.T) {
	s := newSim(t)
	withScaling(s, false, func(sc *v1alpha1.Scaling) { sc.ScaleDownAfter = &metav1.Duration{Duration: 30 * time.Minute} })
	s.r.Spec.Candidate = "v2"
	s.intent("p-1", v1alpha1.IntentPromote)
	s.reconcile(nil)
	s.reconcile(nil) // the spec update landed: spec.stable is v2

	s.clk.Step(10 * time.Minute)
	s.r.Spec.Candidate = "v3"
	s.reconcile(nil)
	h := s.lastHistory(HistoryScaleDownCancelled)
	if h.Reason != "scale-down of v1 planned for 2026-11-03T10:30:00Z cancelled: a rollout of v3 started" {
		t.Fatalf("cancel reason %q", h.Reason)
	}
	s.clk.Step(time.Hour)
	s.reconcile(nil)
	if s.values[replicas("fraud-v1")] != 2 || s.count(HistoryScaledDown) != 0 {
		t.Fatal("a cancelled scale-down fired")
	}
}

// With an HPA, scaleDownTo above 0 lowers both its bounds; the old
// version becoming stable again puts them back.
func TestScaleDownToKeepsReplicasUnderAnHPA(t *testing.T) {
	s := newSim(t, func(r *v1alpha1.ModelRollout) { r.Spec.Stable, r.Spec.Candidate = "v2", "v1" })
	s.routes = map[string]map[string]int32{"predict": {"v2": 100, "v1": 0}}
	withScaling(s, true, func(sc *v1alpha1.Scaling) {
		sc.ScaleDownAfter = &metav1.Duration{Duration: time.Minute}
		sc.ScaleDownTo = 1
	})
	s.values[hpaMin("fraud-v2")] = 3
	s.intent("p-1", v1alpha1.IntentPromote)
	s.reconcile(nil)
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	if s.values[hpaMin("fraud-v2")] != 1 || s.values[hpaMax("fraud-v2")] != 1 || s.values[replicas("fraud-v2")] != 2 {
		t.Fatalf("values %v: want HPA fraud-v2 min=max=1 and the Deployment untouched", s.values)
	}
	if h := s.lastHistory(HistoryScaledDown); !strings.HasSuffix(h.Reason, "HPA fraud-v2 minReplicas 3→1, HPA fraud-v2 maxReplicas 10→1") {
		t.Fatalf("reason %q", h.Reason)
	}

	s.r.Spec.Stable = "v2" // a person puts v2 back as stable
	s.r.Generation++
	s.reconcile(nil)
	if s.values[hpaMin("fraud-v2")] != 3 || s.values[hpaMax("fraud-v2")] != 10 {
		t.Fatalf("values %v: want the HPA's bounds put back", s.values)
	}
}
