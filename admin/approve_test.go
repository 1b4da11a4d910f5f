package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/admin"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// TestApproveNeedsItsVerb: approving a pending approval gate takes the
// approve verb on modelrollouts.fulcrum.dev. A viewer is refused, and so is
// a pipeline whose role (fulcrum-pipeline) may start and roll back but not
// approve; an ML engineer's approval is recorded on spec.intent with the
// gate, actor and reason, and an Event says who approved what.
func TestApproveNeedsItsVerb(t *testing.T) {
	run, tok := setup(t)
	ctx := context.Background()
	ns := newNamespace(t, "approve")
	if _, err := run.Fixture(ctx, ns, v1alpha1.PhaseProgressing); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("%s/api/v1/namespaces/%s/rollouts/fraud/approve", run.URL, ns)

	// Nothing waits yet: the table's 409, after authorization.
	if s, p := call(t, "POST", url, tok["alice"], `{"reason":"too early"}`); s != 409 || !strings.Contains(p["detail"].(string), "nothing to approve") {
		t.Fatalf("approve with nothing waiting: %d %v", s, p)
	}
	if err := run.AwaitApproval(ctx, ns, "fraud", "sign-off"); err != nil {
		t.Fatal(err)
	}
	for user, role := range map[string]string{"vera": "fulcrum-ml-engineer", "ci": "fulcrum-ml-engineer", "nobody": "fulcrum-ml-engineer"} {
		s, p := call(t, "POST", url, tok[user], `{"reason":"let me"}`)
		want := fmt.Sprintf("user %s may not 'approve' modelrollouts.fulcrum.dev in namespace %s: bind the %s role", user, ns, role)
		if d, _ := p["detail"].(string); s != 403 || !strings.Contains(d, want) {
			t.Fatalf("%s: %d %q, want 403 %q", user, s, d, want)
		}
	}
	stored := func() *v1alpha1.ModelRollout {
		t.Helper()
		var mr v1alpha1.ModelRollout
		if err := run.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fraud"}, &mr); err != nil {
			t.Fatal(err)
		}
		return &mr
	}
	if mr := stored(); mr.Spec.Intent != nil {
		t.Fatalf("a refused approval wrote intent %+v", mr.Spec.Intent)
	}
	// Naming another gate is refused: an approval lands only where meant.
	if s, p := call(t, "POST", url, tok["alice"], `{"gate":"load-test"}`); s != 409 || p["title"] != "Another gate waits" {
		t.Fatalf("approve of another gate: %d %v", s, p)
	}
	s, p := call(t, "POST", url, tok["alice"], `{"gate":"sign-off","reason":"offline eval is good"}`)
	if s != 202 {
		t.Fatalf("alice: %d %v", s, p)
	}
	in := stored().Spec.Intent
	if in == nil || in.Action != v1alpha1.IntentApprove || in.Gate != "sign-off" || in.Actor != "alice" || in.Reason != "offline eval is good" {
		t.Fatalf("intent %+v", in)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := env.Client.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range list.Items {
			found = found || (e.Reason == admin.EventReasonActionRequested &&
				strings.Contains(e.Note, "alice requested approve (intent "+in.ID+") of gate sign-off: offline eval is good"))
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ActionRequested event naming the approval in %d events", len(list.Items))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
