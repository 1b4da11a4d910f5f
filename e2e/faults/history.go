package faults

import (
	"fmt"
	"reflect"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// HistoryProblems compares a rollout's history before a fault with the
// history after it and lists what breaks the history invariant of
// docs/reliability.md, one message each:
//
//   - lost or rewritten: every entry recorded before is still there,
//     unchanged and in place (unless the cap dropped it, which
//     status.historyDropped counts);
//   - duplicated: no entry added since repeats, in everything but its time,
//     another one added since or the last one before (a decision recorded
//     twice, as a replayed reconcile would);
//   - an intent in two entries: each intent id appears in one entry only
//     (applied, ignored or superseded, once).
func HistoryProblems(before, after v1alpha1.ModelRolloutStatus) []string {
	var out []string
	shift := int(after.HistoryDropped - before.HistoryDropped)
	if shift < 0 {
		out = append(out, fmt.Sprintf("historyDropped went down from %d to %d", before.HistoryDropped, after.HistoryDropped))
		shift = 0
	}
	for i, h := range before.History {
		j := i - shift
		switch {
		case j < 0:
			continue // dropped by the cap, and counted
		case j >= len(after.History):
			out = append(out, fmt.Sprintf("entry %d (%s) was lost", i, describe(h)))
		case !reflect.DeepEqual(h, after.History[j]):
			out = append(out, fmt.Sprintf("entry %d was rewritten: %s became %s", i, describe(h), describe(after.History[j])))
		}
	}
	first := len(before.History) - shift
	if first < 0 {
		first = 0
	}
	if first <= len(after.History) {
		added := after.History[first:]
		var seen []v1alpha1.HistoryEntry
		if first > 0 {
			seen = append(seen, after.History[first-1])
		}
		for _, h := range added {
			for _, s := range seen {
				if sameButTime(h, s) {
					out = append(out, fmt.Sprintf("duplicated entry: %s", describe(h)))
					break
				}
			}
			seen = append(seen, h)
		}
	}
	ids := map[string]int{}
	for _, h := range after.History {
		if h.IntentID != "" {
			ids[h.IntentID]++
		}
	}
	for _, h := range after.History {
		if n := ids[h.IntentID]; n > 1 {
			out = append(out, fmt.Sprintf("intent %s appears in %d entries", h.IntentID, n))
			ids[h.IntentID] = 0 // once per id
		}
	}
	return out
}

func sameButTime(a, b v1alpha1.HistoryEntry) bool {
	a.Time = b.Time
	return reflect.DeepEqual(a, b)
}

func describe(h v1alpha1.HistoryEntry) string {
	s := fmt.Sprintf("%s %s→%s by %s at %s", h.Type, h.From, h.To, h.Actor, h.Time.UTC().Format("15:04:05"))
	if h.IntentID != "" {
		s += " intent " + h.IntentID
	}
	if h.Reason != "" {
		s += fmt.Sprintf(" (%q)", h.Reason)
	}
	return s
}
