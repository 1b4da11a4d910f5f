package experiment

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// bruteDiffLower minimizes p - q over the joint set on a fine grid of p,
// taking for each p the largest q the remaining budget allows.
func bruteDiffLower(x, y arm, c float64) float64 {
	best := math.Inf(1)
	const steps = 4000
	for i := 0; i <= steps; i++ {
		p := float64(i) / steps
		rest := c - x.logM(p)
		if !(rest > y.logM(y.mean())) {
			continue
		}
		_, u := armBounds(y, rest)
		best = min(best, p-u)
	}
	return best
}

// The Lagrange walk finds the projection's minimum: never above the brute
// force (the bound is on the safe side) and within the grid's resolution.
func TestDiffLowerMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct{ xs, xn, ys, yn float64 }{
		{0, 0, 0, 0}, {0, 100, 5, 100}, {100, 100, 5, 100}, {5, 100, 100, 100},
		{5, 100, 0, 100}, {3, 10, 0, 0}, {0, 0, 7, 10}, {50, 500, 60, 500},
		{0.5, 3.2, 1.7, 2.9}, {1000, 10000, 1200, 10000},
	}
	for range 30 {
		xn, yn := float64(r.IntN(3000)), float64(r.IntN(3000))
		cases = append(cases, struct{ xs, xn, ys, yn float64 }{xn * r.Float64(), xn, yn * r.Float64(), yn})
	}
	for _, tc := range cases {
		x, y := newArm(tc.xs, tc.xn), newArm(tc.ys, tc.yn)
		c := math.Log(3 / 0.05)
		got, want := diffLower(x, y, c), bruteDiffLower(x, y, c)
		if got > want+1e-9 || got < want-2e-3 {
			t.Errorf("diffLower(%v/%v, %v/%v) = %.6f, brute force %.6f", tc.xs, tc.xn, tc.ys, tc.yn, got, want)
		}
		if m := x.mean() - y.mean(); x.n > 0 && y.n > 0 && got > m {
			t.Errorf("diffLower %.6f above the observed difference %.6f", got, m)
		}
	}
}

func TestArmBoundsContainTheMean(t *testing.T) {
	for _, tc := range []struct{ s, n float64 }{{0, 0}, {0, 10}, {10, 10}, {3, 10}, {123.4, 1000}, {5e5, 1e7}} {
		a := newArm(tc.s, tc.n)
		lo, hi := armBounds(a, math.Log(100))
		if m := a.mean(); lo > m || hi < m || lo < 0 || hi > 1 {
			t.Errorf("bounds [%v, %v] of %v/%v", lo, hi, tc.s, tc.n)
		}
	}
}

func TestDecide(t *testing.T) {
	prop := Config{MinEffect: 0.01}
	for name, tc := range map[string]struct {
		cfg      Config
		arms     []ArmData
		deadline bool
		outcome  Outcome
		winner   string
		reason   string
	}{
		"clear winner": {
			cfg:     prop,
			arms:    []ArmData{{Name: "v1", Successes: 10000, Trials: 100000}, {Name: "v2", Successes: 14000, Trials: 100000}},
			outcome: Winner, winner: "v2", reason: "v2 is higher than every other arm by more than 0.01: v2 - v1 in [",
		},
		"control wins": {
			cfg:     prop,
			arms:    []ArmData{{Name: "v1", Successes: 14000, Trials: 100000}, {Name: "v2", Successes: 10000, Trials: 100000}, {Name: "v3", Successes: 10100, Trials: 100000}},
			outcome: Winner, winner: "v1",
		},
		"lower is better": {
			cfg:     Config{MinEffect: 0.01, LowerIsBetter: true},
			arms:    []ArmData{{Name: "v1", Successes: 10000, Trials: 100000}, {Name: "v2", Successes: 14000, Trials: 100000}},
			outcome: Winner, winner: "v1", reason: "v1 is lower",
		},
		"best of three must beat both": {
			cfg:     prop,
			arms:    []ArmData{{Name: "v1", Successes: 10000, Trials: 100000}, {Name: "v2", Successes: 14000, Trials: 100000}, {Name: "v3", Successes: 14100, Trials: 100000}},
			outcome: Continue,
		},
		"no difference": {
			cfg:     Config{MinEffect: 0.02},
			arms:    []ArmData{{Name: "v1", Successes: 10000, Trials: 100000}, {Name: "v2", Successes: 10050, Trials: 100000}},
			outcome: NoDifference, reason: "every arm is within ±0.02 of control v1: v2 - v1 in [",
		},
		"too early": {
			cfg:     prop,
			arms:    []ArmData{{Name: "v1", Successes: 10, Trials: 100}, {Name: "v2", Successes: 14, Trials: 100}},
			outcome: Continue, reason: "no decision yet",
		},
		"deadline": {
			cfg:      prop,
			arms:     []ArmData{{Name: "v1", Successes: 10, Trials: 100}, {Name: "v2", Successes: 14, Trials: 100}},
			deadline: true, outcome: Inconclusive, reason: "deadline reached",
		},
		"winner at the deadline": {
			cfg:      prop,
			arms:     []ArmData{{Name: "v1", Successes: 10000, Trials: 100000}, {Name: "v2", Successes: 14000, Trials: 100000}},
			deadline: true, outcome: Winner, winner: "v2",
		},
		"min samples": {
			cfg:     Config{MinEffect: 0.01, MinSamples: 200000},
			arms:    []ArmData{{Name: "v1", Successes: 10000, Trials: 100000}, {Name: "v2", Successes: 14000, Trials: 100000}},
			outcome: Continue, reason: "v1 has 100000 of the 200000",
		},
		"no data": {
			cfg:     prop,
			arms:    []ArmData{{Name: "v1"}, {Name: "v2"}},
			outcome: Continue,
		},
		"control without data": {
			cfg:     Config{Kind: Mean, Min: -1, Max: 1, MinEffect: 0.1},
			arms:    []ArmData{{Name: "v1"}, {Name: "v2", Sum: 10, Count: 100}},
			outcome: Continue,
		},
		"mean, revenue capped at 100": {
			cfg:     Config{Kind: Mean, Min: 0, Max: 100, MinEffect: 0.5},
			arms:    []ArmData{{Name: "v1", Sum: 7e6, Count: 1e6}, {Name: "v2", Sum: 8e6, Count: 1e6}},
			outcome: Winner, winner: "v2",
		},
		"mean, no difference": {
			cfg:     Config{Kind: Mean, Min: 0, Max: 100, MinEffect: 1},
			arms:    []ArmData{{Name: "v1", Sum: 7e6, Count: 1e6}, {Name: "v2", Sum: 7.01e6, Count: 1e6}},
			outcome: NoDifference,
		},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := Decide(tc.cfg, tc.arms, tc.deadline)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tc.outcome || d.Winner != tc.winner || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("got %s %q: %s; want %s %q with %q", d.Outcome, d.Winner, d.Reason, tc.outcome, tc.winner, tc.reason)
			}
			if len(d.Arms) != len(tc.arms) {
				t.Fatalf("%d arm results for %d arms", len(d.Arms), len(tc.arms))
			}
			for i, a := range d.Arms {
				for _, v := range []float64{a.Samples, a.Estimate, a.Lower, a.Upper, a.Lift, a.LiftLower, a.LiftUpper} {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Errorf("arm %d: a number that is not finite: %+v", i, a)
					}
				}
				if a.Samples > 0 && (a.Lower > a.Estimate || a.Upper < a.Estimate || a.LiftLower > a.Lift || a.LiftUpper < a.Lift) {
					t.Errorf("arm %d: bounds do not hold the estimates: %+v", i, a)
				}
			}
		})
	}
}

func TestDecideRejectsBadInput(t *testing.T) {
	two := []ArmData{{Name: "v1", Successes: 1, Trials: 10}, {Name: "v2", Successes: 1, Trials: 10}}
	for name, tc := range map[string]struct {
		cfg  Config
		arms []ArmData
		want string
	}{
		"one arm":                {Config{MinEffect: 0.02}, two[:1], "spec.strategy.experiment.arms has 1 arm(s): an experiment compares at least 2"},
		"no min effect":          {Config{}, two, "spec.strategy.experiment.reward.minEffect must be above 0, e.g. 0.02 for two points"},
		"NaN min effect":         {Config{MinEffect: math.NaN()}, two, "reward.minEffect must be above 0"},
		"min effect too big":     {Config{MinEffect: 1}, two, "reward.minEffect 1 must be below the reward's range"},
		"alpha too big":          {Config{MinEffect: 0.02, Alpha: 0.5}, two, "spec.strategy.experiment.confidence must be above 0.5"},
		"alpha negative":         {Config{MinEffect: 0.02, Alpha: -0.1}, two, "alpha -0.1"},
		"alpha NaN":              {Config{MinEffect: 0.02, Alpha: math.NaN()}, two, "alpha NaN"},
		"unknown kind":           {Config{Kind: "Median", MinEffect: 0.02}, two, `reward.kind "Median" is not Proportion or Mean`},
		"mean without range":     {Config{Kind: Mean, MinEffect: 1}, []ArmData{{Name: "v1"}, {Name: "v2"}}, "kind Mean needs min (0) below max (0)"},
		"mean range reversed":    {Config{Kind: Mean, Min: 5, Max: 1, MinEffect: 1}, []ArmData{{Name: "v1"}, {Name: "v2"}}, "needs min (5) below max (1)"},
		"negative trials":        {Config{MinEffect: 0.02}, []ArmData{{Name: "v1", Trials: -1}, two[1]}, "spec.strategy.experiment.arms[0] (v1): successes 0 and trials -1 must not be negative"},
		"successes above trials": {Config{MinEffect: 0.02}, []ArmData{two[0], {Name: "v2", Successes: 12, Trials: 10}}, "arms[1] (v2): successes 12 exceed trials 10: the success query must count a subset"},
		"NaN successes":          {Config{MinEffect: 0.02}, []ArmData{two[0], {Name: "v2", Successes: math.NaN(), Trials: 10}}, "arms[1] (v2): successes NaN and trials 10 must be finite"},
		"mean above max":         {Config{Kind: Mean, Max: 100, MinEffect: 1}, []ArmData{{Name: "v1", Sum: 50, Count: 1}, {Name: "v2", Sum: 1500, Count: 10}}, "arms[1] (v2): sum 1500 over count 10 is a mean outside the reward's range [0, 100]"},
		"mean below min":         {Config{Kind: Mean, Min: 1, Max: 100, MinEffect: 1}, []ArmData{{Name: "v1", Sum: 5, Count: 10}, {Name: "v2", Sum: 50, Count: 10}}, "arms[0] (v1): sum 5 over count 10"},
		"sum without count":      {Config{Kind: Mean, Max: 100, MinEffect: 1}, []ArmData{{Name: "v1", Sum: 5, Count: 0}, {Name: "v2", Sum: 50, Count: 10}}, "arms[0] (v1): sum 5 over count 0"},
		"negative min samples":   {Config{MinEffect: 0.02, MinSamples: -1}, two, "MinSamples -1 must be 0"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decide(tc.cfg, tc.arms, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

// Counts from separate Prometheus queries may disagree in the last digits.
func TestDecideForgivesRounding(t *testing.T) {
	_, err := Decide(Config{MinEffect: 0.02}, []ArmData{{Name: "v1", Successes: 10 * (1 + 1e-12), Trials: 10}, {Name: "v2", Successes: 1, Trials: 10}}, false)
	if err != nil {
		t.Error(err)
	}
	_, err = Decide(Config{Kind: Mean, Max: 3, MinEffect: 0.02}, []ArmData{{Name: "v1", Sum: 0.3 * 10, Count: 1}, {Name: "v2", Sum: 0.1 + 0.2, Count: 1}}, false)
	if err != nil {
		t.Error(err)
	}
}
