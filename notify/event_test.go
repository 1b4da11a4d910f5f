package notify

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
)

func TestNewEventCarriesTheEntryAndTheRollout(t *testing.T) {
	ev := rollbackEvent()
	if ev.Namespace != "ml" || ev.Rollout != "fraud" || ev.UID == "" || ev.Labels["team"] != "risk" {
		t.Errorf("rollout identity: %+v", ev)
	}
	if ev.Type != v1alpha1.HistoryRolledBack || ev.Severity != v1alpha1.SeverityCritical || !ev.Time.Equal(rollbackAt) {
		t.Errorf("entry: type %s severity %s time %s", ev.Type, ev.Severity, ev.Time)
	}
	if ev.From != v1alpha1.PhaseProgressing || ev.To != v1alpha1.PhaseRolledBack || ev.Stable != "v1" || ev.Candidate != "v2" {
		t.Errorf("phases and versions: %+v", ev)
	}
	if ev.Actor != "fulcrum" || ev.Reason == "" || len(ev.Weights) != 2 {
		t.Errorf("actor, reason, weights: %+v", ev)
	}
	v := ev.Verdict
	if v == nil || v.Verdict != v1alpha1.VerdictFail || v.Step != 2 || len(v.Metrics) != 1 {
		t.Fatalf("verdict: %+v", v)
	}
	m := v.Metrics[0]
	if m.Metric != "error-rate" || *m.Value != 0.021 || *m.Baseline != 0.005 || m.Bound != "increase <= 0.005" ||
		m.CandidateSamples != 812 || m.BaselineSamples != 15230 {
		t.Errorf("evidence: %+v", m)
	}
}

func TestDecidingRound(t *testing.T) {
	entry := rollbackEntry()
	before := rollbackAt.Add(-time.Second)
	cases := map[string]struct {
		mr    *v1alpha1.ModelRollout
		entry func(h *v1alpha1.HistoryEntry)
		want  bool
	}{
		"the controller's rollback after a failed round": {
			mr: aRollout().withRound(before, 2, v1alpha1.VerdictFail, errorRateFail).build(), want: true,
		},
		"a person's rollback is not the round's": {
			mr:    aRollout().withRound(before, 2, v1alpha1.VerdictFail, errorRateFail).build(),
			entry: func(h *v1alpha1.HistoryEntry) { h.Actor, h.IntentID = "alice", "rb-1" },
		},
		"a round after the entry is not its cause": {
			mr: aRollout().withRound(rollbackAt.Add(time.Second), 2, v1alpha1.VerdictFail, errorRateFail).build(),
		},
		"a round of the previous rollout is not its cause": {
			mr: aRollout().withRound(t0.Add(-time.Minute), 4, v1alpha1.VerdictPass, latencyPass).build(),
		},
		"a type analysis never causes": {
			mr:    aRollout().withRound(before, 2, v1alpha1.VerdictFail, errorRateFail).build(),
			entry: func(h *v1alpha1.HistoryEntry) { h.Type = v1alpha1.HistoryScaledUp },
		},
		"no analysis": {mr: aRollout().build()},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := entry
			if tc.entry != nil {
				tc.entry(&h)
			}
			if got := NewEvent(tc.mr, h).Verdict; (got != nil) != tc.want {
				t.Errorf("verdict %+v, want one: %v", got, tc.want)
			}
		})
	}
}

// The entry written with nanoseconds and read back in whole seconds is the
// same entry.
func TestEntryIDSurvivesTheAPIServersPrecision(t *testing.T) {
	h := rollbackEntry()
	h.Time = metav1.Time{Time: rollbackAt.Add(123456789 * time.Nanosecond)}
	read := h
	read.Time = metav1.Time{Time: h.Time.Truncate(time.Second)}
	if EntryID("u", h) != EntryID("u", read) {
		t.Error("IDs differ after truncation to seconds")
	}
	other := h
	other.Type = v1alpha1.HistoryPaused
	if EntryID("u", h) == EntryID("u", other) || EntryID("u", h) == EntryID("v", h) {
		t.Error("different entries share an ID")
	}
}

func TestActorControllerIsTheControllers(t *testing.T) {
	if actorController != rollout.ActorController {
		t.Errorf("actorController %q, the controller records %q", actorController, rollout.ActorController)
	}
}

func TestDashboardLink(t *testing.T) {
	for base, want := range map[string]string{
		"https://fulcrum.example.com":     "https://fulcrum.example.com/#/rollouts/ml/fraud",
		"https://fulcrum.example.com/ui/": "https://fulcrum.example.com/ui/#/rollouts/ml/fraud",
		"":                                "",
	} {
		if got := DashboardLink(base, "ml", "fraud"); got != want {
			t.Errorf("DashboardLink(%q) = %q, want %q", base, got, want)
		}
	}
}

func TestHeadlines(t *testing.T) {
	step := int32(2)
	cases := map[string]struct {
		ev   Event
		want string
	}{
		"step":     {Event{Type: v1alpha1.HistoryStepAdvanced, Candidate: "v2", Step: &step, Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 75}, {Subset: "v2", Weight: 25}}}, "ml/fraud: v2 advanced to step 3 (25%)"},
		"rollback": {Event{Type: v1alpha1.HistoryRolledBack, Candidate: "v2", Stable: "v1"}, "ml/fraud: v2 rolled back; v1 serves 100%"},
		"split":    {Event{Type: v1alpha1.HistoryManualSplit, Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 70}, {Subset: "v2", Weight: 30}}}, "ml/fraud: weights pinned to v1 70%, v2 30%"},
		"unknown":  {Event{Type: "SomethingNew"}, "ml/fraud: SomethingNew"},
	}
	for name, tc := range cases {
		tc.ev.Namespace, tc.ev.Rollout = "ml", "fraud"
		if got := Headline(&tc.ev); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}
