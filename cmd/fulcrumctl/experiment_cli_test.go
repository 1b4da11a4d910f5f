package main

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// TestCLIExperimentOnTheAdminAPI runs the built binary against the real
// admin API: experiment start is a start of the arm that the server
// accepts, --wait ends on the outcome the controller writes, stop is a
// rollback, and a canary rollout is refused before anything is sent.
func TestCLIExperimentOnTheAdminAPI(t *testing.T) {
	c := setupCLI(t)
	ctx := context.Background()
	if _, err := c.run.Fixture(ctx, c.ns, v1alpha1.PhaseStable); err != nil {
		t.Fatal(err)
	}
	waitCached(t, c, func(string) bool { return true })

	// Given the canary fixture, experiment start is refused: exit 1, no intent.
	code, _, errOut := c.exec(nil, "experiment", "start", "fraud", "-n", c.ns, "--arm", "v2")
	if code != exitFailed || !strings.Contains(errOut, "spec.strategy.experiment is not set") {
		t.Fatalf("start on a canary: exit %d %s", code, errOut)
	}
	var mr v1alpha1.ModelRollout
	key := client.ObjectKey{Namespace: c.ns, Name: "fraud"}
	if err := c.run.Client.Get(ctx, key, &mr); err != nil || mr.Spec.Intent != nil {
		t.Fatalf("a refused start recorded an intent: %v %+v", err, mr.Spec.Intent)
	}

	// Given the rollout turned into a 50/50 experiment of v1 and v2.
	mr.Spec.Strategy = v1alpha1.Strategy{Experiment: &v1alpha1.ExperimentStrategy{
		Arms:   []v1alpha1.ExperimentArm{{Subset: "v1", Weight: 50}, {Subset: "v2", Weight: 50}},
		Reward: v1alpha1.Reward{Template: "model-feedback", MinEffect: 0.02},
	}}
	if err := c.run.Client.Update(ctx, &mr); err != nil {
		t.Fatal(err)
	}
	waitCached(t, c, func(out string) bool { return strings.Contains(out, `"experiment"`) })

	// When the controller starts it and then names v2 the winner, --wait
	// exits 0 with the winner and its reason.
	decided := make(chan error, 1)
	go func() { decided <- playExperiment(ctx, c, key) }()
	code, out, errOut := c.exec(nil, "experiment", "start", "fraud", "-n", c.ns, "--arm", "v2", "--reason", "ci", "--wait", "--timeout", "30s")
	if err := <-decided; err != nil {
		t.Fatal(err)
	}
	if code != exitOK || !strings.Contains(out, "Winner v2: v2 beats v1 by 0.03") || !strings.Contains(out, "lift=v2:+0.03[+0.01,+0.05]") {
		t.Fatalf("start --wait: exit %d\n%s\n%s", code, out, errOut)
	}
	if err := c.run.Client.Get(ctx, key, &mr); err != nil || mr.Spec.Candidate != "v2" || mr.Spec.Intent.Action != v1alpha1.IntentStart {
		t.Fatalf("the start did not name the arm as the candidate: %v %+v", err, mr.Spec)
	}

	// experiment get reads the outcome; stop is a rollback.
	waitCached(t, c, func(out string) bool { return strings.Contains(out, `"Winner"`) })
	if code, out, _ := c.exec(nil, "experiment", "get", "fraud", "-n", c.ns); code != 0 || !strings.Contains(out, "outcome Winner, winner v2") {
		t.Fatalf("get: %d\n%s", code, out)
	}
	code, out, errOut = c.exec(nil, "experiment", "stop", "fraud", "-n", c.ns, "--reason", "keep v1 for now")
	if code != exitOK || !strings.Contains(out, "rollback requested") {
		t.Fatalf("stop: exit %d\n%s\n%s", code, out, errOut)
	}
	if err := c.run.Client.Get(ctx, key, &mr); err != nil || mr.Spec.Intent.Action != v1alpha1.IntentRollback || mr.Spec.Intent.Reason != "keep v1 for now" {
		t.Fatalf("stop did not request a rollback: %v %+v", err, mr.Spec.Intent)
	}
}

// playExperiment plays the controller for an experiment: it applies the
// pending start, then decides v2 the winner, kept as a split.
func playExperiment(ctx context.Context, c *cli, key client.ObjectKey) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		var mr v1alpha1.ModelRollout
		if err := c.run.Client.Get(ctx, key, &mr); err != nil {
			return err
		}
		if mr.Spec.Intent == nil || mr.Spec.Intent.ID == mr.Status.ObservedIntent {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		half := []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 50}, {Subset: "v2", Weight: 50}}
		if err := c.run.Observe(ctx, key.Namespace, key.Name, v1alpha1.PhaseProgressing, half...); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
		if err := c.run.Client.Get(ctx, key, &mr); err != nil {
			return err
		}
		now := metav1.Now()
		v := func(f float64) *float64 { return &f }
		mr.Status.Phase = v1alpha1.PhaseManualSplit
		mr.Status.Experiment = &v1alpha1.ExperimentStatus{StartedAt: &now, LastReadAt: &now, DecidedAt: &now,
			Outcome: v1alpha1.ExperimentWinner, Winner: "v2", Reason: "v2 beats v1 by 0.03, more than the minimum effect 0.02",
			Arms: []v1alpha1.ArmStatus{
				{Subset: "v1", Weight: 50, Samples: 5000, Value: v(0.10), Lower: v(0.09), Upper: v(0.11)},
				{Subset: "v2", Weight: 50, Samples: 5000, Value: v(0.13), Lower: v(0.12), Upper: v(0.14), Lift: v(0.03), LiftLower: v(0.01), LiftUpper: v(0.05)},
			}}
		return c.run.Client.Status().Update(ctx, &mr)
	}
	return ctx.Err()
}
