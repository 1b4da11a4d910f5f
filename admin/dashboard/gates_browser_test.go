package dashboard_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fulcrumv1 "github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// waitingForApproval gives ml/fraud a load-test gate that passed and an
// approval gate before the promotion that waits for a person.
func waitingForApproval(r *fulcrumv1.ModelRollout) {
	now := time.Now()
	r.Spec.Gates = []fulcrumv1.Gate{
		{Name: "load-test", At: fulcrumv1.GateEachStep, HTTP: &fulcrumv1.HTTPGate{URL: "http://load-test.ml.svc:8080/run"}},
		{Name: "sign-off", At: fulcrumv1.GatePrePromote, Approval: &fulcrumv1.ApprovalGate{Instructions: "compare the offline evaluation on the fraud-eval dashboard"}},
	}
	r.Status.Gates = &fulcrumv1.GatesStatus{
		Point: &fulcrumv1.GatePoint{At: fulcrumv1.GatePrePromote},
		Pending: &fulcrumv1.GateRun{Name: "sign-off", At: fulcrumv1.GatePrePromote, Step: ptr(int32(3)), Weight: 100, Type: fulcrumv1.GateTypeApproval,
			ID: "a1b2c3d4e5", State: fulcrumv1.GateWaitingForApproval, StartedAt: metav1.NewTime(now.Add(-3 * time.Minute))},
		Results: []fulcrumv1.GateResult{{Name: "load-test", At: fulcrumv1.GateEachStep, Step: ptr(int32(3)), Type: fulcrumv1.GateTypeHTTP, ID: "f0e1d2c3b4",
			Outcome: fulcrumv1.GatePassed, StartedAt: metav1.NewTime(now.Add(-5 * time.Minute)), FinishedAt: metav1.NewTime(now.Add(-4 * time.Minute)),
			Attempts: 2, Message: `attempt 2 of 3: 200 OK, verdict is "pass"`}},
	}
	r.Status.Message = "step 4 of 5: v2 at 50%; gate sign-off (approval at PrePromote) waits for a person's approval before v2 is promoted (100%)"
}

// checkGatesCard is the gates' part of TestDashboardInBrowser: given
// ml/fraud waiting for an approval before its promotion, the list says an
// approval is needed, the rollout's Gates card shows the waiting gate with
// its instructions and the finished ones; an engineer's Approve sends the
// gate's name and a reason; when the controller applies it, the card shows
// who approved, live.
func checkGatesCard(t *testing.T, ctx context.Context, url string, si *standIn) {
	t.Helper()
	si.update("ml", "fraud", waitingForApproval)
	do(t, ctx, chromedp.Navigate(url+"/#/"))
	waitFor(t, ctx, "the approval badge in the list", `(document.querySelector('tr[data-key="ml/fraud"] .gate-waiting')?.innerText || '') === 'Approval needed'`)

	do(t, ctx, chromedp.Navigate(url+"/#/rollouts/ml/fraud"))
	card := `(document.querySelector('section[aria-labelledby="s-gates"]')?.innerText || '')`
	waitFor(t, ctx, "the Gates card with the waiting approval", card+`.includes('Waiting for approval')`)
	got := eval[string](t, ctx, card)
	for _, want := range []string{
		"sign-off (approval at PrePromote, before 100%)", "Before approving: compare the offline evaluation on the fraud-eval dashboard",
		"load-test (HTTP before each step)", `attempt 2 of 3: 200 OK, verdict is "pass"`, "Passed", "HTTP at EachStep, before step 4\t",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Gates card lacks %q:\n%s", want, got)
		}
	}
	if bad := eval[[]string](t, ctx, unlabelledControls); len(bad) > 0 {
		t.Errorf("rollout page with gates has controls without a label: %v", bad)
	}
	screenshot(t, ctx, "gates-1280")

	before := len(si.actionCalls())
	do(t, ctx, chromedp.Click(chromedp.CSS(`section[aria-labelledby="s-gates"] button[data-action=approve]`)), chromedp.WaitVisible(chromedp.CSS("dialog[open] #act-reason")))
	dialog := eval[string](t, ctx, `document.querySelector('dialog[open]').innerText`)
	if !strings.Contains(dialog, "Approve gate sign-off: the rollout goes on and v2 is promoted and serves 100%") || !strings.Contains(dialog, "compare the offline evaluation") {
		t.Errorf("approve dialog = %q", dialog)
	}
	const reason = "offline AUC 0.93 vs 0.91 on last week's fraud labels"
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#act-reason"), reason))
	viewportShot(t, ctx, "approve-dialog-1280")
	do(t, ctx, chromedp.Click(chromedp.CSS("#act-submit")))
	waitFor(t, ctx, "the approve dialog to close", `!document.querySelector('dialog[open]')`)
	calls := si.actionCalls()
	if len(calls) != before+1 {
		t.Fatalf("action calls %+v, want one approve", calls[before:])
	}
	if c := calls[before]; c.Verb != "approve" || c.Body["gate"] != "sign-off" || c.Body["reason"] != reason || c.Authorization != "Bearer "+engineerToken {
		t.Errorf("approve request = %+v, want POST ml/fraud/approve naming gate sign-off, with the reason and the engineer's token", c)
	}

	// The controller applies it: the card says who approved, live.
	si.update("ml", "fraud", func(r *fulcrumv1.ModelRollout) {
		now := metav1.Now()
		gs := r.Status.Gates
		gs.Results = append(gs.Results, fulcrumv1.GateResult{Name: "sign-off", At: fulcrumv1.GatePrePromote, Step: ptr(int32(3)), Type: fulcrumv1.GateTypeApproval,
			ID: gs.Pending.ID, Outcome: fulcrumv1.GateApproved, StartedAt: gs.Pending.StartedAt, FinishedAt: now, Actor: "engineer", Message: reason})
		gs.Pending, gs.Point = nil, nil
		r.Status.ObservedIntent = r.Spec.Intent.ID
		r.Status.History = append(r.Status.History, fulcrumv1.HistoryEntry{Time: now, Type: fulcrumv1.HistoryApproved, From: fulcrumv1.PhaseProgressing,
			To: fulcrumv1.PhaseProgressing, Actor: "engineer", Reason: "approved gate sign-off (approval at PrePromote): " + reason, IntentID: r.Spec.Intent.ID})
	})
	waitFor(t, ctx, "the approval in the Gates card", `(document.querySelector('table.gate-results tr[data-gate="sign-off"]')?.innerText || '').includes('engineer')`)
	row := eval[string](t, ctx, `document.querySelector('table.gate-results tr[data-gate="sign-off"]').innerText`)
	if !strings.Contains(row, "Approved") || !strings.Contains(row, reason) {
		t.Errorf("sign-off row = %q, want Approved by engineer with the reason", row)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('button[data-action=approve]').length`); n != 0 {
		t.Errorf("%d Approve buttons after the approval was applied", n)
	}
	if h := eval[string](t, ctx, `document.querySelector('table.history').innerText`); !strings.Contains(h, "Approved") {
		t.Error("history lacks the Approved entry")
	}
}

// checkGatesViewer: a viewer sees the waiting approval, told who may
// approve it, and no Approve button.
func checkGatesViewer(t *testing.T, ctx context.Context, url string, si *standIn) {
	t.Helper()
	si.update("ml", "fraud", waitingForApproval)
	do(t, ctx, chromedp.Navigate(url+"/#/rollouts/ml/fraud"))
	card := `(document.querySelector('section[aria-labelledby="s-gates"]')?.innerText || '')`
	waitFor(t, ctx, "the viewer's Gates card", card+`.includes('A person with the approve verb on this rollout approves it')`)
	time.Sleep(200 * time.Millisecond) // let a late render land
	if n := eval[int](t, ctx, `document.querySelectorAll('button[data-action=approve]').length`); n != 0 {
		t.Errorf("viewer sees %d Approve buttons, want none", n)
	}
}
