package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// fakeAdmin is the admin API for one rollout, ml/fraud: GET returns it,
// an action records its body and returns it with a new intent, and the
// event stream sends the states the test queued (the controller's work),
// then stays open.
type fakeAdmin struct {
	mu      sync.Mutex
	rollout *v1alpha1.ModelRollout
	states  []*v1alpha1.ModelRollout
	actions []recordedAction
}

type recordedAction struct {
	verb string
	body map[string]any
}

const rolloutURL = "/api/v1/namespaces/ml/rollouts/fraud"

func newFakeAdmin(t *testing.T, mr *v1alpha1.ModelRollout, states ...*v1alpha1.ModelRollout) (*fakeAdmin, *httptest.Server) {
	t.Helper()
	f := &fakeAdmin{rollout: mr, states: states}
	s := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(s.Close)
	return f, s
}

func (f *fakeAdmin) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == rolloutURL:
		_ = json.NewEncoder(w).Encode(f.rollout)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, rolloutURL+"/"):
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		verb := strings.TrimPrefix(r.URL.Path, rolloutURL+"/")
		f.actions = append(f.actions, recordedAction{verb: verb, body: body})
		mr := f.rollout.DeepCopy()
		mr.Spec.Intent = &v1alpha1.Intent{ID: "new", Action: v1alpha1.IntentAction(strings.ToUpper(verb[:1]) + verb[1:]), Actor: "alice"}
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(mr)
	case r.Method == http.MethodGet && r.URL.Path == rolloutURL+"/history":
		_ = json.NewEncoder(w).Encode(map[string]any{"items": f.rollout.Status.History})
	case r.Method == http.MethodGet && r.URL.Path == rolloutURL+"/events":
		w.Header().Set("Content-Type", "text/event-stream")
		for _, st := range f.states {
			b, _ := json.Marshal(st)
			fmt.Fprintf(w, "event: rollout\ndata: %s\n\n", b)
		}
		w.(http.Flusher).Flush()
		f.mu.Unlock()
		<-r.Context().Done()
		f.mu.Lock()
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"title":"Not found","status":404,"detail":"no route %s %s"}`, r.Method, r.URL.Path)
	}
}

func (f *fakeAdmin) calls() []recordedAction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedAction(nil), f.actions...)
}

// expRollout is ml/fraud with a 50/50 experiment of v1 (control) and v2.
func expRollout(mods ...func(*v1alpha1.ModelRollout)) *v1alpha1.ModelRollout {
	mr := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "fraud"},
		Spec: v1alpha1.ModelRolloutSpec{Stable: "v1", Strategy: v1alpha1.Strategy{Experiment: &v1alpha1.ExperimentStrategy{
			Arms:   []v1alpha1.ExperimentArm{{Subset: "v1", Weight: 50}, {Subset: "v2", Weight: 50}},
			Reward: v1alpha1.Reward{Template: "model-feedback", MinEffect: 0.02},
		}}},
		Status: v1alpha1.ModelRolloutStatus{Phase: v1alpha1.PhaseStable},
	}
	for _, m := range mods {
		m(mr)
	}
	return mr
}

func f64(v float64) *float64 { return &v }

// running is the experiment after intent "new" was applied, with figures.
func running(mr *v1alpha1.ModelRollout) {
	started := metav1.NewTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	mr.Spec.Candidate = "v2"
	mr.Status.Phase = v1alpha1.PhaseProgressing
	mr.Status.ObservedIntent = "new"
	mr.Status.Step = new(int32) // as the controller writes it; no step is shown
	mr.Status.Weights = []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 50}, {Subset: "v2", Weight: 50}}
	mr.Status.Experiment = &v1alpha1.ExperimentStatus{StartedAt: &started, LastReadAt: &started,
		Reason: "v2 leads by 0.021 but its interval still holds 0",
		Arms: []v1alpha1.ArmStatus{
			{Subset: "v1", Weight: 50, Samples: 12000, Value: f64(0.101), Lower: f64(0.095), Upper: f64(0.107)},
			{Subset: "v2", Weight: 50, Samples: 11800, Value: f64(0.122), Lower: f64(0.116), Upper: f64(0.128),
				Lift: f64(0.021), LiftLower: f64(-0.001), LiftUpper: f64(0.043)},
		}}
}

// ended is the experiment decided with outcome (and winner).
func ended(outcome v1alpha1.ExperimentOutcome, winner string, phase v1alpha1.Phase) func(*v1alpha1.ModelRollout) {
	return func(mr *v1alpha1.ModelRollout) {
		running(mr)
		es := mr.Status.Experiment
		es.Outcome, es.Winner, mr.Status.Phase = outcome, winner, phase
		es.Reason = fmt.Sprintf("decided %s", outcome)
		es.Arms[1].LiftLower = f64(0.012)
	}
}

func runCLI(t *testing.T, server string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"FULCRUM_SERVER": server, "FULCRUM_NAMESPACE": "ml"}
	code := run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestExperimentStartWait(t *testing.T) {
	// A previous experiment's outcome, before the controller applied this
	// start, must not end the wait.
	previous := expRollout(ended(v1alpha1.ExperimentWinner, "v2", v1alpha1.PhaseManualSplit), func(mr *v1alpha1.ModelRollout) {
		mr.Status.ObservedIntent = "old"
	})
	tests := map[string]struct {
		states   []*v1alpha1.ModelRollout
		args     []string
		code     int
		outParts []string
	}{
		"an arm wins": {
			states: []*v1alpha1.ModelRollout{previous, expRollout(running), expRollout(ended(v1alpha1.ExperimentWinner, "v2", v1alpha1.PhaseManualSplit))},
			code:   exitOK,
			outParts: []string{
				"ml/fraud: start requested (intent new)",
				"ml/fraud phase=Progressing weights=v1=50,v2=50 arms=v1:0.101[0.095,0.107]n=12000,v2:0.122[0.116,0.128]n=11800 lift=v2:+0.021[-0.001,+0.043]",
				"outcome=Winner winner=v2",
				"ml/fraud Winner v2: decided Winner\n",
			},
		},
		"no difference": {
			states:   []*v1alpha1.ModelRollout{expRollout(running), expRollout(ended(v1alpha1.ExperimentNoDifference, "", v1alpha1.PhaseRolledBack))},
			code:     exitNoDifference,
			outParts: []string{"ml/fraud NoDifference: decided NoDifference\n"},
		},
		"inconclusive": {
			states:   []*v1alpha1.ModelRollout{expRollout(ended(v1alpha1.ExperimentInconclusive, "", v1alpha1.PhaseRolledBack))},
			code:     exitInconclusive,
			outParts: []string{"ml/fraud Inconclusive: decided Inconclusive\n"},
		},
		"stopped": {
			states:   []*v1alpha1.ModelRollout{expRollout(ended(v1alpha1.ExperimentStopped, "", v1alpha1.PhaseRolledBack))},
			code:     exitStopped,
			outParts: []string{"ml/fraud Stopped: decided Stopped\n"},
		},
		"the control wins": {
			states:   []*v1alpha1.ModelRollout{expRollout(ended(v1alpha1.ExperimentWinner, "v1", v1alpha1.PhaseManualSplit))},
			code:     exitControlWon,
			outParts: []string{"ml/fraud Winner v1: decided Winner\n"},
		},
		"promoted by hand: no outcome": {
			states: []*v1alpha1.ModelRollout{expRollout(running, func(mr *v1alpha1.ModelRollout) {
				mr.Status.Phase, mr.Status.Message = v1alpha1.PhasePromoted, "alice promoted v2"
			})},
			code:     exitFailed,
			outParts: []string{"ml/fraud Promoted: the experiment ended without an outcome: alice promoted v2\n"},
		},
		"superseded before it was applied": {
			states: []*v1alpha1.ModelRollout{expRollout(func(mr *v1alpha1.ModelRollout) {
				mr.Status.History = []v1alpha1.HistoryEntry{{Type: v1alpha1.HistoryIntentSuperseded, IntentID: "new", Reason: "start requested by alice was superseded by rollback from bob"}}
			})},
			code:     exitFailed,
			outParts: []string{"ml/fraud NotApplied: start requested by alice was superseded by rollback from bob\n"},
		},
		"timeout": {
			states:   []*v1alpha1.ModelRollout{previous, expRollout(running)},
			args:     []string{"--timeout", "300ms"},
			code:     exitTimeout,
			outParts: []string{"ml/fraud timed out after 300ms (the experiment goes on; follow it with 'fulcrumctl experiment get fraud -n ml')\n"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, s := newFakeAdmin(t, expRollout(), tc.states...)
			args := append([]string{"experiment", "start", "fraud", "--arm", "v2", "--reason", "ci 42", "--wait", "--timeout", "10s"}, tc.args...)
			code, out, errOut := runCLI(t, s.URL, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, want := range tc.outParts {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			calls := f.calls()
			if len(calls) != 1 || calls[0].verb != "start" || calls[0].body["candidate"] != "v2" || calls[0].body["reason"] != "ci 42" {
				t.Errorf("requests = %+v, want one start of candidate v2 with the reason", calls)
			}
		})
	}
}

func TestExperimentStartWaitJSON(t *testing.T) {
	_, s := newFakeAdmin(t, expRollout(), expRollout(ended(v1alpha1.ExperimentNoDifference, "", v1alpha1.PhaseRolledBack)))
	code, out, errOut := runCLI(t, s.URL, "experiment", "start", "fraud", "--arm", "v2", "--wait", "-o", "json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last struct {
		Result   string `json:"result"`
		ExitCode int    `json:"exitCode"`
		Reason   string `json:"reason"`
	}
	if code != exitNoDifference || json.Unmarshal([]byte(lines[len(lines)-1]), &last) != nil ||
		last.Result != "NoDifference" || last.ExitCode != exitNoDifference || last.Reason != "decided NoDifference" {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

// Refusals come from the rollout read first: no request is sent.
func TestExperimentStartRefused(t *testing.T) {
	canary := expRollout(func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Strategy = v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{Steps: []int32{5, 100}}}
	})
	tests := map[string]struct {
		mr      *v1alpha1.ModelRollout
		args    []string
		code    int
		errPart string
	}{
		"no experiment strategy": {mr: canary, args: []string{"--arm", "v2"}, code: exitFailed,
			errPart: "ml/fraud has no experiment: spec.strategy.experiment is not set; add it"},
		"the control": {mr: expRollout(), args: []string{"--arm", "v1"}, code: exitFailed,
			errPart: "--arm v1 is the control (the first of spec.strategy.experiment.arms): name another arm, one of v2"},
		"not an arm": {mr: expRollout(), args: []string{"--arm", "v9"}, code: exitFailed,
			errPart: "--arm v9 is not an arm of spec.strategy.experiment (arms v1, v2)"},
		"no arm": {mr: expRollout(), code: exitUsageErr, errPart: "--arm is required"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, s := newFakeAdmin(t, tc.mr)
			code, _, errOut := runCLI(t, s.URL, append([]string{"experiment", "start", "fraud"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.errPart) {
				t.Fatalf("exit %d (want %d): %s (want %q)", code, tc.code, errOut, tc.errPart)
			}
			if calls := f.calls(); len(calls) != 0 {
				t.Errorf("sent %+v", calls)
			}
		})
	}
	// stop refuses a rollout without an experiment the same way.
	f, s := newFakeAdmin(t, canary)
	if code, _, errOut := runCLI(t, s.URL, "experiment", "stop", "fraud"); code != exitFailed || !strings.Contains(errOut, "spec.strategy.experiment is not set") || len(f.calls()) != 0 {
		t.Fatalf("stop without an experiment: exit %d %s %+v", code, errOut, f.calls())
	}
}

func TestExperimentStop(t *testing.T) {
	f, s := newFakeAdmin(t, expRollout(running))
	code, out, errOut := runCLI(t, s.URL, "experiment", "stop", "fraud", "--reason", "bad week")
	if code != exitOK || !strings.Contains(out, "ml/fraud: rollback requested (intent new)") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if calls := f.calls(); len(calls) != 1 || calls[0].verb != "rollback" || calls[0].body["reason"] != "bad week" {
		t.Fatalf("requests = %+v, want one rollback with the reason", calls)
	}
}

func TestExperimentGet(t *testing.T) {
	_, s := newFakeAdmin(t, expRollout(ended(v1alpha1.ExperimentWinner, "v2", v1alpha1.PhaseManualSplit)))
	code, out, errOut := runCLI(t, s.URL, "experiment", "get", "fraud")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"ml/fraud  ManualSplit",
		"reward model-feedback (Proportion), min effect 0.02",
		"stickiness Cookie (cookie fulcrum-exp-fraud)",
		"started 2026-12-01T10:00:00Z",
		"ARM           WEIGHT  SAMPLES  VALUE  [LOWER, UPPER]  LIFT VS v1  [LOWER, UPPER]",
		"v1 (control)  50%     12000    0.101  [0.095, 0.107]  -           -",
		"v2            50%     11800    0.122  [0.116, 0.128]  +0.021      [+0.012, +0.043]",
		"outcome Winner, winner v2",
		"reason: decided Winner",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("experiment get lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runCLI(t, s.URL, "experiment", "get", "fraud", "-o", "json")
	var got experimentJSON
	if code != exitOK || json.Unmarshal([]byte(out), &got) != nil || got.Status == nil || got.Status.Winner != "v2" ||
		got.Strategy == nil || len(got.Strategy.Arms) != 2 || got.Phase != v1alpha1.PhaseManualSplit {
		t.Fatalf("-o json: exit %d\n%s", code, out)
	}

	// Before any start: the spec's arms, and how to start.
	_, s = newFakeAdmin(t, expRollout(func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Strategy.Experiment.Stickiness = v1alpha1.Stickiness{Mode: v1alpha1.StickinessHeader, Header: "x-user-group"}
	}))
	_, out, _ = runCLI(t, s.URL, "experiment", "get", "fraud")
	for _, want := range []string{"not started: start it with 'fulcrumctl experiment start fraud --arm SUBSET'", "stickiness Header (request header x-user-group names the arm)", "v2            50%     0        -"} {
		if !strings.Contains(out, want) {
			t.Errorf("experiment get before a start lacks %q:\n%s", want, out)
		}
	}
}

// get shows a running experiment's figures under the rollout's.
func TestDescribeShowsExperiment(t *testing.T) {
	d := strings.Join(describe(expRollout(running)), "\n")
	for _, want := range []string{"experiment, users kept on their arm by Cookie", "+0.021", "outcome: none yet: v2 leads by 0.021"} {
		if !strings.Contains(d, want) {
			t.Errorf("describe lacks %q:\n%s", want, d)
		}
	}
}

// An experiment's end reads in history like any transition: its phases,
// the weights kept, the controller as actor and the evidence as reason.
func TestHistoryShowsExperimentEnded(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	_, s := newFakeAdmin(t, expRollout(ended(v1alpha1.ExperimentWinner, "v2", v1alpha1.PhaseManualSplit), func(mr *v1alpha1.ModelRollout) {
		mr.Status.History = []v1alpha1.HistoryEntry{{Time: at, Type: v1alpha1.HistoryExperimentEnded, From: v1alpha1.PhaseProgressing, To: v1alpha1.PhaseManualSplit,
			Weights: mr.Status.Weights, Actor: "fulcrum", Reason: "experiment: v2 beats v1 by 0.021; the split is kept until a person acts (spec.strategy.experiment.onWinner Keep)"}}
	}))
	code, out, errOut := runCLI(t, s.URL, "history", "fraud")
	want := "2026-12-01T12:00:00Z  ExperimentEnded  Progressing  ManualSplit  v1=50,v2=50  fulcrum  experiment: v2 beats v1 by 0.021; the split is kept until a person acts (spec.strategy.experiment.onWinner Keep)"
	if code != exitOK || !strings.Contains(out, want) {
		t.Fatalf("exit %d %s\n%s\nwant a line %q", code, errOut, out, want)
	}
}
