package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/analysis/experiment"
	"github.com/fulcrum-ml/fulcrum/router"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

// sim plays the reconciler: it feeds Decide, applies the decision to the
// rollout and the "mesh", and keeps the events.
type sim struct {
	t      *testing.T
	r      *v1alpha1.ModelRollout
	clk    *clocktesting.FakeClock
	ready  map[string]int32
	routes map[string]map[string]int32
	// subsets of the DestinationRule; conflict as the reconciler reports it.
	subsets  map[string]bool
	conflict string
	// shadowed and changes are the route issues the reconciler reports.
	shadowed, changes []string
	// rate and trafficProblem are the model's traffic as read for capacity.
	rate           *float64
	trafficProblem string
	// perPod and capacityProblem are one pod's measured capacity
	// (spec.readiness.requestsPerPodQuery).
	perPod          *float64
	capacityProblem string
	// workloads and values are the versions' Deployments and HPAs
	// (spec.scaling); scaleFails makes every scale write fail.
	workloads  map[string]Workload
	values     map[ScaleTarget]int32
	scaleFails bool
	// warmth is the candidate's warm-up reading.
	warmth *Warmth
	// rewards are an experiment's counts per arm.
	rewards []experiment.ArmData
	// gates are the reconciler's readings of HTTP and Job gate runs.
	gates  map[string]GateObservation
	events []Event
	last   Decision
}

func newSim(t *testing.T, mutate ...func(*v1alpha1.ModelRollout)) *sim {
	r := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: "ml", Generation: 1},
		Spec: v1alpha1.ModelRolloutSpec{
			VirtualService:  &v1alpha1.VirtualServiceRef{Name: "fraud", Routes: []string{"predict"}},
			DestinationRule: "fraud",
			Stable:          "v1",
			Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{
				Steps: []int32{5, 25, 50, 100}, MinStepDuration: metav1.Duration{Duration: time.Minute},
			}},
			Readiness:            v1alpha1.Readiness{MinReadyPods: 1},
			OnMetricsUnavailable: v1alpha1.MetricsUnavailableHold,
		},
	}
	for _, m := range mutate {
		m(r)
	}
	return &sim{
		t: t, r: r, clk: clocktesting.NewFakeClock(t0),
		ready:   map[string]int32{"v1": 2, "v2": 2, "v3": 2},
		routes:  map[string]map[string]int32{"predict": {"v1": 100, "v2": 0}},
		subsets: map[string]bool{"v1": true, "v2": true, "v3": true},
	}
}

func withMetrics(r *v1alpha1.ModelRollout) {
	r.Spec.Analysis = &v1alpha1.Analysis{
		Interval: metav1.Duration{Duration: 30 * time.Second}, FailureLimit: 2, InconclusiveLimit: 3, MinSamples: 100,
		Metrics: []v1alpha1.Metric{{Name: "error-rate", Template: "istio-error-rate"}},
	}
}

func (s *sim) reconcile(round *v1alpha1.AnalysisRound) Decision {
	s.t.Helper()
	before := s.r.DeepCopy()
	d := Decide(s.r, Observed{
		Now: s.clk.Now(), RouteWeights: s.routes, ReadyPods: s.ready,
		Subsets: s.subsets, Conflict: s.conflict, Round: round,
		Shadowed: s.shadowed, RouteChanges: s.changes,
		TrafficRate: s.rate, TrafficProblem: s.trafficProblem, Warmth: s.warmth, Rewards: s.rewards,
		Workloads: s.workloads, ScaleValues: s.values,
		RequestsPerPod: s.perPod, CapacityProblem: s.capacityProblem, Gates: s.gates,
		RouteShapes: []v1alpha1.RouteShape{{Route: "predict", Fields: map[string]string{"match": "abc"}}},
	})
	if !equality.Semantic.DeepEqual(before, s.r) {
		s.t.Fatalf("Decide modified its input")
	}
	if d.Weights != nil {
		s.routes = map[string]map[string]int32{"predict": toMap(d.Weights)}
	}
	if d.Promote {
		s.r.Spec.Stable, s.r.Spec.Candidate = d.Status.Candidate, ""
	}
	for _, a := range d.Scale {
		if !s.scaleFails {
			s.values[a.ScaleTarget] = a.To
		}
	}
	s.r.Status = d.Status
	s.events = append(s.events, d.Events...)
	s.last = d
	return d
}

func (s *sim) intent(id string, a v1alpha1.IntentAction, w ...v1alpha1.SubsetWeight) {
	s.r.Spec.Intent = &v1alpha1.Intent{ID: id, Action: a, Actor: "alice", Reason: "because", Weights: w}
	s.r.Generation++
}

func (s *sim) wantWeights(want map[string]int32) {
	s.t.Helper()
	got := s.routes["predict"]
	if !router.WeightsEqual(got, want) {
		s.t.Fatalf("mesh weights %v, want %v (phase %s, message %q)", got, want, s.r.Status.Phase, s.r.Status.Message)
	}
	if !router.WeightsEqual(toMap(s.r.Status.Weights), want) {
		s.t.Fatalf("status weights %v, want %v", s.r.Status.Weights, want)
	}
}

func (s *sim) wantPhase(p v1alpha1.Phase) {
	s.t.Helper()
	if s.r.Status.Phase != p {
		s.t.Fatalf("phase %s, want %s (message %q)", s.r.Status.Phase, p, s.r.Status.Message)
	}
}

func (s *sim) wantEvent(reason string) Event {
	s.t.Helper()
	for _, e := range s.events {
		if e.Reason == reason {
			return e
		}
	}
	s.t.Fatalf("no event %s in %+v", reason, s.events)
	return Event{}
}

func (s *sim) historyTypes() []string {
	var out []string
	for _, h := range s.r.Status.History {
		out = append(out, h.Type)
	}
	return out
}

// steady checks that another reconcile at the same time changes nothing:
// the status is equal (no write), no events, no weights change.
func (s *sim) steady() {
	s.t.Helper()
	before := s.r.Status.DeepCopy()
	routes := s.routes["predict"]
	d := s.reconcile(nil)
	if !equality.Semantic.DeepEqual(*before, d.Status) {
		s.t.Fatalf("second reconcile changed status:\nbefore %+v\nafter  %+v", before, d.Status)
	}
	if len(d.Events) > 0 {
		s.t.Fatalf("second reconcile emitted events: %+v", d.Events)
	}
	if !router.WeightsEqual(routes, s.routes["predict"]) {
		s.t.Fatalf("second reconcile changed weights")
	}
}

func pass() *v1alpha1.AnalysisRound { return &v1alpha1.AnalysisRound{Verdict: v1alpha1.VerdictPass} }
func fail() *v1alpha1.AnalysisRound {
	return &v1alpha1.AnalysisRound{Verdict: v1alpha1.VerdictFail, Metrics: []v1alpha1.MetricResult{{Name: "error-rate", Verdict: v1alpha1.VerdictFail, Message: "2% > 0.5%"}}}
}

// verdict is a round whose metric saw plenty of traffic: an Inconclusive one
// lacks evidence because of doubt, not traffic.
func verdict(v v1alpha1.Verdict) *v1alpha1.AnalysisRound {
	return &v1alpha1.AnalysisRound{Verdict: v, Metrics: []v1alpha1.MetricResult{{Name: "error-rate", Verdict: v, CandidateSamples: 5000}}}
}

// starved is an Inconclusive round whose candidate saw fewer requests than
// minSamples: traffic, not doubt, is missing.
func starved() *v1alpha1.AnalysisRound {
	return &v1alpha1.AnalysisRound{Verdict: v1alpha1.VerdictInconclusive, Metrics: []v1alpha1.MetricResult{{Name: "error-rate", Verdict: v1alpha1.VerdictInconclusive, CandidateSamples: 12}}}
}

func TestLowTrafficAdvancesForEvidenceButNeverPromotes(t *testing.T) {
	s := newSim(t, withMetrics) // steps 5, 25, 50, 100; minStepDuration 1m
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(30 * time.Second)
	s.reconcile(starved()) // minStepDuration not reached yet
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5})
	s.clk.Step(30 * time.Second)
	s.reconcile(starved())
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
	if h := s.r.Status.History[len(s.r.Status.History)-1]; !strings.Contains(h.Reason, "too little traffic") {
		t.Fatalf("history reason %q should say why the step advanced without a Pass", h.Reason)
	}
	// A starved round from before the step's minimum time is up does not
	// count: its window was shorter than the step, so few samples prove
	// nothing about traffic.
	s.reconcile(nil)
	s.clk.Step(59 * time.Second)
	s.reconcile(starved())
	s.clk.Step(time.Second)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
	s.clk.Step(30 * time.Second)
	s.reconcile(starved())
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
	// The next step is 100%: promotion needs a Pass, however long it waits.
	s.reconcile(nil)
	s.clk.Step(time.Minute)
	s.reconcile(starved())
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.clk.Step(30 * time.Second)
	s.reconcile(pass())
	s.wantPhase(v1alpha1.PhasePromoted)
}

func TestIdleRolloutIsStable(t *testing.T) {
	s := newSim(t)
	d := s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseStable)
	s.wantWeights(map[string]int32{"v1": 100})
	if d.RequeueAfter != 0 || d.Promote || len(s.r.Status.History) != 0 {
		t.Fatalf("idle rollout: requeue %v promote %v history %v", d.RequeueAfter, d.Promote, s.r.Status.History)
	}
	if c := meta.FindStatusCondition(s.r.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("Ready condition = %+v", c)
	}
	s.steady()
}

func TestCanaryWithoutMetricsAdvancesOnTime(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	d := s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5})
	if d.RequeueAfter != time.Minute {
		t.Fatalf("requeue %v, want 1m", d.RequeueAfter)
	}
	if a := s.r.Status.Analysis; a == nil || a.Ran {
		t.Fatalf("status.analysis = %+v, want ran=false", a)
	}
	if s.r.Status.History[0].Actor != ActorSpec {
		t.Fatalf("start actor %q, want %q", s.r.Status.History[0].Actor, ActorSpec)
	}
	s.steady()

	s.clk.Step(59 * time.Second)
	if d := s.reconcile(nil); d.RequeueAfter != time.Second {
		t.Fatalf("before minStepDuration: requeue %v, want 1s", d.RequeueAfter)
	}
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5})

	for _, want := range []int32{25, 50} {
		s.clk.Step(time.Minute)
		s.reconcile(nil)
		s.wantWeights(map[string]int32{"v1": 100 - want, "v2": want})
		if s.r.Status.StepStartedAt == nil || !s.r.Status.StepStartedAt.Time.Equal(s.clk.Now()) {
			t.Fatalf("stepStartedAt %v, want now", s.r.Status.StepStartedAt)
		}
		s.steady()
	}
	s.clk.Step(time.Minute)
	d = s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePromoted)
	if !d.Promote || d.Outcome != OutcomePromoted || d.Duration != 3*time.Minute+59*time.Second {
		t.Fatalf("promotion decision: promote %v outcome %q duration %v", d.Promote, d.Outcome, d.Duration)
	}
	s.wantWeights(map[string]int32{"v2": 100, "v1": 0})
	if s.r.Spec.Stable != "v2" || s.r.Spec.Candidate != "" {
		t.Fatalf("spec after promotion: stable %q candidate %q", s.r.Spec.Stable, s.r.Spec.Candidate)
	}
	got := strings.Join(s.historyTypes(), ",")
	if got != "Started,StepAdvanced,StepAdvanced,Promoted" {
		t.Fatalf("history %s", got)
	}
	s.steady()
	if s.last.RequeueAfter != 0 {
		t.Fatalf("promoted rollout requeues after %v", s.last.RequeueAfter)
	}
}

func TestAnalysisPassAdvancesAfterMinStep(t *testing.T) {
	s := newSim(t, withMetrics)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	if AnalysisDue(s.r, s.clk.Now()) {
		t.Fatal("analysis due at step start")
	}
	s.clk.Step(30 * time.Second)
	if !AnalysisDue(s.r, s.clk.Now()) {
		t.Fatal("analysis not due after one interval")
	}
	d := s.reconcile(pass())
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5}) // minStep not reached
	if d.RequeueAfter != 30*time.Second {
		t.Fatalf("requeue %v, want 30s", d.RequeueAfter)
	}
	if a := s.r.Status.Analysis; !a.Ran || a.Rounds != 1 {
		t.Fatalf("analysis %+v", a)
	}
	s.clk.Step(30 * time.Second)
	s.reconcile(pass())
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
	if a := s.r.Status.Analysis; a.Rounds != 0 || a.LastRoundAt != nil {
		t.Fatalf("new step keeps old analysis: %+v", a)
	}
}

func TestMinStepReachedWaitsForPass(t *testing.T) {
	s := newSim(t, withMetrics)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(30 * time.Second)
	s.reconcile(verdict(v1alpha1.VerdictInconclusive))
	s.clk.Step(30 * time.Second)
	s.reconcile(verdict(v1alpha1.VerdictInconclusive))
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5})
	s.clk.Step(30 * time.Second)
	s.reconcile(pass())
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
}

func TestFailuresRollBack(t *testing.T) {
	s := newSim(t, withMetrics)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(30 * time.Second)
	s.reconcile(fail())
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.clk.Step(30 * time.Second)
	d := s.reconcile(fail())
	s.wantPhase(v1alpha1.PhaseRolledBack)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	if d.Outcome != OutcomeRolledBack || s.r.Spec.Candidate != "v2" {
		t.Fatalf("outcome %q, spec.candidate %q", d.Outcome, s.r.Spec.Candidate)
	}
	if e := s.wantEvent(ReasonRolledBack); e.Type != EventTypeWarning || !strings.Contains(e.Message, "2% > 0.5%") {
		t.Fatalf("rollback event %+v", e)
	}
	if c := meta.FindStatusCondition(s.r.Status.Conditions, v1alpha1.ConditionAnalysis); c == nil || c.Status != metav1.ConditionFalse {
		t.Fatalf("Analysis condition %+v", c)
	}
	s.steady()
	// The same candidate does not restart by itself...
	s.clk.Step(time.Hour)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseRolledBack)
	// ...but a Start intent with a new id retries it.
	s.intent("retry-1", v1alpha1.IntentStart)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5})
	if h := s.r.Status.History[len(s.r.Status.History)-1]; h.Actor != "alice" || h.IntentID != "retry-1" || h.Reason != "because" {
		t.Fatalf("start history %+v", h)
	}
}

func TestPassBetweenFailuresResetsCount(t *testing.T) {
	s := newSim(t, withMetrics)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	for _, r := range []*v1alpha1.AnalysisRound{fail(), pass(), fail()} {
		s.clk.Step(30 * time.Second)
		s.reconcile(r)
	}
	s.wantPhase(v1alpha1.PhaseProgressing)
}

func TestInconclusiveLimitPauses(t *testing.T) {
	s := newSim(t, withMetrics)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	for i := 0; i < 3; i++ {
		s.clk.Step(30 * time.Second)
		s.reconcile(verdict(v1alpha1.VerdictInconclusive))
	}
	s.wantPhase(v1alpha1.PhasePaused)
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5})
	if !strings.Contains(s.r.Status.Message, "inconclusive") {
		t.Fatalf("message %q", s.r.Status.Message)
	}
	if AnalysisDue(s.r, s.clk.Now().Add(time.Hour)) {
		t.Fatal("analysis due while paused")
	}
	s.intent("go-on", v1alpha1.IntentResume)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	if s.r.Status.Analysis.ConsecutiveInconclusive != 0 {
		t.Fatal("resume kept the inconclusive count")
	}
}

func TestErrorRoundsFollowPolicy(t *testing.T) {
	hold := newSim(t, withMetrics)
	hold.r.Spec.Candidate = "v2"
	hold.reconcile(nil)
	for i := 0; i < 5; i++ {
		hold.clk.Step(time.Minute)
		hold.reconcile(verdict(v1alpha1.VerdictError))
	}
	hold.wantPhase(v1alpha1.PhaseProgressing)
	hold.wantWeights(map[string]int32{"v1": 95, "v2": 5})
	hold.wantEvent(ReasonAnalysisError)

	rb := newSim(t, withMetrics, func(r *v1alpha1.ModelRollout) {
		r.Spec.OnMetricsUnavailable = v1alpha1.MetricsUnavailableRollback
	})
	rb.r.Spec.Candidate = "v2"
	rb.reconcile(nil)
	for i := 0; i < 2; i++ {
		rb.clk.Step(time.Minute)
		rb.reconcile(verdict(v1alpha1.VerdictError))
	}
	rb.wantPhase(v1alpha1.PhaseRolledBack)
}

func TestReadinessGate(t *testing.T) {
	s := newSim(t)
	s.ready["v2"] = 0
	s.r.Spec.Candidate = "v2"
	d := s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	c := meta.FindStatusCondition(s.r.Status.Conditions, v1alpha1.ConditionSubsetsReady)
	if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "subset v2 has 0 Ready pod(s), needs 1") {
		t.Fatalf("SubsetsReady %+v", c)
	}
	if s.r.Status.StepStartedAt != nil || d.RequeueAfter != retryWhileWaiting {
		t.Fatalf("step started while waiting (requeue %v)", d.RequeueAfter)
	}
	s.steady()
	s.clk.Step(10 * time.Minute)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	s.ready["v2"] = 1
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5})
	if !s.r.Status.StepStartedAt.Time.Equal(s.clk.Now()) {
		t.Fatal("step clock did not start when weights were applied")
	}
	// Pods go away mid-step: traffic leaves the podless candidate at once
	// and the rollout ends (invariant 1).
	s.ready["v2"] = 0
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	s.wantPhase(v1alpha1.PhaseRolledBack)
	if h := s.r.Status.History[len(s.r.Status.History)-1]; h.Actor != ActorController || !strings.Contains(h.Reason, "subset v2 has 0 Ready pod(s)") {
		t.Fatalf("rollback history %+v", h)
	}
}

func TestDriftIsReverted(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.routes["predict"] = map[string]int32{"v1": 50, "v2": 50}
	d := s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5})
	e := s.wantEvent(ReasonWeightDriftReverted)
	if !strings.Contains(e.Message, "v1=50 v2=50") || len(d.Events) != 1 {
		t.Fatalf("drift event %+v (events %+v)", e, d.Events)
	}
	if len(s.r.Status.History) != 1 {
		t.Fatalf("drift wrote history: %v", s.historyTypes())
	}
}

func TestMissingReferencesFailAndRecover(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	d := Decide(s.r, Observed{Now: s.clk.Now(), Problem: "create VirtualService ml/fraud"})
	if d.Weights != nil || d.Status.Phase != v1alpha1.PhaseFailed {
		t.Fatalf("failed decision writes weights %v / phase %s", d.Weights, d.Status.Phase)
	}
	c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionReady)
	if c.Status != metav1.ConditionFalse || c.Message != "create VirtualService ml/fraud" || d.Status.Message != c.Message {
		t.Fatalf("Ready %+v message %q", c, d.Status.Message)
	}
	if !router.WeightsEqual(toMap(d.Status.Weights), map[string]int32{"v1": 95, "v2": 5}) {
		t.Fatalf("failed status lost the weights: %v", d.Status.Weights)
	}
	s.r.Status = d.Status
	s.clk.Step(5 * time.Minute)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
	if got := strings.Join(s.historyTypes(), ","); got != "Started,Failed,Recovered,StepAdvanced" {
		t.Fatalf("history %s", got)
	}
}

func TestPromotionCompletesAfterCrashBetweenSpecAndStatus(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	// The spec update of a promotion landed, the status update did not.
	s.r.Spec.Stable, s.r.Spec.Candidate = "v2", ""
	d := s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePromoted)
	if d.Promote {
		t.Fatal("spec update asked again")
	}
	s.wantWeights(map[string]int32{"v2": 100, "v1": 0})
	if got := strings.Join(s.historyTypes(), ","); got != "Started,Promoted" {
		t.Fatalf("history %s", got)
	}
}

func TestRestartResumesSameStep(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	// A new process reads the status back (through JSON, as from the API
	// server) and reconciles 20s later: same step, same weights, no history.
	saved := s.r.DeepCopy()
	s.clk.Step(20 * time.Second)
	d := s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
	if len(d.Events) != 0 || len(s.r.Status.History) != len(saved.Status.History) {
		t.Fatalf("restart emitted %v / history %v", d.Events, s.historyTypes())
	}
	if d.RequeueAfter != 40*time.Second {
		t.Fatalf("requeue %v, want the rest of the step (40s)", d.RequeueAfter)
	}
	// Crash after the VirtualService write of the next step but before the
	// status write: the retry writes the same weights and one history entry.
	s.clk.Step(40 * time.Second)
	d1 := Decide(saved, Observed{Now: s.clk.Now(), RouteWeights: map[string]map[string]int32{"predict": {"v1": 50, "v2": 50}}, ReadyPods: s.ready})
	if !router.WeightsEqual(toMap(d1.Weights), map[string]int32{"v1": 50, "v2": 50}) || len(d1.Status.History) != len(saved.Status.History)+1 {
		t.Fatalf("retry after crash: weights %v history %d", d1.Weights, len(d1.Status.History))
	}
	for _, e := range d1.Events {
		if e.Reason == ReasonWeightDriftReverted {
			t.Fatal("own write taken for drift")
		}
	}
}

func TestHistoryIsBounded(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	for i := 0; i < 150; i++ {
		a := v1alpha1.IntentPause
		if i%2 == 1 {
			a = v1alpha1.IntentResume
		}
		s.intent("i"+string(rune('a'+i%26))+strings.Repeat("x", i/26), a)
		s.reconcile(nil)
	}
	if len(s.r.Status.History) != MaxHistory || s.r.Status.HistoryDropped != 51 {
		t.Fatalf("history %d dropped %d", len(s.r.Status.History), s.r.Status.HistoryDropped)
	}
}

func TestStableEditedDirectly(t *testing.T) {
	s := newSim(t)
	s.reconcile(nil)
	s.r.Spec.Stable = "v3"
	s.ready["v3"] = 0
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	s.ready["v3"] = 3
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v3": 100, "v1": 0, "v2": 0})
	s.wantEvent(ReasonStableChanged)
}

func TestDesiredSubsets(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.r.Status.Weights = []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 90}, {Subset: "v0", Weight: 10}, {Subset: "v9", Weight: 0}}
	got := strings.Join(DesiredSubsets(s.r), ",")
	if got != "v1,v2,v0" {
		t.Fatalf("DesiredSubsets = %s", got)
	}
}
