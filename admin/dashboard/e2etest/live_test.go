package e2etest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fulcrum-ml/fulcrum/admin/admintest"
	"github.com/fulcrum-ml/fulcrum/admin/dashboard/internal/browsertest"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

// minStep is how long each canary step lasts at least: long enough to see
// the first step in the browser and to roll back before the last one.
const minStep = 20 * time.Second

// TestDashboardLive: an ML engineer watches a real canary move in the
// dashboard and rolls it back from the browser; the controller puts all
// traffic back on v1; a viewer sees the rollout but no action, and the API
// refuses the viewer's own rollback request. Set FULCRUM_UPDATE_DOC_IMAGES=1
// to copy this run's screenshots to docs/images.
func TestDashboardLive(t *testing.T) {
	needEnv(t)
	began := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	ctx := context.Background()
	engineerToken, err := env.UserToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	viewerToken, err := env.UserToken("vera")
	if err != nil {
		t.Fatal(err)
	}
	if err := admintest.InstallRoles(ctx, env.Client); err != nil {
		t.Fatal(err)
	}
	url := startFulcrum(t)
	m := newModel(t, ctx)
	key := m.ns + "/" + m.name
	step("Fulcrum running, model " + key + " with Ready v1 and v2 pods")

	browser := browsertest.NewBrowser(t, chromiumPath())
	do := func(steps ...chromedp.Action[chromedp.Void]) { t.Helper(); browsertest.Do(t, browser, steps...) }
	waitFor := func(what, js string) { t.Helper(); browsertest.WaitFor(t, browser, what, js) }
	eval := func(js string) string { t.Helper(); return browsertest.Eval[string](t, browser, js) }
	signIn := func(token string) {
		t.Helper()
		do(chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), token),
			chromedp.Click(chromedp.CSS("form.signin button[type=submit]")))
	}
	row := fmt.Sprintf(`document.querySelector('tr[data-key="%s"]')`, key)
	rowText := fmt.Sprintf(`(%s?.innerText || '')`, row)
	// The width of the candidate's segment of the weight bar, e.g. "10%".
	barWidth := fmt.Sprintf(`(%s?.querySelector('.wseg[title^="v2 "]')?.style.width || '')`, row)
	dir := artifactDir(t)

	// Given the engineer signed in, with no rollout yet.
	do(chromedp.Navigate(url + "/"))
	signIn(engineerToken)
	waitFor("the empty list", `(document.querySelector('.count')?.innerText || '').startsWith('0 of 0')`)
	if who := eval(`document.querySelector('#user .who')?.innerText || ''`); who != "alice" {
		t.Errorf("signed-in user shown as %q, want alice", who)
	}
	eval(`window.__noReload = 'still here'; ''`)
	// Count rows highlighted as changed live.
	eval(`window.__flashes = [];
	  new MutationObserver((ms) => { for (const m of ms) for (const n of m.addedNodes) {
	    if (n.nodeType === 1) for (const tr of [n, ...n.querySelectorAll('tr')]) if (tr.matches('tr.flash')) window.__flashes.push(tr.dataset.key);
	  } }).observe(document.getElementById('main'), { childList: true, subtree: true }); ''`)
	flashes := func() []string { t.Helper(); return browsertest.Eval[[]string](t, browser, `window.__flashes`) }
	step("engineer signed in, list loaded")

	// When the rollout is created, it appears and the controller's first step
	// shows without a reload.
	m.rollout(ctx, []int32{10, 50, 100}, minStep)
	waitFor("the rollout at its first step, 10%", rowText+`.includes('Progressing') && `+rowText+`.includes('v2 10%') && window.__noReload === 'still here'`)
	if w := eval(barWidth); w != "10%" {
		t.Errorf("candidate's weight bar is %q wide, want 10%%", w)
	}
	step("list shows v2 at 10%")
	eval(`window.__flashes = []; ''`)

	// A viewer's own rollback request is refused and changes nothing.
	before := m.get(ctx)
	code, body := post(t, url+"/api/v1/namespaces/"+m.ns+"/rollouts/"+m.name+"/rollback", viewerToken, `{"reason":"viewer tries"}`)
	if code != http.StatusForbidden {
		t.Errorf("viewer's rollback answered %d %s, want 403", code, body)
	}
	if after := m.get(ctx); after.Spec.Intent != nil || after.Generation != before.Generation || after.Status.Phase != v1alpha1.PhaseProgressing {
		t.Errorf("after the viewer's refused rollback: intent %+v, generation %d (was %d), phase %s; want no change", after.Spec.Intent, after.Generation, before.Generation, after.Status.Phase)
	}

	// Then the controller's next step reaches the page by the event stream.
	browsertest.WaitForWithin(t, browser, minStep+timeout(), "v2 at 50% without a reload",
		rowText+`.includes('v2 50%') && window.__noReload === 'still here'`)
	if w := eval(barWidth); w != "50%" {
		t.Errorf("candidate's weight bar is %q wide, want 50%%", w)
	}
	if vs := m.routeWeights(ctx); vs["v1"] != 50 || vs["v2"] != 50 {
		t.Errorf("VirtualService weights %v, want v1 50 and v2 50 as the page shows", vs)
	}
	if f := flashes(); !contains(f, key) {
		t.Errorf("rows highlighted as changed: %v, want %s after its step", f, key)
	}
	step("list shows v2 at 50%, no reload")
	waitFor("the row's highlight to fade", row+`?.classList.contains('flash') === false`)
	listShot := browsertest.Screenshot(t, browser, dir, "list-1280")

	// When the engineer rolls back from the rollout page with a reason.
	do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`a[href="#/rollouts/%s/%s"]`, m.ns, m.name))))
	waitFor("the rollout page with its chart and the rollback button",
		`document.querySelectorAll('.chart path.series').length === 2 && !!document.querySelector('button[data-action=rollback]') && window.__noReload === 'still here'`)
	if bad := browsertest.Eval[[]string](t, browser, browsertest.UnlabelledControls); len(bad) > 0 {
		t.Errorf("rollout page has controls without a label: %v", bad)
	}
	browsertest.Screenshot(t, browser, dir, "rollout-progressing-1280")
	if p := m.get(ctx).Status.Phase; p != v1alpha1.PhaseProgressing {
		t.Fatalf("rollout is %s before the rollback, want Progressing (a slow machine: raise minStep)", p)
	}
	const reason = "p99 latency regression on v2 seen in the dashboard"
	do(chromedp.Click(chromedp.CSS(`button[data-action=rollback]`)),
		chromedp.WaitVisible(chromedp.CSS("dialog[open] #act-reason")),
		chromedp.SendKeys(chromedp.CSS("#act-reason"), reason),
		chromedp.Click(chromedp.CSS("#act-confirm")))
	browsertest.ViewportShot(t, browser, dir, "rollback-dialog-1280")
	do(chromedp.Click(chromedp.CSS("#act-submit")))
	waitFor("the dialog to close", `!document.querySelector('dialog[open]')`)
	step("rollback sent from the browser")

	// Then the VirtualService sends everything to v1 and the rollout says who
	// rolled it back and why.
	m.eventually(ctx, "the VirtualService at v1 100%", func() bool {
		w := m.routeWeights(ctx)
		return w["v1"] == 100 && w["v2"] == 0
	})
	mr := m.get(ctx)
	if mr.Status.Phase != v1alpha1.PhaseRolledBack {
		m.eventually(ctx, "phase RolledBack", func() bool { mr = m.get(ctx); return mr.Status.Phase == v1alpha1.PhaseRolledBack })
	}
	if !hasEntry(mr.Status.History, "RolledBack", "alice", reason) {
		t.Errorf("history has no RolledBack entry by alice with the reason: %+v", mr.Status.History)
	}
	if got := statusWeights(mr); got["v1"] != 100 || got["v2"] != 0 {
		t.Errorf("status weights %v, want v1 100", got)
	}
	step("VirtualService at v1 100%, rollout RolledBack")

	// And the page shows it live, with the reason in the history.
	waitFor("the page to show the rollback", `document.querySelector('.facts')?.innerText.includes('RolledBack') && document.querySelector('.legend')?.innerText.includes('v1 100%') && window.__noReload === 'still here'`)
	waitFor("the reason and actor in the history", fmt.Sprintf(`[...document.querySelectorAll('table.history tbody tr')].some((tr) => tr.innerText.includes(%q) && tr.innerText.includes('alice'))`, reason))
	engineerActions := browsertest.Eval[[]string](t, browser, `[...document.querySelectorAll('[data-action]')].map((b) => b.dataset.action)`)
	if !contains(engineerActions, "start") {
		t.Errorf("engineer's actions on the rolled-back rollout = %v, want start among them", engineerActions)
	}
	steps := browsertest.Eval[[]string](t, browser, `[...document.querySelectorAll('.steps .step')].map((e) => e.className + ': ' + e.innerText.replace(/\s+/g, ' '))`)
	if len(steps) != 3 || !strings.HasPrefix(steps[0], "step done") || !strings.HasPrefix(steps[1], "step stopped") || !strings.Contains(steps[1], "rolled back at") || !strings.HasPrefix(steps[2], "step todo") {
		t.Errorf("step timeline after the rollback = %q, want step 1 done, step 2 rolled back, step 3 to do", steps)
	}
	eval(`document.querySelector('#toast').replaceChildren(); ''`)
	rolloutShot := browsertest.Screenshot(t, browser, dir, "rollout-1280")

	// At phone width nothing overflows sideways.
	overflow := `document.documentElement.scrollWidth - document.documentElement.clientWidth`
	do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	waitFor("the chart redrawn for the phone", `Math.abs(document.querySelector('svg.chart').getBoundingClientRect().width - Number(document.querySelector('svg.chart').getAttribute('width'))) < 1`)
	if o := browsertest.Eval[int](t, browser, overflow); o > 0 {
		t.Errorf("rollout page overflows the phone screen by %d px", o)
	}
	browsertest.ViewportShot(t, browser, dir, "rollout-phone")
	browsertest.Screenshot(t, browser, dir, "rollout-phone-full")
	eval(`window.__flashes = []; ''`)
	do(chromedp.Navigate(url + "/#/"))
	waitFor("the list at phone width", row+` !== null`)
	// The event stream replays every rollout when it opens; on loopback that
	// takes milliseconds, so a second is ample to catch a wrong highlight.
	if f := browsertest.Eval[[]string](t, browser, `new Promise((ok) => setTimeout(() => ok(window.__flashes), 1000))`); len(f) != 0 {
		t.Errorf("opening the list highlighted %v as changed, though nothing changed", f)
	}
	if o := browsertest.Eval[int](t, browser, overflow); o > 0 {
		t.Errorf("list overflows the phone screen by %d px", o)
	}
	browsertest.ViewportShot(t, browser, dir, "list-phone")
	do(chromedp.EmulateViewport(1280, 900))
	step("screenshots at 1280 px and phone width")

	// A viewer sees the rollout and no action button.
	do(chromedp.Click(chromedp.CSS("#sign-out")))
	signIn(viewerToken)
	waitFor("the list for the viewer", rowText+`.includes('RolledBack')`)
	do(chromedp.Navigate(fmt.Sprintf("%s/#/rollouts/%s/%s", url, m.ns, m.name)))
	waitFor("the rollout page for the viewer", `(document.querySelector('#user .who')?.innerText || '') === 'vera' && !!document.querySelector('.facts') && document.querySelector('table.history') !== null`)
	// The page draws its actions once whoami?namespace= has answered; count
	// them after that response and one more turn of the event loop.
	waitFor("the viewer's permissions", `performance.getEntriesByType('resource').some((e) => e.name.includes('/api/v1/whoami?namespace='))`)
	if n := browsertest.Eval[int](t, browser, `new Promise((ok) => setTimeout(() => ok(document.querySelectorAll('[data-action], .actions').length), 100))`); n != 0 {
		t.Errorf("viewer sees %d action controls, want none", n)
	}
	browsertest.Screenshot(t, browser, dir, "rollout-viewer-1280")
	step("viewer sees no action")

	if os.Getenv("FULCRUM_UPDATE_DOC_IMAGES") != "" {
		root, err := localenv.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		for src, dst := range map[string]string{listShot: "dashboard-list.png", rolloutShot: "dashboard-rollout.png"} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "docs", "images", dst), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func artifactDir(t *testing.T) string {
	t.Helper()
	root, err := localenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "e2e", "artifacts", "dashboard-live")
}

// post sends an action request as a client other than the dashboard would.
func post(t *testing.T, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func hasEntry(h []v1alpha1.HistoryEntry, typ, actor, reason string) bool {
	for _, e := range h {
		if e.Type == typ && e.Actor == actor && e.Reason == reason {
			return true
		}
	}
	return false
}

func statusWeights(mr *v1alpha1.ModelRollout) map[string]int32 {
	out := map[string]int32{}
	for _, w := range mr.Status.Weights {
		out[w.Subset] = w.Weight
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
