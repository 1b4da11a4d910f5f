package notify

import (
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// severities is the severity of each history entry type. A rollback or a
// rollout that cannot proceed needs someone now (Critical); a rollout that
// waits for a person, a request that was not applied, or traffic taken off
// a version that lost its pods needs a look (Warning); the rest is news.
// TestEveryHistoryTypeHasASeverity keeps this table complete.
var severities = map[string]v1alpha1.Severity{
	v1alpha1.HistoryStarted:            v1alpha1.SeverityInfo,
	v1alpha1.HistoryStepAdvanced:       v1alpha1.SeverityInfo,
	v1alpha1.HistoryPaused:             v1alpha1.SeverityWarning,
	v1alpha1.HistoryResumed:            v1alpha1.SeverityInfo,
	v1alpha1.HistoryManualSplit:        v1alpha1.SeverityInfo,
	v1alpha1.HistoryPromoted:           v1alpha1.SeverityInfo,
	v1alpha1.HistoryRolledBack:         v1alpha1.SeverityCritical,
	v1alpha1.HistoryFailed:             v1alpha1.SeverityCritical,
	v1alpha1.HistoryRecovered:          v1alpha1.SeverityInfo,
	v1alpha1.HistoryStableChanged:      v1alpha1.SeverityInfo,
	v1alpha1.HistoryIntentIgnored:      v1alpha1.SeverityWarning,
	v1alpha1.HistoryIntentSuperseded:   v1alpha1.SeverityInfo,
	v1alpha1.HistoryAdopted:            v1alpha1.SeverityInfo,
	v1alpha1.HistoryTrafficRestored:    v1alpha1.SeverityWarning,
	v1alpha1.HistoryShadowPassed:       v1alpha1.SeverityInfo,
	v1alpha1.HistoryWarm:               v1alpha1.SeverityInfo,
	v1alpha1.HistoryExperimentEnded:    v1alpha1.SeverityInfo, // Warning when Stopped, see SeverityOf
	v1alpha1.HistoryScaledUp:           v1alpha1.SeverityInfo,
	v1alpha1.HistoryScaledDown:         v1alpha1.SeverityInfo,
	v1alpha1.HistoryScaleRestored:      v1alpha1.SeverityInfo,
	v1alpha1.HistoryScaleDownCancelled: v1alpha1.SeverityInfo,
	// A person is needed (approval) or a gate stopped the rollout (its
	// RolledBack entry is Critical on its own).
	v1alpha1.HistoryApprovalPending: v1alpha1.SeverityWarning,
	v1alpha1.HistoryApproved:        v1alpha1.SeverityInfo,
	v1alpha1.HistoryGatePassed:      v1alpha1.SeverityInfo,
	v1alpha1.HistoryGateFailed:      v1alpha1.SeverityWarning,
}

// SeverityOf is the severity of a history entry of type typ. An experiment
// that ended Stopped (a person rolled it back, or a guardrail failed) is a
// Warning; a type this table does not know is Info.
func SeverityOf(typ string, outcome v1alpha1.ExperimentOutcome) v1alpha1.Severity {
	if typ == v1alpha1.HistoryExperimentEnded && outcome == v1alpha1.ExperimentStopped {
		return v1alpha1.SeverityWarning
	}
	if s, ok := severities[typ]; ok {
		return s
	}
	return v1alpha1.SeverityInfo
}

// rank orders severities; an empty or unknown one ranks as Info.
func rank(s v1alpha1.Severity) int {
	switch s {
	case v1alpha1.SeverityCritical:
		return 2
	case v1alpha1.SeverityWarning:
		return 1
	}
	return 0
}
