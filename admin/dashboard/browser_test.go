package dashboard_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fulcrumv1 "github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// TestDashboardInBrowser drives the dashboard in headless Chromium against
// the stand-in admin API: sign-in, the list, live updates, the rollout page,
// rollback and split requests, the offline banner, phone width and a viewer
// who may not act. Set FULCRUM_UPDATE_DOC_IMAGES=1 to refresh
// docs/images/dashboard-analysis.png.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped under -short")
	}
	bin := findChromium(t)
	si := newStandIn(time.Now())
	srv := httptest.NewUnstartedServer(si.handler())
	srv.EnableHTTP2 = false
	srv.Start()
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	ctx := newBrowser(t, bin)

	signIn := func(token string) {
		t.Helper()
		do(t, ctx,
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), token),
			chromedp.Click(chromedp.CSS("form.signin button[type=submit]")))
	}
	rowCount := `document.querySelectorAll('table.rollouts tbody tr').length`
	rowText := func(key string) string {
		return fmt.Sprintf(`(document.querySelector('tr[data-key="%s"]')?.innerText || '')`, key)
	}

	// Given an engineer signed in, the list shows every rollout.
	do(t, ctx, chromedp.Navigate(srv.URL+"/"))
	signIn(engineerToken)
	waitFor(t, ctx, "the list of 7 rollouts", rowCount+` === 7`)
	if got := eval[string](t, ctx, rowText("ml/fraud")); !strings.Contains(got, "Progressing") || !strings.Contains(got, "v2 5%") {
		t.Errorf("ml/fraud row = %q, want phase Progressing and weight v2 5%%", got)
	}
	if h := eval[int](t, ctx, `document.querySelector('#banner').offsetHeight`); h != 0 {
		t.Errorf("the offline banner shows (%d px high) while the server answers", h)
	}
	if bad := eval[[]string](t, ctx, unlabelledControls); len(bad) > 0 {
		t.Errorf("list has controls without a label: %v", bad)
	}

	// Filtering by phase keeps only matching rows; by namespace asks the server.
	eval[any](t, ctx, `(() => { const s = document.querySelector('#f-phase'); s.value = 'Paused'; s.dispatchEvent(new Event('change')); })()`)
	waitFor(t, ctx, "only the paused rollout", rowCount+` === 1 && !!document.querySelector('tr[data-key="team-b/pricing"]')`)
	if !strings.Contains(eval[string](t, ctx, `location.hash`), "phase=Paused") {
		t.Error("phase filter is not kept in the URL")
	}
	eval[any](t, ctx, `(() => { const s = document.querySelector('#f-phase'); s.value = ''; s.dispatchEvent(new Event('change')); })()`)
	do(t, ctx, chromedp.SetValue(chromedp.CSS("#f-namespace"), "team-b"), chromedp.Click(chromedp.CSS(".filters button[type=submit]")))
	waitFor(t, ctx, "the team-b rollouts only", rowCount+` === 2 && location.hash.includes('namespace=team-b')`)
	do(t, ctx, chromedp.Navigate(srv.URL+"/#/"))
	waitFor(t, ctx, "the full list again", rowCount+` === 7`)
	screenshot(t, ctx, "list-1280")

	// When the controller moves fraud to 25%, the list shows it without a reload.
	eval[any](t, ctx, `window.__noReload = 'still here'`)
	si.update("ml", "fraud", func(r *fulcrumv1.ModelRollout) {
		advance(r, 2, 75, 25)
	})
	waitFor(t, ctx, "v2 at 25% in the list", rowText("ml/fraud")+`.includes('v2 25%') && window.__noReload === 'still here'`)

	// The rollout page shows the chart, steps, rounds and history.
	do(t, ctx, chromedp.Click(chromedp.CSS(`a[href="#/rollouts/ml/fraud"]`)))
	waitFor(t, ctx, "the chart with two subsets", `document.querySelectorAll('.chart path.series').length === 2`)
	page := eval[string](t, ctx, `document.querySelector('main').innerText`)
	for _, want := range []string{
		"increase <= 0.005", "0.0061", "0.0049", "820 / 15580", "not enough evidence yet: 820 candidate requests", // a round's numbers
		"180 more", "[-0.0021, 0.0043]", "alice@example.com", "release 2.3: retrained on October data", // samples needed, interval, actor, reason
		"2 of 10 consecutive inconclusive",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("rollout page lacks %q", want)
		}
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('table.rounds tbody.round').length`); n != 3 {
		t.Errorf("rounds shown = %d, want 3", n)
	}
	if cur := eval[string](t, ctx, `document.querySelector('.step.current')?.innerText || ''`); !strings.Contains(cur, "25%") {
		t.Errorf("current step = %q, want the 25%% step", cur)
	}
	points := eval[int](t, ctx, `document.querySelectorAll('.chart circle.point').length`)
	si.update("ml", "fraud", func(r *fulcrumv1.ModelRollout) { advance(r, 3, 50, 50) })
	waitFor(t, ctx, "the 50/50 step on the page", fmt.Sprintf(
		`document.querySelector('.legend').innerText.includes('v2 50%%') && document.querySelectorAll('.chart circle.point').length > %d && window.__noReload === 'still here'`, points))
	if bad := eval[[]string](t, ctx, unlabelledControls); len(bad) > 0 {
		t.Errorf("rollout page has controls without a label: %v", bad)
	}
	rolloutShot := screenshot(t, ctx, "rollout-1280")

	// A shadow stage heads the timeline: current while requests are copied
	// to the candidate, then gone from the page with the stage.
	si.update("ml", "fraud", func(r *fulcrumv1.ModelRollout) {
		r.Spec.Strategy.Canary.Shadow = &fulcrumv1.ShadowStage{Percent: 100}
		r.Status.Shadow = &fulcrumv1.ShadowStatus{Subset: "v2", Percent: 100, StartedAt: atp(time.Now())}
	})
	waitFor(t, ctx, "the shadow stage current on the timeline", `(document.querySelector('.step.current')?.innerText || '').includes('copying 100% to v2')`)
	si.update("ml", "fraud", func(r *fulcrumv1.ModelRollout) { r.Spec.Strategy.Canary.Shadow, r.Status.Shadow = nil, nil })
	waitFor(t, ctx, "the 50% step current again", `(document.querySelector('.step.current')?.innerText || '').includes('50%')`)

	// A scale-ahead shows in the Scaling card and reads well in history.
	si.update("ml", "fraud", func(r *fulcrumv1.ModelRollout) {
		why := "step 4 (100%) needs 5 Ready pods of v2 at 20 requests/s each (100 of 100 requests/s); it had 2: raised HPA fraud-v2 minReplicas 2→5"
		r.Status.Scaling = &fulcrumv1.ScalingStatus{Changes: []fulcrumv1.ScaleChange{{Subset: "v2", Kind: fulcrumv1.KindHPA, Name: "fraud-v2",
			Field: fulcrumv1.FieldMinReplicas, Original: 2, Set: 5, At: metav1.Now(), Reason: why}}}
		r.Status.History = append(r.Status.History, fulcrumv1.HistoryEntry{Time: metav1.Now(), Type: fulcrumv1.HistoryScaledUp,
			From: fulcrumv1.PhaseProgressing, To: fulcrumv1.PhaseProgressing, Actor: "fulcrum", Reason: why})
	})
	waitFor(t, ctx, "the scale-up in the Scaling card and the history",
		`(document.querySelector('ul.scaling')?.innerText || '').includes('HPA fraud-v2 minReplicas 2→5') && document.querySelector('table.history').innerText.includes('ScaledUp')`)
	si.update("ml", "fraud", func(r *fulcrumv1.ModelRollout) { r.Status.Scaling = nil })
	waitFor(t, ctx, "the Scaling card gone with status.scaling", `!document.querySelector('ul.scaling')`)

	// The keyboard alone opens an action's dialog and Escape cancels it.
	do(t, ctx, chromedp.Focus(chromedp.CSS(`button[data-action=rollback]`)), chromedp.KeyEvent(kb.Enter))
	waitFor(t, ctx, "the dialog opened by Enter, focus in the reason", `!!document.querySelector('dialog[open]') && document.activeElement.id === 'act-reason'`)
	do(t, ctx, chromedp.KeyEvent(kb.Escape))
	waitFor(t, ctx, "Escape to close the dialog", `!document.querySelector('dialog[open]')`)
	if calls := si.actionCalls(); len(calls) != 0 {
		t.Fatalf("cancelling with Escape sent %+v", calls)
	}

	// Rollback asks for a reason and a confirmation, then sends the request.
	do(t, ctx, chromedp.Click(chromedp.CSS(`button[data-action=rollback]`)), chromedp.WaitVisible(chromedp.CSS("dialog[open] #act-reason")))
	if bad := eval[[]string](t, ctx, unlabelledControls); len(bad) > 0 {
		t.Errorf("rollback dialog has controls without a label: %v", bad)
	}
	const reason = "error budget burning on v2 in eu-west"
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#act-reason"), reason))
	viewportShot(t, ctx, "rollback-dialog-1280")
	do(t, ctx, chromedp.Click(chromedp.CSS("#act-submit")))
	time.Sleep(300 * time.Millisecond) // a request, if wrongly sent, would have arrived by now
	if calls := si.actionCalls(); len(calls) != 0 {
		t.Fatalf("rollback was sent without the confirmation box ticked: %+v", calls)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("#act-confirm")), chromedp.Click(chromedp.CSS("#act-submit")))
	waitFor(t, ctx, "the dialog to close", `!document.querySelector('dialog[open]')`)
	calls := si.actionCalls()
	if len(calls) != 1 {
		t.Fatalf("action calls = %+v, want one rollback", calls)
	}
	if c := calls[0]; c.Namespace != "ml" || c.Name != "fraud" || c.Verb != "rollback" || c.Body["reason"] != reason || c.Authorization != "Bearer "+engineerToken {
		t.Errorf("rollback request = %+v, want POST ml/fraud/rollback with the reason and the engineer's token", c)
	}
	waitFor(t, ctx, "the pending rollback notice", `(document.querySelector('.pending')?.innerText || '').includes('Rollback')`)

	// Split on a three-way A/B/n test: the controls always total 100.
	do(t, ctx, chromedp.Navigate(srv.URL+"/#/rollouts/team-b/churn"))
	do(t, ctx, chromedp.Click(chromedp.CSS(`button[data-action=split]`)), chromedp.WaitVisible(chromedp.CSS("dialog[open] #split-0")))
	splitValues := `[...document.querySelectorAll('.split-row input[type=number]')].map((e) => Number(e.value))`
	setSplit := func(i, v int) []int {
		eval[any](t, ctx, fmt.Sprintf(`(() => { const e = document.querySelector('#split-%d'); e.value = '%d'; e.dispatchEvent(new Event('change')); })()`, i, v))
		return eval[[]int](t, ctx, splitValues)
	}
	for _, tc := range []struct {
		i, v int
		want []int
	}{
		{0, 70, []int{70, 18, 12}},
		{2, 100, []int{0, 0, 100}},
		{1, 33, []int{0, 33, 67}},
	} {
		if got := setSplit(tc.i, tc.v); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("set subset %d to %d: weights %v, want %v", tc.i, tc.v, got, tc.want)
		}
	}
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#split-new"), "v4"), chromedp.Click(chromedp.CSS(".split-tools button")))
	do(t, ctx, chromedp.Click(chromedp.CSS(".split-tools button:last-child")))
	if got := eval[[]int](t, ctx, splitValues); fmt.Sprint(got) != "[25 25 25 25]" {
		t.Errorf("after adding v4 and splitting evenly: %v, want [25 25 25 25]", got)
	}
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#act-reason"), "add the v4 feature set to the test"))
	viewportShot(t, ctx, "split-dialog-1280")
	do(t, ctx, chromedp.Click(chromedp.CSS("#act-submit")))
	waitFor(t, ctx, "the split dialog to close", `!document.querySelector('dialog[open]')`)
	if calls := si.actionCalls(); len(calls) != 2 || calls[1].Verb != "split" || fmt.Sprint(calls[1].Body["weights"]) != "[map[subset:v1 weight:25] map[subset:v2 weight:25] map[subset:v3 weight:25] map[subset:v4 weight:25]]" {
		t.Errorf("split request = %+v, want four subsets at 25", calls[len(calls)-1])
	}

	// The split arithmetic keeps a total of 100 for any number of subsets.
	failures := eval[[]string](t, ctx, `import('/js/split.js').then((m) => {
	  const bad = [];
	  for (let k = 0; k < 3000; k++) {
	    const n = 1 + Math.floor(Math.random() * 16);
	    const start = m.normalize(Array.from({ length: n }, () => Math.random() < 0.3 ? 0 : Math.floor(Math.random() * 100)));
	    const i = Math.floor(Math.random() * n);
	    const v = Math.floor(Math.random() * 140) - 20;
	    for (const w of [start, m.rebalance(start, i, v), m.remove(start, i), m.even(n)]) {
	      const total = w.reduce((a, b) => a + b, 0);
	      if ((w.length && total !== 100) || w.some((x) => x < 0 || x > 100 || !Number.isInteger(x))) bad.push(JSON.stringify({ start, i, v, w }));
	    }
	  }
	  return bad.slice(0, 5);
	})`)
	if len(failures) > 0 {
		t.Errorf("split arithmetic broke the total of 100: %v", failures)
	}

	// An experiment's card, live outcome and history.
	checkExperimentCard(t, ctx, srv.URL, si)

	// Gates: the waiting approval, Approve with a reason, who approved.
	checkGatesCard(t, ctx, srv.URL, si)

	// When the server becomes unreachable, a banner says so; retry recovers.
	do(t, ctx, chromedp.Navigate(srv.URL+"/#/rollouts/ml/fraud"))
	waitFor(t, ctx, "the rollout page", `document.querySelectorAll('.chart path.series').length === 2`)
	si.setDown(true)
	waitFor(t, ctx, "the offline banner", `document.querySelector('#banner').offsetHeight > 0 && document.querySelector('#banner').innerText.includes('Server unreachable')`)
	screenshot(t, ctx, "offline-1280")
	si.setDown(false)
	do(t, ctx, chromedp.Click(chromedp.CSS("#retry")))
	waitFor(t, ctx, "the banner to go", `document.querySelector('#banner').offsetHeight === 0`)

	// At phone width nothing overflows sideways.
	do(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	do(t, ctx, chromedp.Navigate(srv.URL+"/#/"), chromedp.Navigate(srv.URL+"/#/rollouts/ml/fraud"))
	eval[any](t, ctx, `document.querySelector('#toast').replaceChildren()`)
	waitFor(t, ctx, "the rollout page at phone width", `document.querySelectorAll('.chart path.series').length === 2`)
	if w := eval[int](t, ctx, `Math.round(document.querySelector('svg.chart').getBoundingClientRect().width - Number(document.querySelector('svg.chart').getAttribute('width'))) | 0`); w != 0 {
		t.Errorf("the chart is drawn for another width and scaled by %d px: its text would be unreadable", w)
	}
	overflow := `document.documentElement.scrollWidth - document.documentElement.clientWidth`
	if o := eval[int](t, ctx, overflow); o > 0 {
		t.Errorf("rollout page overflows the phone screen by %d px", o)
	}
	viewportShot(t, ctx, "rollout-phone")
	screenshot(t, ctx, "rollout-phone-full")
	checkExperimentPhone(t, ctx, srv.URL)
	do(t, ctx, chromedp.Navigate(srv.URL+"/#/"))
	waitFor(t, ctx, "the list at phone width", rowCount+` === 7`)
	if o := eval[int](t, ctx, overflow); o > 0 {
		t.Errorf("list overflows the phone screen by %d px", o)
	}
	viewportShot(t, ctx, "list-phone")
	do(t, ctx, chromedp.EmulateViewport(1280, 900))

	// A viewer sees no action buttons.
	do(t, ctx, chromedp.Click(chromedp.CSS("#sign-out")))
	signIn(viewerToken)
	waitFor(t, ctx, "the list for the viewer", rowCount+` === 7`)
	do(t, ctx, chromedp.Navigate(srv.URL+"/#/rollouts/ml/fraud"))
	waitFor(t, ctx, "the rollout page for the viewer", `!!document.querySelector('.facts') && (document.querySelector('#user')?.innerText || '').includes('viewer')`)
	time.Sleep(200 * time.Millisecond) // whoami and the snapshot are in; let a late render land
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-action], .actions').length`); n != 0 {
		t.Errorf("viewer sees %d action controls, want none", n)
	}
	checkGatesViewer(t, ctx, srv.URL, si)

	if os.Getenv("FULCRUM_UPDATE_DOC_IMAGES") != "" {
		// The list and rollout images in docs come from the live test
		// (e2etest); this one shows analysis rounds, which a run without
		// metrics has none of.
		for src, dst := range map[string]string{rolloutShot: "dashboard-analysis.png"} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(repoRoot(t), "docs", "images", dst), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// advance moves a rollout to step with the given weights, as the controller
// would, recording the transition in its history.
func advance(r *fulcrumv1.ModelRollout, step int32, stable, candidate int32) {
	now := metav1.Now()
	r.Status.Step = ptr(step)
	r.Status.StepStartedAt = &now
	r.Status.Weights = weights("v1", int(stable), "v2", int(candidate))
	r.Status.CandidateWeight = candidate
	r.Status.Message = fmt.Sprintf("Step %d of 5 (%d%%): analysing", step+1, candidate)
	r.Status.History = append(r.Status.History, fulcrumv1.HistoryEntry{
		Time: now, Type: "StepAdvanced", From: fulcrumv1.PhaseProgressing, To: fulcrumv1.PhaseProgressing,
		Step: ptr(step), Weights: r.Status.Weights, Actor: "fulcrum", Reason: "round passed",
	})
}
