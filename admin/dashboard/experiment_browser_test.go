package dashboard_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// checkExperimentCard is the experiment's part of TestDashboardInBrowser:
// given ml/recs running an experiment, its page shows the Experiment card
// with one row per arm and the interval chart; when the controller decides,
// the winner and its reason appear without a reload, and the history reads
// the ExperimentEnded entry.
func checkExperimentCard(t *testing.T, ctx context.Context, url string, si *standIn) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(url+"/#/rollouts/ml/recs"))
	waitFor(t, ctx, "the Experiment card with three arms", `document.querySelectorAll('table.arms tbody tr').length === 3`)
	row := func(arm string) string {
		return eval[string](t, ctx, `(document.querySelector('table.arms tr[data-arm="`+arm+`"]')?.innerText || '').replace(/\s+/g, ' ')`)
	}
	for arm, wants := range map[string][]string{
		"v1": {"v1 (control)", "40%", "15200", "0.101 [0.095, 0.107]", "—"},
		"v2": {"30%", "11400", "0.128 [0.121, 0.135]", "+0.027 [+0.018, +0.036]"},
		"v3": {"30%", "11350", "0.104 [0.097, 0.111]", "+0.003 [-0.006, +0.012]"},
	} {
		got := row(arm)
		for _, want := range wants {
			if !strings.Contains(got, want) {
				t.Errorf("arm %s row = %q, want %q in it", arm, got, want)
			}
		}
	}
	card := eval[string](t, ctx, `document.querySelector('section[aria-labelledby="s-experiment"]')?.innerText || ''`)
	for _, want := range []string{"Running", "Cookie: fulcrum-exp-recs", "model-feedback (Proportion), min effect 0.01", "the decision waits for spec.strategy.experiment.minDuration"} {
		if !strings.Contains(card, want) {
			t.Errorf("Experiment card lacks %q:\n%s", want, card)
		}
	}
	if head := eval[string](t, ctx, `document.querySelector('table.arms thead').textContent`); !strings.Contains(head, "Lift vs v1 [lower, upper]") {
		t.Errorf("arms table head = %q, want the lift named against the control v1", head)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('svg.exp-chart g.arm').length`); n != 3 {
		t.Errorf("interval chart draws %d arms, want 3", n)
	}
	if !eval[bool](t, ctx, `!!document.querySelector('svg.exp-chart line.control-line') && document.querySelector('svg.exp-chart desc').textContent.includes('v2 0.128 [0.121, 0.135]')`) {
		t.Error("interval chart lacks the control's reference line or a description of the arms")
	}
	if steps := eval[string](t, ctx, `document.querySelector('section[aria-labelledby="s-steps"]').innerText`); !strings.Contains(steps, "An experiment has no steps") {
		t.Errorf("Steps card = %q, want it to say an experiment has no steps", steps)
	}
	if bad := eval[[]string](t, ctx, unlabelledControls); len(bad) > 0 {
		t.Errorf("experiment page has controls without a label: %v", bad)
	}

	// When the controller names v2 the winner, the page says so live.
	si.update("ml", "recs", experimentDecided)
	waitFor(t, ctx, "the winner on the Experiment card", `(document.querySelector('.exp-winner')?.innerText || '') === 'v2'`)
	result := eval[string](t, ctx, `document.querySelector('.exp-result').innerText`)
	if !strings.Contains(result, "v2 won against the control v1.") || !strings.Contains(result, experimentReason) {
		t.Errorf("outcome = %q, want the winner and the reason", result)
	}
	if o := eval[string](t, ctx, `document.querySelector('.exp-outcome').innerText`); o != "Winner" {
		t.Errorf("outcome badge = %q, want Winner", o)
	}
	if got := row("v2"); !strings.Contains(got, "winner") {
		t.Errorf("v2 row = %q, want it marked the winner", got)
	}
	ended := eval[string](t, ctx, `([...document.querySelectorAll('table.history tbody tr')].find((tr) => tr.innerText.includes('ExperimentEnded'))?.innerText || '').replace(/\s+/g, ' ')`)
	for _, want := range []string{"Progressing → ManualSplit", "v1 40% · v2 30% · v3 30%", "fulcrum", "experiment: v2 beats v1 by 0.027", "the split is kept until a person acts"} {
		if !strings.Contains(ended, want) {
			t.Errorf("ExperimentEnded history row = %q, want %q in it", ended, want)
		}
	}
	if steps := eval[[]string](t, ctx, `[...document.querySelectorAll('table.history td[data-label="Step"]')].map((td) => td.innerText)`); strings.Join(steps, "") != strings.Repeat("—", len(steps)) {
		t.Errorf("history steps of an experiment = %v, want none shown", steps)
	}
	screenshot(t, ctx, "experiment-1280")
}

// checkExperimentPhone: at phone width the Experiment card fits the screen.
func checkExperimentPhone(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(url+"/#/rollouts/ml/recs"))
	waitFor(t, ctx, "the Experiment card at phone width", `!!document.querySelector('svg.exp-chart')`)
	if o := eval[int](t, ctx, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); o > 0 {
		t.Errorf("experiment page overflows the phone screen by %d px", o)
	}
	screenshot(t, ctx, "experiment-phone-full")
}
