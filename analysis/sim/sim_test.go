package sim

import (
	"math"
	"testing"
)

// The targets, on fewer seeds than the published table so the test
// stays quick; the command prints the table.
func TestFulcrumMeetsTargetsAgainstFlagger(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates a few hundred rollouts")
	}
	policies := []Policy{DefaultFlagger, DefaultFulcrum}
	bad := Evaluate(Scenario{Name: "bad", RPS: 1000, StableP: 0.005, CandidateP: 0.02}, policies, 200, 7200, 2)
	flagger, fulcrum := bad[0], bad[1]
	if fulcrum.RolledBack != fulcrum.Runs {
		t.Errorf("bad at 1000 rps: fulcrum rolled back %d of %d", fulcrum.RolledBack, fulcrum.Runs)
	}
	if fulcrum.MeanErrors*10 > flagger.MeanErrors {
		t.Errorf("bad at 1000 rps: fulcrum served %.1f errors, flagger %.1f: want at least 10x fewer", fulcrum.MeanErrors, flagger.MeanErrors)
	}
	sprt := SPRTExpectedSamples(0.005, 0.02, 0.01, 0.01, 0.02)
	if fulcrum.MeanRequests > 2*sprt {
		t.Errorf("bad at 1000 rps: %.0f candidate requests, more than twice SPRT's %.0f", fulcrum.MeanRequests, sprt)
	}
	healthy := Evaluate(Scenario{Name: "healthy", RPS: 1000, StableP: 0.005, CandidateP: 0.005}, []Policy{DefaultFulcrum, PeerFulcrum}, 200, 7200, 2)
	for _, h := range healthy {
		if h.RolledBack > 2 { // 1% of 200
			t.Errorf("healthy at 1000 rps: %s: %d false rollbacks in 200", h.Policy, h.RolledBack)
		}
	}
	// The goal: promote a healthy model in under 50s, faster than
	// Argo Rollouts (50-51s) and Flagger (82s) on the peers' schedule.
	if s := healthy[0].MeanSeconds; s >= 50 {
		t.Errorf("healthy at 1000 rps: promoted after %.0fs with the README's configuration, want under 50s", s)
	}
	if s := healthy[1].MeanSeconds; s >= 50 {
		t.Errorf("healthy at 1000 rps: promoted after %.0fs on 10%% steps, want under 50s", s)
	}
	low := Evaluate(Scenario{Name: "bad", RPS: 1, StableP: 0.005, CandidateP: 0.02}, policies, 40, 7200, 2)
	if low[1].Promoted != 0 {
		t.Errorf("bad at 1 rps: fulcrum promoted %d of %d", low[1].Promoted, low[1].Runs)
	}
	if low[0].Promoted < low[0].Runs/2 {
		t.Errorf("bad at 1 rps: flagger promoted only %d of %d; the comparison assumes it mostly does", low[0].Promoted, low[0].Runs)
	}
}

func TestUndecidedRunsReportSamplesNeeded(t *testing.T) {
	r := DefaultFulcrum.Run(Scenario{RPS: 1, StableP: 0.005, CandidateP: 0.005}, 1, 1200)
	if r.Outcome != Paused || r.SamplesNeeded < 1000 || r.ETASeconds < 1000 {
		t.Errorf("healthy at 1 rps: %+v, want paused by the inconclusive limit, saying thousands of samples and an hour or more are needed", r)
	}
	// At 1 request/s a look serves a handful of requests: the exposure
	// budget lets the steps up to 50% (never to 100%) to bring evidence.
	if r.MaxWeight != 50 {
		t.Errorf("healthy at 1 rps: reached %v%%, want 50%%", r.MaxWeight)
	}
}

// Without the exposure budget, a step waits for its evidence: at 1,000
// requests/s and 1% that is minutes, which is why the budget exists.
func TestBudgetZeroWaitsForEvidence(t *testing.T) {
	f := DefaultFulcrum
	f.NoBudget = true
	r := f.Run(Scenario{RPS: 1000, StableP: 0.005, CandidateP: 0.005}, 1, 3600)
	withBudget := DefaultFulcrum.Run(Scenario{RPS: 1000, StableP: 0.005, CandidateP: 0.005}, 1, 3600)
	if r.Outcome != Promoted || withBudget.Outcome != Promoted || r.Seconds < 2*withBudget.Seconds {
		t.Errorf("budget 0: %+v; default budget: %+v; want both promoted, the first much later", r, withBudget)
	}
}

func TestSPRTReference(t *testing.T) {
	if got := SPRTExpectedSamples(0.005, 0.02, 0.01, 0.01, 0.02); math.Abs(got-351) > 1 {
		t.Errorf("Wald ASN for 0.5%% vs 2%% at 2%% = %.1f, want about 351 (the design's figure)", got)
	}
}

func TestFlaggerFixedRule(t *testing.T) {
	// Perfect candidate: five passed checks, 10..50%, promote at 5 minutes.
	r := DefaultFlagger.Run(Scenario{RPS: 1000, StableP: 0, CandidateP: 0}, 1, 3600)
	if r.Outcome != Promoted || r.Seconds != 300 {
		t.Errorf("%+v, want promoted after 300 s", r)
	}
	// Always failing: five failed checks at 10%, roll back at 5 minutes.
	r = DefaultFlagger.Run(Scenario{RPS: 1000, StableP: 0, CandidateP: 0.5}, 1, 3600)
	if r.Outcome != RolledBack || r.Seconds != 300 {
		t.Errorf("%+v, want rolled back after 300 s", r)
	}
}
