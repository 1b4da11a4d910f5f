package dashboard_test

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fulcrumv1 "github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func at(t time.Time) metav1.Time   { return metav1.NewTime(t) }
func atp(t time.Time) *metav1.Time { return ptr(metav1.NewTime(t)) }

// fixtures are rollouts in every phase, with enough history and analysis to
// fill the rollout page.
func fixtures(now time.Time) []*fulcrumv1.ModelRollout {
	min := func(m int) time.Time { return now.Add(time.Duration(-m) * time.Minute) }

	fraud := rollout("ml", "fraud", "v1", "v2", fulcrumv1.PhaseProgressing, min(60*26))
	fraud.Status.Weights = weights("v1", 95, "v2", 5)
	fraud.Status.CandidateWeight = 5
	fraud.Status.Step = ptr(int32(1))
	fraud.Status.StepStartedAt = atp(min(14))
	fraud.Status.RolloutStartedAt = atp(min(20))
	fraud.Status.Message = "Step 2 of 5 (5%): error-rate needs about 180 more candidate requests for a verdict"
	fraud.Status.History = []fulcrumv1.HistoryEntry{
		{Time: at(min(60 * 25)), Type: "Promoted", From: fulcrumv1.PhaseProgressing, To: fulcrumv1.PhasePromoted, Weights: weights("v1", 100), Actor: "fulcrum", Reason: "all steps passed"},
		{Time: at(min(20)), Type: "Started", From: fulcrumv1.PhaseStable, To: fulcrumv1.PhaseProgressing, Step: ptr(int32(0)), Weights: weights("v1", 99, "v2", 1), Actor: "alice@example.com", Reason: "release 2.3: retrained on October data", IntentID: "a1"},
		{Time: at(min(14)), Type: "StepAdvanced", From: fulcrumv1.PhaseProgressing, To: fulcrumv1.PhaseProgressing, Step: ptr(int32(1)), Weights: weights("v1", 95, "v2", 5), Actor: "fulcrum", Reason: "round passed: error-rate, latency-p99, prediction-drift"},
	}
	round := func(m int, verdict fulcrumv1.Verdict, errMsg string, errVerdict fulcrumv1.Verdict, cand int64) fulcrumv1.AnalysisRound {
		return fulcrumv1.AnalysisRound{Time: at(min(m)), Step: 1, Verdict: verdict, Metrics: []fulcrumv1.MetricResult{
			{Name: "error-rate", Verdict: errVerdict, Value: ptr(0.0061), Baseline: ptr(0.0049), Threshold: "increase <= 0.005", CandidateSamples: cand, BaselineSamples: cand * 19, PValue: ptr(0.41), Lower: ptr(-0.0021), Upper: ptr(0.0043), SamplesNeeded: ptr(int64(180)), Message: errMsg},
			{Name: "latency-p99", Verdict: fulcrumv1.VerdictPass, Value: ptr(212.0), Baseline: ptr(205.0), Threshold: "<= 300", CandidateSamples: cand, BaselineSamples: cand * 19, Message: "212 ms is under 300 ms"},
			{Name: "prediction-drift", Verdict: fulcrumv1.VerdictPass, Value: ptr(0.04), Threshold: "PSI <= 0.2", CandidateSamples: cand, BaselineSamples: cand * 19, Message: "score distribution close to stable"},
		}}
	}
	fraud.Status.Analysis = &fulcrumv1.AnalysisStatus{
		Ran: true, Rounds: 3, ConsecutiveInconclusive: 2, LastRoundAt: atp(min(1)),
		RecentRounds: []fulcrumv1.AnalysisRound{
			round(13, fulcrumv1.VerdictPass, "no evidence of an increase", fulcrumv1.VerdictPass, 1200),
			round(7, fulcrumv1.VerdictInconclusive, "not enough evidence yet: 640 candidate requests", fulcrumv1.VerdictInconclusive, 640),
			round(1, fulcrumv1.VerdictInconclusive, "not enough evidence yet: 820 candidate requests", fulcrumv1.VerdictInconclusive, 820),
		},
	}
	fraud.Status.Conditions = []metav1.Condition{
		{Type: fulcrumv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Resolved", Message: "VirtualService fraud route predict and subsets v1, v2 found"},
		{Type: fulcrumv1.ConditionAnalysis, Status: metav1.ConditionUnknown, Reason: "Inconclusive", Message: "error-rate: not enough evidence yet"},
	}

	ranker := rollout("ml", "ranker", "v3", "", fulcrumv1.PhaseStable, min(60*24*9))
	ranker.Status.Weights = weights("v3", 100)
	ranker.Status.Message = "v3 serves all traffic"

	search := rollout("ml", "search", "v1", "v2", fulcrumv1.PhaseRolledBack, min(60*24*3))
	search.Status.Weights = weights("v1", 100, "v2", 0)
	search.Status.Message = "rolled back: error-rate failed 2 rounds (2.1% vs 0.5%)"
	search.Status.History = []fulcrumv1.HistoryEntry{
		{Time: at(min(50)), Type: "Started", To: fulcrumv1.PhaseProgressing, Step: ptr(int32(0)), Weights: weights("v1", 99, "v2", 1), Actor: "ci-pipeline", Reason: "commit 4f2a9c1"},
		{Time: at(min(44)), Type: "StepAdvanced", To: fulcrumv1.PhaseProgressing, Step: ptr(int32(1)), Weights: weights("v1", 95, "v2", 5), Actor: "fulcrum", Reason: "round passed"},
		{Time: at(min(41)), Type: "RolledBack", From: fulcrumv1.PhaseProgressing, To: fulcrumv1.PhaseRolledBack, Weights: weights("v1", 100, "v2", 0), Actor: "fulcrum", Reason: "error-rate failed 2 rounds in a row"},
	}

	churn := rollout("team-b", "churn", "v1", "v2", fulcrumv1.PhaseManualSplit, min(60*24*30))
	churn.Status.Weights = weights("v1", 50, "v2", 30, "v3", 20)
	churn.Status.Message = "weights pinned by bob@example.com"
	churn.Status.History = []fulcrumv1.HistoryEntry{
		{Time: at(min(90)), Type: "Split", From: fulcrumv1.PhaseStable, To: fulcrumv1.PhaseManualSplit, Weights: weights("v1", 50, "v2", 30, "v3", 20), Actor: "bob@example.com", Reason: "A/B/n test of three feature sets"},
	}

	pricing := rollout("team-b", "pricing", "v7", "v8", fulcrumv1.PhasePaused, min(60*24*2))
	pricing.Status.Weights = weights("v7", 75, "v8", 25)
	pricing.Status.Step = ptr(int32(2))
	pricing.Status.StepStartedAt = atp(min(70))
	pricing.Status.Message = "paused: 10 inconclusive rounds in a row (inconclusiveLimit); traffic is low, resume or split by hand"

	ocr := rollout("team-c", "ocr", "v4", "v5", fulcrumv1.PhaseFailed, min(30))
	ocr.Status.Weights = weights("v4", 100)
	ocr.Status.Message = "DestinationRule ocr has no subset v5: add it or fix spec.candidate"

	return []*fulcrumv1.ModelRollout{fraud, ranker, search, churn, pricing, ocr, recsExperiment(now)}
}
