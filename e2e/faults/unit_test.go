package faults

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func entry(sec int, typ, intent string) v1alpha1.HistoryEntry {
	return v1alpha1.HistoryEntry{Time: metav1.NewTime(time.Unix(int64(1_700_000_000+sec), 0)), Type: typ, Actor: "alice", IntentID: intent}
}

func TestHistoryProblems(t *testing.T) {
	started, step := entry(0, "Started", "i1"), entry(5, "StepAdvanced", "")
	rolled := entry(9, "RolledBack", "i2")
	tests := map[string]struct {
		before, after v1alpha1.ModelRolloutStatus
		want          []string // substrings, one per problem
	}{
		"entries appended": {
			before: v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{started, step}},
			after:  v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{started, step, rolled}},
		},
		"oldest dropped by the cap and counted": {
			before: v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{started, step}},
			after:  v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{step, rolled}, HistoryDropped: 1},
		},
		"entry lost": {
			before: v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{started, step}},
			after:  v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{started}},
			want:   []string{"entry 1 (StepAdvanced"},
		},
		"entry rewritten": {
			before: v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{started, step}},
			after:  v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{started, entry(6, "StepAdvanced", "")}},
			want:   []string{"entry 1 was rewritten"},
		},
		"decision recorded twice a second apart": {
			before: v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{started, step}},
			after:  v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{started, step, entry(10, "RolledBack", ""), entry(11, "RolledBack", "")}},
			want:   []string{"duplicated entry: RolledBack"},
		},
		"last entry before replayed": {
			before: v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{started, step}},
			after:  v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{started, step, entry(7, "StepAdvanced", "")}},
			want:   []string{"duplicated entry: StepAdvanced"},
		},
		"one intent in two entries": {
			before: v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{started}},
			after:  v1alpha1.ModelRolloutStatus{History: []v1alpha1.HistoryEntry{started, entry(3, "IntentIgnored", "i1")}},
			want:   []string{"intent i1 appears in 2 entries"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := HistoryProblems(tc.before, tc.after)
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// exposition serves istio_requests_total counts a test sets.
type exposition struct {
	mu                   sync.Mutex
	v1, v2, uh, nc, v2uf float64
}

func (e *exposition) set(f func(*exposition)) { e.mu.Lock(); f(e); e.mu.Unlock() }

func (e *exposition) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintln(w, "# TYPE istio_requests_total counter")
	line := func(rep, ver, code, flags string, v float64) {
		fmt.Fprintf(w, "istio_requests_total{reporter=%q,destination_version=%q,response_code=%q,response_flags=%q} %g\n", rep, ver, code, flags, v)
	}
	line("destination", "v1", "200", "-", e.v1)
	line("destination", "v2", "200", "-", e.v2)
	line("destination", "v2", "503", "UF", e.v2uf)
	line("source", "v1", "200", "-", e.v1) // the source reporter repeats reached requests
	line("source", "unknown", "503", "UH", e.uh)
	line("source", "unknown", "503", "NC", e.nc)
}

func TestTrafficCountsAndLastChange(t *testing.T) {
	exp := &exposition{v1: 70, v2: 30, v2uf: 1}
	tr := RecordTraffic(context.Background(), exp, 5*time.Millisecond)
	defer tr.Stop()
	waitSamples := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			tr.mu.Lock()
			got := len(tr.samples)
			tr.mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d samples", got)
			}
			time.Sleep(time.Millisecond)
		}
	}
	s0 := tr.Now()
	if s0.Reached["v1"] != 70 || s0.Reached["v2"] != 31 || s0.Toward("v2") != 31 || s0.Total() != 101 {
		t.Fatalf("first sample %s, want v1=70 v2=31 (200 and UF), total 101", s0)
	}
	waitSamples(3)
	mark := time.Now()
	if _, ok := tr.LastChange("v2", mark); ok {
		t.Fatal("LastChange reports growth while the counts stood still")
	}
	grewBy := time.Now()
	exp.set(func(e *exposition) { e.uh, e.v1 = 4, 80 })
	s1 := tr.Now()
	waitSamples(len(tr.samples) + 3)
	at, ok := tr.LastChange("v2", mark)
	if !ok || at.Before(grewBy) || at.After(s1.At) {
		t.Fatalf("LastChange = %s, %v; want the first sample after the UH answers (%s)", at, ok, s1.At)
	}
	if got := tr.Between("v2", mark); got != 4 {
		t.Errorf("Between = %g, want the 4 UH answers", got)
	}
	if sh, n := s1.Share(s0, "v1"); n != 14 || sh != 10.0/14 {
		t.Errorf("Share(v1) = %g of %g, want 10/14", sh, n)
	}
	exp.set(func(e *exposition) { e.nc = 2 })
	if got := tr.Now().Toward("v2"); got != 37 {
		t.Errorf("Toward(v2) = %g, want 31 reached + 4 UH + 2 NC", got)
	}
	if err := tr.Err(); err != nil {
		t.Fatal(err)
	}
}
