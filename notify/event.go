package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Event is one history entry of a rollout, with what a person needs to act
// on it. Its JSON form is the data of the webhook's CloudEvent.
type Event struct {
	// ID identifies the history entry: the same entry read twice (after a
	// restart, or from a stale cache) has the same ID, and is delivered
	// once per sink.
	ID string `json:"id"`

	Namespace string    `json:"namespace"`
	Rollout   string    `json:"rollout"`
	UID       types.UID `json:"uid"`
	// Labels of the ModelRollout, for Notifiers' rolloutSelector.
	Labels map[string]string `json:"-"`

	// Type is the history entry's type (Started, RolledBack, ...).
	Type     string            `json:"type"`
	Severity v1alpha1.Severity `json:"severity"`
	Time     time.Time         `json:"time"`
	From     v1alpha1.Phase    `json:"from,omitempty"`
	To       v1alpha1.Phase    `json:"to,omitempty"`

	// Stable and Candidate are the versions (subsets) as the rollout names
	// them when the event is built: after a promotion, Stable is the
	// promoted version.
	Stable    string `json:"stable"`
	Candidate string `json:"candidate,omitempty"`
	// Step is the index into spec.strategy.canary.steps after the entry
	// (0 is the first step), when progressing or paused.
	Step    *int32                  `json:"step,omitempty"`
	Weights []v1alpha1.SubsetWeight `json:"weights,omitempty"`

	Actor    string `json:"actor,omitempty"`
	Reason   string `json:"reason,omitempty"`
	IntentID string `json:"intentID,omitempty"`

	// Verdict is the analysis round that decided, for the controller's own
	// rollbacks, pauses and advances while the round is still in status.
	Verdict *Verdict `json:"verdict,omitempty"`
	// Outcome of an experiment, on ExperimentEnded.
	Outcome v1alpha1.ExperimentOutcome `json:"outcome,omitempty"`

	// DashboardURL links to the rollout's page; the Dispatcher fills it
	// from its Config.DashboardURL.
	DashboardURL string `json:"dashboardURL,omitempty"`
}

// Verdict is an analysis round's verdict with the evidence of the metrics
// that gave it.
type Verdict struct {
	Verdict v1alpha1.Verdict `json:"verdict"`
	Time    time.Time        `json:"time"`
	Step    int32            `json:"step"`
	Metrics []MetricVerdict  `json:"metrics,omitempty"`
}

// MetricVerdict is one metric's verdict and numbers
// (status.analysis.recentRounds[].metrics[]).
type MetricVerdict struct {
	Metric  string           `json:"metric"`
	Verdict v1alpha1.Verdict `json:"verdict"`
	// Value on the candidate, Baseline on stable.
	Value    *float64 `json:"value,omitempty"`
	Baseline *float64 `json:"baseline,omitempty"`
	// Bound is the bound the judge applied, for example "<= 300".
	Bound            string   `json:"bound,omitempty"`
	CandidateSamples int64    `json:"candidateSamples,omitempty"`
	BaselineSamples  int64    `json:"baselineSamples,omitempty"`
	PValue           *float64 `json:"pValue,omitempty"`
	Message          string   `json:"message,omitempty"`
}

// actorController is the actor of the controller's own decisions
// (controller/rollout.ActorController; a test keeps them equal).
const actorController = "fulcrum"

// maxVerdictMetrics bounds the metrics an event carries: a Slack section
// holds ten fields.
const maxVerdictMetrics = 8

// decidedByAnalysis are the entry types an analysis round can cause.
var decidedByAnalysis = map[string]bool{
	v1alpha1.HistoryRolledBack:   true,
	v1alpha1.HistoryPaused:       true,
	v1alpha1.HistoryStepAdvanced: true,
	v1alpha1.HistoryPromoted:     true,
	v1alpha1.HistoryShadowPassed: true,
}

// NewEvent builds the event of history entry h of rollout mr. It reads
// only what mr carries; call it with the rollout as written with h (after
// the status update that added h), so that the deciding analysis round is
// still in status.
func NewEvent(mr *v1alpha1.ModelRollout, h v1alpha1.HistoryEntry) Event {
	st := &mr.Status
	candidate := st.Candidate
	if candidate == "" {
		candidate = mr.Spec.Candidate
	}
	var outcome v1alpha1.ExperimentOutcome
	if h.Type == v1alpha1.HistoryExperimentEnded && st.Experiment != nil {
		outcome = st.Experiment.Outcome
	}
	ev := Event{
		ID:        EntryID(mr.UID, h),
		Namespace: mr.Namespace,
		Rollout:   mr.Name,
		UID:       mr.UID,
		Labels:    maps.Clone(mr.Labels),
		Type:      h.Type,
		Severity:  SeverityOf(h.Type, outcome),
		Time:      h.Time.UTC(),
		From:      h.From,
		To:        h.To,
		Stable:    mr.Spec.Stable,
		Candidate: candidate,
		Weights:   slices.Clone(h.Weights),
		Actor:     h.Actor,
		Reason:    h.Reason,
		IntentID:  h.IntentID,
		Outcome:   outcome,
		Verdict:   decidingRound(mr, h),
	}
	if h.Step != nil {
		s := *h.Step
		ev.Step = &s
	}
	return ev
}

// EntryID identifies history entry h of the rollout with uid: the same
// entry has the same ID however often it is read. The time counts in whole
// seconds, as the API server stores it, so an entry built in memory and the
// same entry read back agree.
func EntryID(uid types.UID, h v1alpha1.HistoryEntry) string {
	step := ""
	if h.Step != nil {
		step = fmt.Sprint(*h.Step)
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%s\x00%s\x00%s\x00%s", uid, h.Time.Unix(), h.Type, h.From, h.To, step))
	return hex.EncodeToString(sum[:16])
}

// decidingRound is the analysis round behind a decision the controller
// took on its own (no intent, actor fulcrum): the latest round at or
// before the entry, of the current rollout.
func decidingRound(mr *v1alpha1.ModelRollout, h v1alpha1.HistoryEntry) *Verdict {
	a := mr.Status.Analysis
	if !decidedByAnalysis[h.Type] || h.Actor != actorController || h.IntentID != "" || a == nil {
		return nil
	}
	for i := len(a.RecentRounds) - 1; i >= 0; i-- {
		r := a.RecentRounds[i]
		if r.Time.After(h.Time.Time) {
			continue
		}
		if started := mr.Status.RolloutStartedAt; started != nil && r.Time.Before(started) {
			return nil
		}
		v := &Verdict{Verdict: r.Verdict, Time: r.Time.UTC(), Step: r.Step}
		for _, m := range r.Metrics {
			if m.Verdict != r.Verdict || len(v.Metrics) == maxVerdictMetrics {
				continue
			}
			v.Metrics = append(v.Metrics, MetricVerdict{
				Metric: m.Name, Verdict: m.Verdict, Value: m.Value, Baseline: m.Baseline, Bound: m.Threshold,
				CandidateSamples: m.CandidateSamples, BaselineSamples: m.BaselineSamples, PValue: m.PValue,
				Message: m.Message,
			})
		}
		return v
	}
	return nil
}

// DashboardLink is the dashboard's page of rollout namespace/name under
// base (the admin API's external address): the dashboard routes by the
// fragment, #/rollouts/NAMESPACE/NAME. Empty when base is.
func DashboardLink(base, namespace, name string) string {
	if base == "" {
		return ""
	}
	return strings.TrimSuffix(base, "/") + "/#/rollouts/" + url.PathEscape(namespace) + "/" + url.PathEscape(name)
}

// key is namespace/name, as logs and maps name a rollout.
func (ev *Event) key() string { return ev.Namespace + "/" + ev.Rollout }
