package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func TestParseWeights(t *testing.T) {
	ws, err := parseWeights([]string{"v1=70", "v2=30"})
	if err != nil || len(ws) != 2 || ws[1] != (v1alpha1.SubsetWeight{Subset: "v2", Weight: 30}) {
		t.Fatalf("%v %v", ws, err)
	}
	for _, bad := range []string{"v1", "=5", "v1=-1", "v1=101", "v1=7.5"} {
		if _, err := parseWeights([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSummaryAndApplied(t *testing.T) {
	step := int32(1)
	v := 0.004
	mr := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "fraud"},
		Spec:       v1alpha1.ModelRolloutSpec{Stable: "v1", Candidate: "v2", Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{Steps: []int32{5, 25, 100}}}},
		Status: v1alpha1.ModelRolloutStatus{Phase: v1alpha1.PhaseProgressing, Step: &step,
			Weights:  []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 75}, {Subset: "v2", Weight: 25}},
			Analysis: &v1alpha1.AnalysisStatus{Ran: true, Rounds: 3, RecentRounds: []v1alpha1.AnalysisRound{{Step: 1, Verdict: v1alpha1.VerdictPass, Metrics: []v1alpha1.MetricResult{{Name: "error-rate", Verdict: v1alpha1.VerdictPass, Value: &v}}}}},
			History:  []v1alpha1.HistoryEntry{{IntentID: "old"}}},
	}
	s := summary(mr)
	for _, want := range []string{"ml/fraud", "phase=Progressing", "step=2/3", "weights=v1=75,v2=25", "verdicts=error-rate:Pass"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary %q lacks %q", s, want)
		}
	}
	if d := strings.Join(describe(mr), "\n"); !strings.Contains(d, "error-rate") || !strings.Contains(d, "value 0.004") {
		t.Errorf("describe:\n%s", d)
	}
	if !applied(mr, "old") || applied(mr, "new") {
		t.Error("applied must look at observedIntent and history")
	}
}

// get shows what Fulcrum scaled, with the value it replaced, and the
// pending scale-down.
func TestDescribeShowsScaling(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC))
	mr := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "fraud"},
		Spec:       v1alpha1.ModelRolloutSpec{Stable: "v2"},
		Status: v1alpha1.ModelRolloutStatus{Phase: v1alpha1.PhasePromoted, Scaling: &v1alpha1.ScalingStatus{
			Changes: []v1alpha1.ScaleChange{
				{Subset: "v3", Kind: v1alpha1.KindHPA, Name: "fraud-v3", Field: v1alpha1.FieldMinReplicas, Original: 2, Set: 5, At: at, Reason: "step 3 (50%) needs 5 Ready pods"},
				{Subset: "v4", Kind: v1alpha1.KindDeployment, Name: "fraud-v4", Field: v1alpha1.FieldReplicas, Original: 1, Set: 3, At: at, Restoring: true},
			},
			ScaleDown: &v1alpha1.PendingScaleDown{Subset: "v1", At: metav1.NewTime(at.Add(30 * time.Minute)), Replicas: 0},
		}},
	}
	d := strings.Join(describe(mr), "\n")
	for _, want := range []string{
		"scaled HorizontalPodAutoscaler fraud-v3 minReplicas 2→5 at 2026-11-03T10:00:00Z: step 3 (50%) needs 5 Ready pods",
		"putting back Deployment fraud-v4 replicas to 1 (Fulcrum set 3)",
		"scale-down: v1 to 0 replicas at 2026-11-03T10:30:00Z",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("describe lacks %q:\n%s", want, d)
		}
	}
}

func TestRunUsageWithoutServer(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"list"}, &out, &errb, func(string) string { return "" })
	if code != exitUsageErr || !strings.Contains(errb.String(), "FULCRUM_SERVER") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	code = run(context.Background(), []string{"list", "-o", "yaml"}, &out, &errb, func(k string) string { return map[string]string{"FULCRUM_SERVER": "http://x"}[k] })
	if code != exitUsageErr {
		t.Fatalf("bad output format: exit %d", code)
	}
}

func TestNotApplied(t *testing.T) {
	tests := map[string]struct {
		mr   *v1alpha1.ModelRollout
		want string
	}{
		"pending": {mr: &v1alpha1.ModelRollout{Spec: v1alpha1.ModelRolloutSpec{Intent: &v1alpha1.Intent{ID: "s1", Action: v1alpha1.IntentStart}}}},
		"applied": {mr: &v1alpha1.ModelRollout{Status: v1alpha1.ModelRolloutStatus{ObservedIntent: "s1", History: []v1alpha1.HistoryEntry{{Type: "Started", IntentID: "s1"}}}}},
		"superseded in spec": {mr: &v1alpha1.ModelRollout{Spec: v1alpha1.ModelRolloutSpec{Intent: &v1alpha1.Intent{ID: "r1", Action: v1alpha1.IntentRollback, Actor: "bob",
			Supersedes: &v1alpha1.SupersededIntent{ID: "s1", Action: v1alpha1.IntentStart, Actor: "alice"}}}}, want: "superseded by rollback from bob (intent r1)"},
		"superseded in history": {mr: &v1alpha1.ModelRollout{Status: v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{{Type: "IntentSuperseded", IntentID: "s1", Reason: "start requested by alice was superseded"}}}},
			want: "start requested by alice was superseded"},
		"ignored": {mr: &v1alpha1.ModelRollout{Status: v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{{Type: "IntentIgnored", IntentID: "s1", Reason: "Start ignored: spec.candidate is empty"}}}},
			want: "Start ignored: spec.candidate is empty"},
		"another intent ignored": {mr: &v1alpha1.ModelRollout{Status: v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{{Type: "IntentIgnored", IntentID: "p1", Reason: "Pause ignored"}}}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := notApplied(tc.mr, "s1"); got != tc.want {
				t.Fatalf("notApplied = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestNoServerNeeded: help, completion and version --client work before a
// server is configured.
func TestNoServerNeeded(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"help", "start"}, {"start", "--help"}, {"completion", "bash"}, {"version", "--client"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb, func(string) string { return "" }); code != exitOK || out.Len() == 0 {
			t.Errorf("%v: exit %d, %d bytes out: %s", args, code, out.Len(), errb.String())
		}
	}
}
