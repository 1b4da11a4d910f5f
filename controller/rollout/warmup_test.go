package rollout

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func withWarmup(eachStep bool) func(*v1alpha1.ModelRollout) {
	return func(r *v1alpha1.ModelRollout) {
		r.Spec.Readiness.Warmup = &v1alpha1.WarmupGate{
			MaxP99: metav1.Duration{Duration: 200 * time.Millisecond}, MinRequests: 20, EachStep: eachStep,
			Timeout: metav1.Duration{Duration: 2 * time.Minute},
		}
		r.Spec.Strategy.Canary.Steps = []int32{20, 50, 100}
	}
}

// A cold candidate gets no user until its p99 meets the objective on enough
// requests; then the first step is written in the same reconcile, and
// history says what the gate saw.
func TestWarmupHoldsTheFirstStepUntilWarm(t *testing.T) {
	s := newSim(t, withWarmup(false))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	s.wantWaiting(t, "warm-up: v2's latency was not read yet")
	if s.last.RequeueAfter != warmupRecheck {
		t.Fatalf("requeue after %s, want %s", s.last.RequeueAfter, warmupRecheck)
	}

	s.warmth = &Warmth{P99: 1800, Requests: 40, Sent: 40}
	s.clk.Step(5 * time.Second)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	s.wantWaiting(t, "v2's p99 over the last 1m0s is 1800 ms on 40 requests, above 200ms (spec.readiness.warmup.maxP99)")
	ws := s.r.Status.Warmup
	if ws == nil || ws.P99Milliseconds == nil || *ws.P99Milliseconds != 1800 || ws.Sent != 40 || ws.Weight != 20 {
		t.Fatalf("status.warmup %+v", ws)
	}

	s.warmth = &Warmth{P99: 150, Requests: 10}
	s.clk.Step(5 * time.Second)
	s.reconcile(nil)
	s.wantWaiting(t, "v2 answered 10 request(s) in the last 1m0s, needs 20")

	s.warmth = &Warmth{P99: 150, Requests: 300}
	s.clk.Step(5 * time.Second)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})
	if s.r.Status.Warmup != nil {
		t.Fatalf("status.warmup %+v after the gate passed", s.r.Status.Warmup)
	}
	e := s.wantEvent(ReasonWarm)
	if !strings.Contains(e.Message, "v2 is warm: p99 150 ms over the last 1m0s on 300 requests, within 200ms") {
		t.Fatalf("event %q", e.Message)
	}
	if h := s.historyTypes(); !slices.Contains(h, HistoryWarm) {
		t.Fatalf("history %v", h)
	}

	// Without eachStep, later steps do not wait for warmth.
	s.warmth = &Warmth{P99: 5000, Requests: 300}
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
}

// With eachStep, every increase waits, including the promotion.
func TestWarmupEachStep(t *testing.T) {
	s := newSim(t, withWarmup(true))
	s.r.Spec.Candidate = "v2"
	s.warmth = &Warmth{P99: 100, Requests: 100}
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})

	s.warmth = &Warmth{P99: 900, Requests: 100}
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})
	s.wantWaiting(t, "above 200ms")
	if ws := s.r.Status.Warmup; ws == nil || ws.Weight != 50 {
		t.Fatalf("status.warmup %+v, want the gate holding 50%%", ws)
	}
	s.warmth = &Warmth{P99: 100, Requests: 100}
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})

	s.warmth = &Warmth{P99: 900, Requests: 100}
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
	s.warmth = &Warmth{P99: 100, Requests: 100}
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePromoted)
}

// Never warm: at the timeout the rollout rolls back, the candidate having
// served no user; an unreadable latency holds like a slow one.
func TestWarmupTimeoutRollsBack(t *testing.T) {
	s := newSim(t, withWarmup(false))
	s.r.Spec.Candidate = "v2"
	s.warmth = &Warmth{Problem: "Prometheus unreachable", P99: math.NaN()}
	s.reconcile(nil)
	s.wantWaiting(t, "v2's latency cannot be read: Prometheus unreachable")
	s.warmth = &Warmth{P99: math.NaN(), Requests: 0}
	for i := 0; i < 23; i++ {
		s.clk.Step(5 * time.Second)
		s.reconcile(nil)
		s.wantPhase(v1alpha1.PhaseProgressing)
	}
	s.clk.Step(5 * time.Second)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseRolledBack)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	last := s.r.Status.History[len(s.r.Status.History)-1]
	if !strings.Contains(last.Reason, "v2 was not warm after 2m0s (spec.readiness.warmup.timeout) and served no user at 20%") {
		t.Fatalf("history reason %q", last.Reason)
	}
	if s.r.Status.Warmup != nil {
		t.Fatalf("status.warmup %+v after the rollback", s.r.Status.Warmup)
	}
}

// A rollback while the gate holds needs no warmth, and leaves no gate.
func TestWarmupNeverHoldsARollback(t *testing.T) {
	s := newSim(t, withWarmup(false))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.intent("rb", v1alpha1.IntentRollback)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseRolledBack)
	if s.r.Status.Warmup != nil {
		t.Fatalf("status.warmup %+v after the rollback", s.r.Status.Warmup)
	}
	if WarmupSending(s.r, &s.r.Status) != nil {
		t.Fatal("warm-up requests still wanted after the rollback")
	}
}

// The latency is read only while the gate can still hold: without
// eachStep, not once the candidate serves users.
func TestWarmupSubsetOnlyWhileTheGateCanHold(t *testing.T) {
	s := newSim(t, withWarmup(false))
	s.r.Spec.Candidate = "v2"
	if got := WarmupSubset(s.r); got != "v2" {
		t.Fatalf("before the start: %q, want v2", got)
	}
	s.warmth = &Warmth{P99: 100, Requests: 100}
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20})
	if got := WarmupSubset(s.r); got != "" {
		t.Fatalf("at 20%% without eachStep: %q, want none", got)
	}
	s.r.Spec.Readiness.Warmup.EachStep = true
	if got := WarmupSubset(s.r); got != "v2" {
		t.Fatalf("at 20%% with eachStep: %q, want v2", got)
	}
}
