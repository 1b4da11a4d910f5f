package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// binom draws Binomial(n, p): by geometric gaps between successes when few
// are expected (fast and exact), else with gonum.
func binom(r *rand.Rand, n int64, p float64) int64 {
	switch {
	case n <= 0 || p <= 0:
		return 0
	case p >= 1:
		return n
	case float64(n)*p > 30:
		return int64(distuv.Binomial{N: float64(n), P: p, Src: r}.Rand())
	}
	lq := math.Log1p(-p)
	var k, i int64
	for {
		i += int64(math.Log(1-r.Float64())/lq) + 1
		if i > n {
			return k
		}
		k++
	}
}

// tolerance is three binomial standard errors of a rate alpha over n streams.
func tolerance(alpha float64, n int) float64 {
	return 3 * math.Sqrt(alpha*(1-alpha)/float64(n))
}

// The false-rollback bound under repeated looks within one split: 4,000
// streams with equal rates, looked at after every round for 100 rounds,
// must cross the rejection line no more often than alpha (plus sampling
// tolerance). property_test.go checks whole rollouts of several steps.
func TestWorseTestKeepsAlphaUnderEveryLook(t *testing.T) {
	streams, rounds := 4000, 100
	if testing.Short() {
		streams = 1000
	}
	for _, tc := range []struct {
		name         string
		p            float64
		cand, stable int64 // requests per round
		alpha        float64
	}{
		{"2% at a 10% split, alpha 5%", 0.02, 20, 180, 0.05},
		{"0.5% at a 1% split, alpha 1%", 0.005, 10, 990, 0.01},
		{"10% at a 50% split, alpha 5%", 0.10, 20, 20, 0.05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(tc.cand)))
			limit := math.Log(1 / tc.alpha)
			rejected := 0
			for s := 0; s < streams; s++ {
				var c, st Counts
				for k := 0; k < rounds; k++ {
					c.Total += tc.cand
					c.Bad += binom(r, tc.cand, tc.p)
					st.Total += tc.stable
					st.Bad += binom(r, tc.stable, tc.p)
					if LogEvidenceWorse(Segment{c, st}) >= limit {
						rejected++
						break
					}
				}
			}
			rate := float64(rejected) / float64(streams)
			t.Logf("false-rollback rate %.4f over %d streams (alpha %.3f)", rate, streams, tc.alpha)
			if rate > tc.alpha+tolerance(tc.alpha, streams) {
				t.Errorf("false-rollback rate %.4f exceeds alpha %.3f", rate, tc.alpha)
			}
		})
	}
}

// A candidate better than stable is rejected even less often.
func TestWorseTestHoldsForBetterCandidate(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	const streams = 2000
	rejected := 0
	for s := 0; s < streams; s++ {
		var c, st Counts
		for k := 0; k < 100; k++ {
			c.Total += 20
			c.Bad += binom(r, 20, 0.01)
			st.Total += 180
			st.Bad += binom(r, 180, 0.02)
			if LogEvidenceWorse(Segment{c, st}) >= math.Log(20) {
				rejected++
				break
			}
		}
	}
	if rate := float64(rejected) / streams; rate > 0.01 {
		t.Errorf("better candidate rejected in %.3f of streams", rate)
	}
}

// Power: a 4x error rate is caught, and quickly.
func TestWorseTestCatchesRegression(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	const streams = 500
	caught, samples := 0, int64(0)
	for s := 0; s < streams; s++ {
		var c, st Counts
		for k := 0; k < 200; k++ {
			c.Total += 10
			c.Bad += binom(r, 10, 0.02)
			st.Total += 990
			st.Bad += binom(r, 990, 0.005)
			if LogEvidenceWorse(Segment{c, st}) >= math.Log(100) {
				caught++
				samples += c.Total
				break
			}
		}
	}
	mean := float64(samples) / float64(max(caught, 1))
	t.Logf("caught %d/%d, mean %.0f candidate requests (Wald's SPRT: 351)", caught, streams, mean)
	if caught < streams*99/100 {
		t.Errorf("caught only %d of %d regressions within 2,000 candidate requests", caught, streams)
	}
	if mean > 2*351 {
		t.Errorf("mean %.0f candidate requests to decide, more than twice Wald's 351", mean)
	}
}

// The confidence sequences cover the true rate at every look.
func TestBoundsCoverAtEveryLook(t *testing.T) {
	if testing.Short() {
		t.Skip("bisection per look; run without -short")
	}
	const streams, alpha = 1000, 0.05
	for _, p := range []float64{0.005, 0.05} {
		r := rand.New(rand.NewPCG(10, uint64(p*1000)))
		missLo, missHi := 0, 0
		for s := 0; s < streams; s++ {
			var x, n int64
			lo, hi := false, false
			for k := 0; k < 40; k++ {
				n += 50
				x += binom(r, 50, p)
				if !lo && LowerBound(x, n, alpha) > p {
					lo = true
				}
				if !hi && UpperBound(x, n, alpha) < p {
					hi = true
				}
			}
			if lo {
				missLo++
			}
			if hi {
				missHi++
			}
		}
		for name, m := range map[string]int{"lower": missLo, "upper": missHi} {
			if rate := float64(m) / streams; rate > alpha+tolerance(alpha, streams) {
				t.Errorf("p=%v: %s bound missed in %.3f of streams, above %.2f", p, name, rate, alpha)
			}
		}
	}
}

// The NotWorse decision: a candidate exactly maxIncrease worse is passed
// no more often than alpha.
func TestNotWorseFalsePassBound(t *testing.T) {
	if testing.Short() {
		t.Skip("bisection per look; run without -short")
	}
	const streams, alpha, delta = 1000, 0.05, 0.01
	r := rand.New(rand.NewPCG(11, 11))
	passed := 0
	for s := 0; s < streams; s++ {
		var c, st Counts
		for k := 0; k < 30; k++ {
			c.Total += 200
			c.Bad += binom(r, 200, 0.02+delta)
			st.Total += 800
			st.Bad += binom(r, 800, 0.02)
			if SequentialDecision([]Segment{{c, st}}, delta, alpha).Decision == NotWorse {
				passed++
				break
			}
		}
	}
	if rate := float64(passed) / streams; rate > alpha+tolerance(alpha, streams) {
		t.Errorf("false pass rate %.3f above alpha %.2f", rate, alpha)
	}
}

func TestSequentialDecisions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cand, stab Counts
		want       Decision
	}{
		{"no data", Counts{}, Counts{}, Undecided},
		{"clearly worse", Counts{Bad: 60, Total: 1000}, Counts{Bad: 50, Total: 10000}, Worse},
		{"clearly fine", Counts{Bad: 50, Total: 20000}, Counts{Bad: 250, Total: 100000}, NotWorse},
		{"too little", Counts{Bad: 1, Total: 100}, Counts{Bad: 50, Total: 10000}, Undecided},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Sequential([]Segment{{tc.cand, tc.stab}}, 0.005, 0.01)
			if got.Decision != tc.want {
				t.Fatalf("decision %v, want %v (%+v)", got.Decision, tc.want, got)
			}
			if got.Lower > got.Upper {
				t.Errorf("bounds [%v, %v] are crossed", got.Lower, got.Upper)
			}
			if tc.want == Undecided && tc.cand.Total > 0 && got.SamplesNeeded <= 0 {
				t.Errorf("undecided without an estimate of samples needed: %+v", got)
			}
		})
	}
}

func TestSamplesNeededIsEnough(t *testing.T) {
	c, s := Counts{Bad: 2, Total: 100}, Counts{Bad: 50, Total: 10000}
	got := Sequential([]Segment{{c, s}}, 0.005, 0.01)
	if got.Decision != Undecided || got.SamplesNeeded <= 0 {
		t.Fatalf("want undecided with an estimate, got %+v", got)
	}
	// Feeding the projected counts decides.
	m := float64(got.SamplesNeeded)
	c2 := Counts{Bad: c.Bad + int64(math.Round(0.02*m)), Total: c.Total + int64(m)}
	s2 := Counts{Bad: s.Bad + int64(math.Round(0.005*100*m)), Total: s.Total + int64(100*m)}
	if d := SequentialDecision([]Segment{{c2, s2}}, 0.005, 0.01).Decision; d == Undecided {
		t.Errorf("after %d more samples at the observed rates still undecided", got.SamplesNeeded)
	}
}
