package intent

import (
	"fmt"
	"strings"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// prior is what an earlier intent asked for, as far as the rollout still
// tells: its action (empty when nothing says), the weights of a split, and
// the candidate of a start while the rollout still carries it.
type prior struct {
	action    v1alpha1.IntentAction
	weights   []v1alpha1.SubsetWeight
	candidate string
	gate      string
}

// current is the rollout's intent as a prior; a start's candidate is
// spec.candidate, which the start set (and promotion clears).
func current(mr *v1alpha1.ModelRollout) prior {
	in := mr.Spec.Intent
	if in == nil {
		return prior{}
	}
	p := prior{action: in.Action, weights: in.Weights, gate: in.Gate}
	if in.Action == v1alpha1.IntentStart {
		p.candidate = mr.Spec.Candidate
	}
	return p
}

// covers reports whether req asks for what p asked for, reason aside
// (retrying with a reworded reason is still the same action). What the
// rollout no longer tells (an action, a start's candidate) is taken to
// match: a request is never repeated on a guess.
func (p prior) covers(req Request) bool {
	if p.action == "" {
		return true
	}
	if p.action != req.Action {
		return false
	}
	switch req.Action {
	case v1alpha1.IntentSplit:
		return p.weights == nil || sameWeights(p.weights, req.Weights)
	case v1alpha1.IntentStart:
		return p.candidate == "" || p.candidate == req.Candidate
	case v1alpha1.IntentApprove:
		return req.Gate == "" || p.gate == "" || p.gate == req.Gate
	}
	return true
}

func (p prior) describe() string {
	switch {
	case p.action == "":
		return "another request"
	case p.action == v1alpha1.IntentStart && p.candidate != "":
		return fmt.Sprintf("start of candidate %q", p.candidate)
	case p.action == v1alpha1.IntentSplit && p.weights != nil:
		parts := make([]string, len(p.weights))
		for i, w := range p.weights {
			parts[i] = fmt.Sprintf("%s=%d", w.Subset, w.Weight)
		}
		return "split " + strings.Join(parts, " ")
	}
	return Verb(p.action)
}

// earlier finds what intent id asked for: the current intent, the pending
// one it superseded, or the history the controller wrote when it applied,
// ignored or superseded it. found is false when the id was never used.
func earlier(mr *v1alpha1.ModelRollout, id string) (p prior, found bool) {
	if in := mr.Spec.Intent; in != nil {
		if in.ID == id {
			return current(mr), true
		}
		if s := in.Supersedes; s != nil && s.ID == id {
			return prior{action: s.Action}, true
		}
	}
	for i := len(mr.Status.History) - 1; i >= 0; i-- {
		h := mr.Status.History[i]
		if h.IntentID != id {
			continue
		}
		found = true
		if a := historyAction(h); a != "" {
			p = prior{action: a}
			if a == v1alpha1.IntentSplit && len(h.Weights) > 0 {
				p.weights = h.Weights
			}
			return p, true
		}
	}
	return prior{}, found || mr.Status.ObservedIntent == id
}

// historyActions maps the controller's history entry types (see
// controller/rollout) to the action whose intent wrote them.
var historyActions = map[string]v1alpha1.IntentAction{
	v1alpha1.HistoryStarted:     v1alpha1.IntentStart,
	v1alpha1.HistoryPaused:      v1alpha1.IntentPause,
	v1alpha1.HistoryResumed:     v1alpha1.IntentResume,
	v1alpha1.HistoryManualSplit: v1alpha1.IntentSplit,
	v1alpha1.HistoryPromoted:    v1alpha1.IntentPromote,
	v1alpha1.HistoryRolledBack:  v1alpha1.IntentRollback,
	v1alpha1.HistoryApproved:    v1alpha1.IntentApprove,
}

// historyAction is the action behind a history entry, or "" when the entry
// does not say. IntentIgnored and IntentSuperseded entries carry no action in
// their type; the controller starts their reason with it ("Start ignored:
// ...", "promote requested by bob was superseded ..."), which is read as a
// best effort.
func historyAction(h v1alpha1.HistoryEntry) v1alpha1.IntentAction {
	if a, ok := historyActions[h.Type]; ok {
		return a
	}
	if h.Type != v1alpha1.HistoryIntentIgnored && h.Type != v1alpha1.HistoryIntentSuperseded {
		return ""
	}
	word, _, _ := strings.Cut(h.Reason, " ")
	a, _ := ParseAction(strings.ToLower(word))
	return a
}

// sameWeights compares two splits subset by subset, in any order.
func sameWeights(a, b []v1alpha1.SubsetWeight) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[string]int32, len(a))
	for _, w := range a {
		m[w.Subset] = w.Weight
	}
	for _, w := range b {
		if v, ok := m[w.Subset]; !ok || v != w.Weight {
			return false
		}
	}
	return true
}
