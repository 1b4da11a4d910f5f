package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// canary is ml/fraud, a canary with an approval gate before its promotion.
func canary(mods ...func(*v1alpha1.ModelRollout)) *v1alpha1.ModelRollout {
	mr := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "fraud"},
		Spec: v1alpha1.ModelRolloutSpec{Stable: "v1", Candidate: "v2",
			Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{Steps: []int32{10, 50, 100}}},
			Gates: []v1alpha1.Gate{
				{Name: "load-test", At: v1alpha1.GateEachStep, HTTP: &v1alpha1.HTTPGate{URL: "http://load.ml.svc/run"}},
				{Name: "sign-off", At: v1alpha1.GatePrePromote, Approval: &v1alpha1.ApprovalGate{Instructions: "check the offline evaluation"}},
			}},
		Status: v1alpha1.ModelRolloutStatus{Phase: v1alpha1.PhaseStable},
	}
	for _, m := range mods {
		m(mr)
	}
	return mr
}

var gateStart = metav1.NewTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))

// held is the canary after intent "new", at step 2, held by a gate.
func held(name string, typ v1alpha1.GateType, at v1alpha1.GateHook) func(*v1alpha1.ModelRollout) {
	return func(mr *v1alpha1.ModelRollout) {
		step := int32(1)
		mr.Status.Phase, mr.Status.ObservedIntent, mr.Status.Candidate, mr.Status.Step = v1alpha1.PhaseProgressing, "new", "v2", &step
		mr.Status.Weights = []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 50}, {Subset: "v2", Weight: 50}}
		run := &v1alpha1.GateRun{Name: name, At: at, Step: &step, Weight: 100, Type: typ, ID: "run-" + name,
			State: v1alpha1.GateRunning, StartedAt: gateStart, Message: "attempt 1 of 3: calling http://load.ml.svc/run"}
		if typ == v1alpha1.GateTypeApproval {
			run.State, run.Message = v1alpha1.GateWaitingForApproval, ""
		} else {
			dl := metav1.NewTime(gateStart.Add(2 * time.Minute))
			run.Deadline, run.Weight = &dl, 50
		}
		mr.Status.Gates = &v1alpha1.GatesStatus{Pending: run,
			Results: []v1alpha1.GateResult{{Name: "load-test", Outcome: v1alpha1.GatePassed}}}
	}
}

func promoted(mr *v1alpha1.ModelRollout) {
	mr.Status.Phase, mr.Status.ObservedIntent, mr.Status.Message = v1alpha1.PhasePromoted, "new", "v2 promoted: it serves 100%"
	mr.Status.Gates = &v1alpha1.GatesStatus{Results: []v1alpha1.GateResult{{Name: "sign-off", Outcome: v1alpha1.GateApproved, Actor: "bob"}}}
}

// --wait says, on a line of its own and once per gate run, that the
// rollout waits for a gate, and for an approval what a person must run;
// it goes on waiting until the outcome.
func TestWaitReportsPendingGates(t *testing.T) {
	approval := held("sign-off", v1alpha1.GateTypeApproval, v1alpha1.GatePrePromote)
	loadTest := held("load-test", v1alpha1.GateTypeHTTP, v1alpha1.GateEachStep)
	_, s := newFakeAdmin(t, canary(), canary(loadTest), canary(loadTest), canary(approval), canary(approval), canary(promoted))
	code, out, errOut := runCLI(t, s.URL, "start", "fraud", "--candidate", "v2", "--wait", "--timeout", "10s")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"ml/fraud waiting for gate load-test (HTTP at EachStep, before step 2 at 50%): it runs until 2026-12-01T10:02:00Z at most\n",
		"ml/fraud waiting for gate sign-off (approval at PrePromote, before 100%): a person with the approve verb must approve it: fulcrumctl approve fraud -n ml --gate sign-off --reason '...' (check the offline evaluation)\n",
		"ml/fraud Promoted: v2 promoted: it serves 100%\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "waiting for gate sign-off"); n != 1 {
		t.Errorf("the approval notice printed %d times, want once:\n%s", n, out)
	}
}

// A --wait that times out while a gate holds the rollout says which.
func TestWaitTimeoutNamesThePendingGate(t *testing.T) {
	_, s := newFakeAdmin(t, canary(), canary(held("sign-off", v1alpha1.GateTypeApproval, v1alpha1.GatePrePromote)))
	code, out, _ := runCLI(t, s.URL, "start", "fraud", "--candidate", "v2", "--wait", "--timeout", "300ms")
	want := "ml/fraud timed out after 300ms (the rollout goes on; follow it with 'fulcrumctl watch fraud -n ml'); still waiting for gate sign-off (approval at PrePromote, before 100%): a person with the approve verb must approve it"
	if code != exitTimeout || !strings.Contains(out, want) {
		t.Fatalf("exit %d, want %d and %q in:\n%s", code, exitTimeout, want, out)
	}
	// -o json: one object for the gate, then the result.
	_, s = newFakeAdmin(t, canary(), canary(held("sign-off", v1alpha1.GateTypeApproval, v1alpha1.GatePrePromote)), canary(promoted))
	code, out, _ = runCLI(t, s.URL, "get", "fraud", "--wait", "-o", "json")
	var gate struct {
		Type string            `json:"type"`
		Gate *v1alpha1.GateRun `json:"gate"`
	}
	found := false
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if json.Unmarshal([]byte(l), &gate) == nil && gate.Type == "gate" {
			found = gate.Gate != nil && gate.Gate.Name == "sign-off" && gate.Gate.State == v1alpha1.GateWaitingForApproval
		}
	}
	if code != exitOK || !found {
		t.Fatalf("get --wait -o json: exit %d, gate object found %v:\n%s", code, found, out)
	}
}

// approve sends the gate and the reason; get shows the pending gate with
// the command that approves it.
func TestApproveAndGet(t *testing.T) {
	f, s := newFakeAdmin(t, canary(held("sign-off", v1alpha1.GateTypeApproval, v1alpha1.GatePrePromote)))
	code, out, errOut := runCLI(t, s.URL, "approve", "fraud", "--gate", "sign-off", "--reason", "offline eval is good")
	if code != exitOK || !strings.Contains(out, "ml/fraud: approve requested (intent new)") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if c := f.calls(); len(c) != 1 || c[0].verb != "approve" || c[0].body["gate"] != "sign-off" || c[0].body["reason"] != "offline eval is good" {
		t.Fatalf("requests %+v", c)
	}
	code, out, _ = runCLI(t, s.URL, "get", "fraud")
	for _, want := range []string{
		"  gate sign-off (approval at PrePromote, before 100%) holds the rollout since 2026-12-01T10:00:00Z\n",
		"    before approving: check the offline evaluation\n",
		"    fulcrumctl approve fraud -n ml --gate sign-off --reason '...'\n",
		"  gates: load-test Passed\n",
	} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("get lacks %q:\n%s", want, out)
		}
	}
}
