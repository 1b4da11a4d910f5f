package notify

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// The rollout of the examples: fraud in ml, v2 rolled back by a failed
// sequential test at its third step. The docs' examples are built from it.

var (
	t0         = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	rollbackAt = t0.Add(7 * time.Minute)
)

// rolloutBuilder makes ModelRollouts for tests.
type rolloutBuilder struct{ mr *v1alpha1.ModelRollout }

func aRollout() rolloutBuilder {
	return rolloutBuilder{&v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "fraud", UID: "6f1c1e52-4d3b-4a8e-9a51-0c8a3c1d2b7e",
			Labels: map[string]string{"team": "risk"}},
		Spec: v1alpha1.ModelRolloutSpec{Stable: "v1", Candidate: "v2", DestinationRule: "fraud",
			VirtualService: &v1alpha1.VirtualServiceRef{Name: "fraud"}},
		Status: v1alpha1.ModelRolloutStatus{Phase: v1alpha1.PhaseProgressing, Candidate: "v2",
			RolloutStartedAt: &metav1.Time{Time: t0}},
	}}
}

// withRound adds an analysis round at time at, step step.
func (b rolloutBuilder) withRound(at time.Time, step int32, verdict v1alpha1.Verdict, metrics ...v1alpha1.MetricResult) rolloutBuilder {
	if b.mr.Status.Analysis == nil {
		b.mr.Status.Analysis = &v1alpha1.AnalysisStatus{Ran: true}
	}
	a := b.mr.Status.Analysis
	a.RecentRounds = append(a.RecentRounds, v1alpha1.AnalysisRound{Time: metav1.Time{Time: at}, Step: step, Verdict: verdict, Metrics: metrics})
	return b
}

func (b rolloutBuilder) build() *v1alpha1.ModelRollout { return b.mr }

var errorRateFail = v1alpha1.MetricResult{
	Name: "error-rate", Verdict: v1alpha1.VerdictFail, Value: ptr.To(0.021), Baseline: ptr.To(0.005),
	Threshold: "increase <= 0.005", CandidateSamples: 812, BaselineSamples: 15230, PValue: ptr.To(0.0008),
	Message: "error rate 2.1% vs 0.5% on stable",
}

var latencyPass = v1alpha1.MetricResult{
	Name: "latency-p99", Verdict: v1alpha1.VerdictPass, Value: ptr.To(182.0), Threshold: "<= 300", CandidateSamples: 812,
}

// rollbackEntry is the history entry of the example's rollback.
func rollbackEntry() v1alpha1.HistoryEntry {
	return v1alpha1.HistoryEntry{
		Time: metav1.Time{Time: rollbackAt}, Type: v1alpha1.HistoryRolledBack,
		From: v1alpha1.PhaseProgressing, To: v1alpha1.PhaseRolledBack,
		Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 100}, {Subset: "v2", Weight: 0}},
		Actor:   "fulcrum", Reason: "an always-valid sequential test failed: error-rate Fail",
	}
}

// rollbackEvent is the example event, with its dashboard link.
func rollbackEvent() Event {
	mr := aRollout().withRound(rollbackAt.Add(-time.Second), 2, v1alpha1.VerdictFail, errorRateFail, latencyPass).build()
	mr.Status.Phase = v1alpha1.PhaseRolledBack
	ev := NewEvent(mr, rollbackEntry())
	ev.DashboardURL = DashboardLink("https://fulcrum.example.com", ev.Namespace, ev.Rollout)
	return ev
}

// promotedEvent is the next rollout of the example, promoted.
func promotedEvent() Event {
	mr := aRollout().build()
	mr.Spec.Stable, mr.Spec.Candidate, mr.Status.Candidate = "v3", "", "v3"
	mr.Status.Phase = v1alpha1.PhasePromoted
	ev := NewEvent(mr, v1alpha1.HistoryEntry{
		Time: metav1.Time{Time: rollbackAt.Add(2 * time.Hour)}, Type: v1alpha1.HistoryPromoted,
		From: v1alpha1.PhaseProgressing, To: v1alpha1.PhasePromoted,
		Weights: []v1alpha1.SubsetWeight{{Subset: "v3", Weight: 100}},
		Actor:   "alice", Reason: "looks good on the dashboard", IntentID: "promote-7",
	})
	ev.DashboardURL = DashboardLink("https://fulcrum.example.com", ev.Namespace, ev.Rollout)
	return ev
}
