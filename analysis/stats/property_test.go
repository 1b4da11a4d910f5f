package stats

import (
	"flag"
	"math"
	"math/rand/v2"
	"testing"
)

// The rollout-wide guarantees, checked on simulated rollouts: several steps
// with different traffic splits, a look after every batch of requests, and
// steps that advance on what the data say. Run a longer version with
//
//	go test ./analysis/stats -run Property -v -property-rollouts 100000
var propertyRollouts = flag.Int("property-rollouts", 0, "simulated rollouts per property scenario (default 3000, 600 with -short)")

func rollouts() int {
	switch {
	case *propertyRollouts > 0:
		return *propertyRollouts
	case testing.Short():
		return 600
	}
	return 3000
}

// rolloutScenario is the traffic of one simulated rollout.
type rolloutScenario struct {
	name string
	// shares are the candidate's share of requests at each step.
	shares []float64
	// perLook is the mean number of requests between looks (Poisson).
	perLook float64
	// maxLooks per step: a step that has not advanced by then does.
	maxLooks int
	ps, pc   float64
	alpha    float64
	delta    float64
}

// look draws one batch of requests at share a into the current step.
func (sc rolloutScenario) look(r *rand.Rand, cur *Segment, a float64) {
	n := poisson(r, sc.perLook)
	c := binom(r, n, a)
	cur.Candidate.Total += c
	cur.Candidate.Bad += binom(r, c, sc.pc)
	cur.Stable.Total += n - c
	cur.Stable.Bad += binom(r, n-c, sc.ps)
}

func poisson(r *rand.Rand, mean float64) int64 {
	if mean > 200 {
		return max(0, int64(math.Round(mean+math.Sqrt(mean)*r.NormFloat64())))
	}
	// Knuth's product of uniforms, fine for small means.
	l, k, p := math.Exp(-mean), int64(0), r.Float64()
	for p > l {
		k++
		p *= r.Float64()
	}
	return k
}

// zWorse is a control that must break the bound: a one-sided fixed-sample
// two-proportion z-test on the pooled counts, repeated at every look.
func zWorse(c, s Counts, alpha float64) bool {
	if c.Total == 0 || s.Total == 0 || c.Bad+s.Bad == 0 {
		return false
	}
	p := float64(c.Bad+s.Bad) / float64(c.Total+s.Total)
	se := math.Sqrt(p * (1 - p) * (1/float64(c.Total) + 1/float64(s.Total)))
	return (c.Rate()-s.Rate())/se > zQuantile(1-alpha)
}

// zQuantile is the standard normal quantile (Acklam-free: bisection on erfc).
func zQuantile(p float64) float64 {
	lo, hi := -10.0, 10.0
	for i := 0; i < 80; i++ {
		m := (lo + hi) / 2
		if 0.5*math.Erfc(-m/math.Sqrt2) < p {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// False rollback: a candidate exactly as good as stable (the boundary of
// "no worse", the hardest case for the test) is rolled back at some look of
// some step with probability at most alpha. Steps advance when the data
// look good for the candidate (E below 1), else after maxLooks looks, so the
// splits depend on the data, as they do in the controller.
func TestPropertyFalseRollbackAcrossSteps(t *testing.T) {
	n := rollouts()
	for i, sc := range []rolloutScenario{
		{name: "README steps 1-5-25-50%, 0.5% errors, alpha 5%", shares: []float64{0.01, 0.05, 0.25, 0.5}, perLook: 2000, maxLooks: 12, ps: 0.005, pc: 0.005, alpha: 0.05},
		{name: "10% steps to 50%, 2% errors, alpha 5%", shares: []float64{0.1, 0.2, 0.3, 0.4, 0.5}, perLook: 300, maxLooks: 10, ps: 0.02, pc: 0.02, alpha: 0.05},
		{name: "10% steps to 50%, 2% errors, alpha 1%", shares: []float64{0.1, 0.2, 0.3, 0.4, 0.5}, perLook: 300, maxLooks: 10, ps: 0.02, pc: 0.02, alpha: 0.01},
		{name: "low traffic, 20 looks per step, alpha 5%", shares: []float64{0.05, 0.25, 0.5}, perLook: 40, maxLooks: 20, ps: 0.05, pc: 0.05, alpha: 0.05},
	} {
		t.Run(sc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(21, uint64(i)))
			limit := math.Log(1 / sc.alpha)
			rejected, naive, looks := 0, 0, 0
			for range n {
				var w WorseTest
				var closedC, closedS Counts
				fired, zFired := false, false
				for _, a := range sc.shares {
					var cur Segment
					for k := 1; k <= sc.maxLooks; k++ {
						sc.look(r, &cur, a)
						looks++
						logE := w.LogEvidence(cur)
						if logE >= limit {
							fired = true
							break
						}
						if !zFired && zWorse(closedC.Add(cur.Candidate), closedS.Add(cur.Stable), sc.alpha) {
							zFired = true
						}
						if logE < 0 && k >= sc.maxLooks/2 {
							break // looks good: the controller would move on
						}
					}
					if fired {
						break
					}
					w.Add(cur)
					closedC, closedS = closedC.Add(cur.Candidate), closedS.Add(cur.Stable)
				}
				if fired {
					rejected++
				}
				if zFired {
					naive++
				}
			}
			rate, zRate := float64(rejected)/float64(n), float64(naive)/float64(n)
			t.Logf("false rollbacks %d/%d = %.4f (alpha %.2f, %.1f looks per rollout); a fixed-sample z-test at every look: %.4f",
				rejected, n, rate, sc.alpha, float64(looks)/float64(n), zRate)
			if rate > sc.alpha+tolerance(sc.alpha, n) {
				t.Errorf("false-rollback rate %.4f exceeds alpha %.2f by more than sampling noise (%.4f)", rate, sc.alpha, tolerance(sc.alpha, n))
			}
			// The control shows the harness can see a broken bound: the
			// naive test, looked at as often, must exceed alpha clearly.
			if zRate <= sc.alpha+tolerance(sc.alpha, n) {
				t.Errorf("control: the repeated z-test stayed within alpha (%.4f): the scenario has too few looks to tell a valid test from an invalid one", zRate)
			}
		})
	}
}

// False promotion: a candidate exactly maxIncrease worse than stable reaches
// NotWorse (the evidence to advance and promote) at some look of some step
// with probability at most alpha, with the confidence sequences pooled over
// every step of the rollout.
func TestPropertyFalsePromotionAcrossSteps(t *testing.T) {
	n := rollouts()
	for i, sc := range []rolloutScenario{
		{name: "10% steps to 50%, stable 2%, candidate 3%, alpha 5%", shares: []float64{0.1, 0.2, 0.3, 0.4, 0.5}, perLook: 400, maxLooks: 8, ps: 0.02, pc: 0.03, alpha: 0.05, delta: 0.01},
		{name: "steps 5-25-50%, stable 10%, candidate 15%, alpha 20%", shares: []float64{0.05, 0.25, 0.5}, perLook: 300, maxLooks: 12, ps: 0.10, pc: 0.15, alpha: 0.2, delta: 0.05},
	} {
		t.Run(sc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(22, uint64(i)))
			promoted, naive, looks := 0, 0, 0
			ac, as := sc.alpha*(1-stableShare), sc.alpha*stableShare
			for range n {
				var segs []Segment
				fired, zFired := false, false
				for _, a := range sc.shares {
					segs = append(segs, Segment{})
					cur := &segs[len(segs)-1]
					for range sc.maxLooks {
						sc.look(r, cur, a)
						looks++
						c, s := Pooled(segs)
						if screen(c, s, sc.delta, ac, as) && SequentialDecision(segs, sc.delta, sc.alpha).Decision == NotWorse {
							fired = true
							break
						}
						if !zFired && zNotWorse(c, s, sc.delta, sc.alpha) {
							zFired = true
						}
					}
					if fired {
						break
					}
				}
				if fired {
					promoted++
				}
				if zFired {
					naive++
				}
			}
			rate, zRate := float64(promoted)/float64(n), float64(naive)/float64(n)
			t.Logf("false promotions %d/%d = %.4f (alpha %.2f, %.1f looks per rollout); a fixed-sample interval at every look: %.4f",
				promoted, n, rate, sc.alpha, float64(looks)/float64(n), zRate)
			if rate > sc.alpha+tolerance(sc.alpha, n) {
				t.Errorf("false-promotion rate %.4f exceeds alpha %.2f by more than sampling noise", rate, sc.alpha)
			}
			if zRate <= sc.alpha+tolerance(sc.alpha, n) {
				t.Errorf("control: the repeated fixed-sample interval stayed within alpha (%.4f)", zRate)
			}
		})
	}
}

// zNotWorse is the control for false promotion: a one-sided Wald interval on
// the difference of rates below delta, repeated at every look.
func zNotWorse(c, s Counts, delta, alpha float64) bool {
	if c.Total == 0 || s.Total == 0 {
		return false
	}
	pc, ps := c.Rate(), s.Rate()
	se := math.Sqrt(pc*(1-pc)/float64(c.Total) + ps*(1-ps)/float64(s.Total))
	return pc-ps+zQuantile(1-alpha)*se < delta
}

// screen is a necessary condition for NotWorse that costs one or two
// mixtures instead of four bisections: NotWorse means U_c < L_s + δ, and
// L_s <= stable's observed rate, so the candidate's evidence must reject
// q = rate_s + δ, and then q = L_s + δ.
func screen(c, s Counts, delta, ac, as float64) bool {
	if c.Total == 0 || s.Total == 0 {
		return false
	}
	rejects := func(q float64) bool {
		return q < 1 && mixture(float64(c.Bad), float64(c.Total), q, down) >= math.Log(1/ac)
	}
	return rejects(s.Rate()+delta) && rejects(LowerBound(s.Bad, s.Total, as)+delta)
}

// The screen never misses a NotWorse the decision makes.
func TestNotWorseScreenIsNecessary(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 1))
	const alpha, delta = 0.05, 0.01
	ac, as := alpha*(1-stableShare), alpha*stableShare
	for range 300 {
		segs := []Segment{{}, {}}
		for i := range segs {
			n := int64(r.IntN(20000))
			c := binom(r, n, 0.1+0.3*float64(i))
			segs[i] = Segment{Counts{binom(r, c, 0.02), c}, Counts{binom(r, n-c, 0.02), n - c}}
		}
		c, s := Pooled(segs)
		if SequentialDecision(segs, delta, alpha).Decision == NotWorse && !screen(c, s, delta, ac, as) {
			t.Fatalf("NotWorse at %+v but the screen said no", segs)
		}
	}
}
