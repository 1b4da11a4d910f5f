package notify

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// The words every format shares: a headline, and facts as label and value.

// Headline says in one line what happened to which rollout.
func Headline(ev *Event) string {
	return ev.key() + ": " + what(ev)
}

func what(ev *Event) string {
	c, s := orDash(ev.Candidate), orDash(ev.Stable)
	switch ev.Type {
	case v1alpha1.HistoryStarted:
		return "rollout of " + c + " started"
	case v1alpha1.HistoryStepAdvanced:
		if ev.Step != nil {
			return fmt.Sprintf("%s advanced to step %d (%d%%)", c, *ev.Step+1, weightOf(ev.Weights, ev.Candidate))
		}
		return c + " advanced a step"
	case v1alpha1.HistoryPaused:
		if ev.Step != nil {
			return fmt.Sprintf("rollout of %s paused at step %d", c, *ev.Step+1)
		}
		return "rollout of " + c + " paused"
	case v1alpha1.HistoryResumed:
		return "rollout of " + c + " resumed"
	case v1alpha1.HistoryManualSplit:
		return "weights pinned to " + formatWeights(ev.Weights)
	case v1alpha1.HistoryPromoted:
		return c + " promoted to stable"
	case v1alpha1.HistoryRolledBack:
		return c + " rolled back; " + s + " serves 100%"
	case v1alpha1.HistoryFailed:
		return "rollout cannot proceed"
	case v1alpha1.HistoryRecovered:
		return "rollout recovered"
	case v1alpha1.HistoryStableChanged:
		return "stable set to " + s
	case v1alpha1.HistoryIntentIgnored:
		return "a request was ignored"
	case v1alpha1.HistoryIntentSuperseded:
		return "a pending request was superseded"
	case v1alpha1.HistoryAdopted:
		return "existing split adopted: " + formatWeights(ev.Weights)
	case v1alpha1.HistoryTrafficRestored:
		return "traffic moved back to " + s
	case v1alpha1.HistoryShadowPassed:
		return c + " passed its shadow stage"
	case v1alpha1.HistoryWarm:
		return c + " is warm"
	case v1alpha1.HistoryExperimentEnded:
		if ev.Outcome != "" {
			return "experiment ended: " + string(ev.Outcome)
		}
		return "experiment ended"
	case v1alpha1.HistoryScaledUp:
		return "scaled up ahead of a step"
	case v1alpha1.HistoryScaledDown:
		return "previous version scaled down"
	case v1alpha1.HistoryScaleRestored:
		return "scaling put back"
	case v1alpha1.HistoryScaleDownCancelled:
		return "scale-down cancelled"
	}
	return ev.Type
}

// fact is one labelled value of a message.
type fact struct{ label, value string }

// facts are the event's details, in the order every format shows them.
func facts(ev *Event) []fact {
	out := []fact{{"Stable", orDash(ev.Stable)}, {"Candidate", orDash(ev.Candidate)}}
	if ev.From != "" || ev.To != "" {
		out = append(out, fact{"Phase", string(ev.From) + " → " + string(ev.To)})
	}
	if ev.Step != nil {
		out = append(out, fact{"Step", strconv.Itoa(int(*ev.Step) + 1)})
	}
	if len(ev.Weights) > 0 {
		out = append(out, fact{"Weights", formatWeights(ev.Weights)})
	}
	if ev.Actor != "" {
		out = append(out, fact{"Actor", ev.Actor})
	}
	return out
}

// verdictFacts are one fact per metric of the deciding round.
func verdictFacts(v *Verdict) []fact {
	if v == nil {
		return nil
	}
	out := make([]fact, 0, len(v.Metrics))
	for _, m := range v.Metrics {
		out = append(out, fact{m.Metric + " (" + string(m.Verdict) + ")", evidence(m)})
	}
	return out
}

// evidence says a metric's numbers in one line: "value 0.021, baseline
// 0.005, bound <= 0.01, samples 812 / 15230".
func evidence(m MetricVerdict) string {
	var parts []string
	if m.Value != nil {
		parts = append(parts, "value "+formatFloat(*m.Value))
	}
	if m.Baseline != nil {
		parts = append(parts, "baseline "+formatFloat(*m.Baseline))
	}
	if m.Bound != "" {
		parts = append(parts, "bound "+m.Bound)
	}
	if m.CandidateSamples > 0 || m.BaselineSamples > 0 {
		parts = append(parts, fmt.Sprintf("samples %d / %d", m.CandidateSamples, m.BaselineSamples))
	}
	if m.PValue != nil {
		parts = append(parts, "p "+formatFloat(*m.PValue))
	}
	if len(parts) == 0 {
		return orDash(m.Message)
	}
	return strings.Join(parts, ", ")
}

// description is the reason and the verdict as plain text lines.
func description(ev *Event) string {
	var b strings.Builder
	if ev.Reason != "" {
		b.WriteString(ev.Reason)
	}
	if v := ev.Verdict; v != nil {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(verdictTitle(v))
		for _, f := range verdictFacts(v) {
			fmt.Fprintf(&b, "\n%s: %s", f.label, f.value)
		}
	}
	return b.String()
}

// verdictTitle names a round: "Analysis at step 3: Fail".
func verdictTitle(v *Verdict) string {
	return fmt.Sprintf("Analysis at step %d: %s", v.Step+1, v.Verdict)
}

func formatWeights(ws []v1alpha1.SubsetWeight) string {
	if len(ws) == 0 {
		return "-"
	}
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = fmt.Sprintf("%s %d%%", w.Subset, w.Weight)
	}
	return strings.Join(parts, ", ")
}

func weightOf(ws []v1alpha1.SubsetWeight, subset string) int32 {
	for _, w := range ws {
		if w.Subset == subset {
			return w.Weight
		}
	}
	return 0
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
