package notify

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Alertmanager's API v2 takes a list of alerts (POST /api/v2/alerts). An
// alert is known by its labels: the same labels with an endsAt in the past
// resolve it. Fulcrum's labels are alertname, namespace, rollout and
// severity, plus the sink's own, so a later event can resolve an alert
// without remembering it (and so across controller restarts).
const alertmanagerPath = "/api/v2/alerts"

type alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// resolvedBy says which later entry types end a state alert: a rollback
// alert fires until the next promotion, a failed rollout's until it
// recovers (or is promoted), a pause's until the rollout moves on.
var resolvedBy = map[string][]string{
	v1alpha1.HistoryRolledBack: {v1alpha1.HistoryPromoted},
	v1alpha1.HistoryFailed:     {v1alpha1.HistoryRecovered, v1alpha1.HistoryPromoted},
	v1alpha1.HistoryPaused: {v1alpha1.HistoryResumed, v1alpha1.HistoryPromoted, v1alpha1.HistoryRolledBack,
		v1alpha1.HistoryManualSplit},
}

const (
	// defaultResolveAfter bounds a state alert nothing resolves.
	defaultResolveAfter = 24 * time.Hour
	// oneOffAlertDuration is how long the alert of a one-off event fires
	// (an ignored request, traffic moved off a version).
	oneOffAlertDuration = 15 * time.Minute
)

// AlertName is the alertname of entries of type typ.
func AlertName(typ string) string { return "FulcrumRollout" + typ }

// alertmanagerAlerts are the alerts event ev sends to sink: an alert that
// fires for a Warning or Critical event the filter wants, and a resolved
// alert for each state alert the event ends (when the filter wants that
// alert). None: the sink has nothing to do with ev.
func alertmanagerAlerts(ev *Event, sink *v1alpha1.AlertmanagerSink, wants func(typ string, sev v1alpha1.Severity) bool) []alert {
	var out []alert
	if rank(ev.Severity) >= rank(v1alpha1.SeverityWarning) && wants(ev.Type, ev.Severity) {
		d := oneOffAlertDuration
		if _, state := resolvedBy[ev.Type]; state {
			d = defaultResolveAfter
			if sink.ResolveAfter != nil {
				d = sink.ResolveAfter.Duration
			}
		}
		annotations := map[string]string{"summary": Headline(ev), "description": description(ev)}
		for k, v := range map[string]string{"candidate": ev.Candidate, "stable": ev.Stable, "actor": ev.Actor} {
			if v != "" {
				annotations[k] = v
			}
		}
		out = append(out, alert{
			Labels: alertLabels(ev, ev.Type, ev.Severity, sink), Annotations: annotations,
			StartsAt: ev.Time, EndsAt: ev.Time.Add(d), GeneratorURL: ev.DashboardURL,
		})
	}
	for _, typ := range slices.Sorted(maps.Keys(resolvedBy)) {
		sev := severities[typ]
		if !slices.Contains(resolvedBy[typ], ev.Type) || !wants(typ, sev) {
			continue
		}
		// startsAt = endsAt: Alertmanager keeps the firing alert's earlier
		// start, and refuses an end before the start.
		out = append(out, alert{
			Labels:      alertLabels(ev, typ, sev, sink),
			Annotations: map[string]string{"summary": ev.key() + ": " + typ + " alert resolved: " + what(ev)},
			StartsAt:    ev.Time, EndsAt: ev.Time, GeneratorURL: ev.DashboardURL,
		})
	}
	return out
}

func alertLabels(ev *Event, typ string, sev v1alpha1.Severity, sink *v1alpha1.AlertmanagerSink) map[string]string {
	l := maps.Clone(sink.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l["alertname"] = AlertName(typ)
	l["namespace"] = ev.Namespace
	l["rollout"] = ev.Rollout
	l["severity"] = strings.ToLower(string(sev))
	return l
}

func alertmanagerBody(ev *Event, sink *v1alpha1.AlertmanagerSink, wants func(string, v1alpha1.Severity) bool) ([]byte, error) {
	alerts := alertmanagerAlerts(ev, sink, wants)
	if len(alerts) == 0 {
		return nil, nil
	}
	return marshal(alerts)
}
