package dataplane

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func weightedVS(weights ...int) string {
	s := "metadata: {name: fraud}\nspec:\n  hosts: [fraud]\n  http:\n  - route:\n"
	for i, w := range weights {
		s += fmt.Sprintf("    - {destination: {host: fraud, subset: v%d}, weight: %d}\n", i+1, w)
	}
	return s
}

// chiSquareCritical999 are the 0.999 quantiles of chi-square for 1..3
// degrees of freedom: a correct split exceeds them once in a thousand runs,
// and the seeded draws below make each run reproducible.
var chiSquareCritical999 = []float64{10.828, 13.816, 16.266}

func TestWeightedSplitMatchesWeights(t *testing.T) {
	cases := map[string][]int{
		"even":          {50, 50},
		"canary step":   {95, 5},
		"three subsets": {70, 20, 10},
		"one percent":   {99, 1},
		"zero weight":   {100, 0},
	}
	const n = 40000
	for name, weights := range cases {
		t.Run(name, func(t *testing.T) {
			tbl := Build(fraudWorld(t, weightedVS(weights...)))
			if len(tbl.Problems) != 0 {
				t.Fatalf("problems: %v", tbl.Problems)
			}
			rnd := rand.New(rand.NewPCG(uint64(len(name)), 99))
			counts := map[string]int{}
			for range n {
				d := tbl.Route(req("fraud", "/"), rnd)
				if d.Backend == nil {
					t.Fatalf("no backend: %+v", d)
				}
				counts[d.Target.Subset]++
			}
			chi, df := 0.0, -1
			for i, w := range weights {
				got := counts[fmt.Sprintf("v%d", i+1)]
				if w == 0 {
					if got != 0 {
						t.Errorf("v%d has weight 0 but served %d requests", i+1, got)
					}
					continue
				}
				exp := float64(n) * float64(w) / 100
				chi += (float64(got) - exp) * (float64(got) - exp) / exp
				df++
			}
			if df > 0 && chi > chiSquareCritical999[df-1] {
				t.Errorf("split %v for weights %v: chi-square %.2f > %.2f (df %d)", counts, weights, chi, chiSquareCritical999[df-1], df)
			}
		})
	}
}

// A split that ignores the weights must fail the same test, or the test
// proves nothing.
func TestChiSquareRejectsWrongSplit(t *testing.T) {
	tbl := Build(fraudWorld(t, weightedVS(60, 40)))
	rnd := rand.New(rand.NewPCG(7, 7))
	counts := map[string]int{}
	const n = 40000
	for range n {
		counts[tbl.Route(req("fraud", "/"), rnd).Target.Subset]++
	}
	// Judge the observed 60/40 split against a claimed 55/45.
	chi := 0.0
	for s, w := range map[string]float64{"v1": 55, "v2": 45} {
		exp := n * w / 100
		chi += (float64(counts[s]) - exp) * (float64(counts[s]) - exp) / exp
	}
	if chi <= chiSquareCritical999[0] {
		t.Errorf("chi-square %.2f did not reject a 60/40 split judged as 55/45", chi)
	}
}

func TestAllZeroWeightsIsAProblem(t *testing.T) {
	tbl := Build(fraudWorld(t, weightedVS(0, 0)))
	if len(tbl.Problems) == 0 {
		t.Fatal("all-zero weights should be reported")
	}
	if d := tbl.Route(req("fraud", "/"), rand.New(rand.NewPCG(1, 1))); d.Flag != FlagNoRoute {
		t.Errorf("flag %s, want NR when the only route is unusable", d.Flag)
	}
}

func TestMirrors(t *testing.T) {
	tbl := Build(fraudWorld(t, `
metadata: {name: fraud}
spec:
  hosts: [fraud]
  http:
  - match: [{headers: {x-all: {}}}]
    route: [{destination: {host: fraud, subset: v1}}]
    mirror: {host: fraud, subset: v2}
  - match: [{headers: {x-quarter: {}}}]
    route: [{destination: {host: fraud, subset: v1}}]
    mirror: {host: fraud, subset: v2}
    mirrorPercentage: {value: 25}
  - match: [{headers: {x-many: {}}}]
    route: [{destination: {host: fraud, subset: v1}}]
    mirrors:
    - {destination: {host: fraud, subset: v2}}
    - {destination: {host: fraud, subset: v3}, percentage: {value: 0}}
  - route: [{destination: {host: fraud, subset: v1}}]
`))
	if len(tbl.Problems) != 0 {
		t.Fatalf("problems: %v", tbl.Problems)
	}
	rnd := rand.New(rand.NewPCG(11, 12))
	const n = 4000
	count := func(hdr string) (mirrored int, targets map[string]int) {
		targets = map[string]int{}
		for range n {
			d := tbl.Route(req("fraud", "/", hdr, "1"), rnd)
			if d.Target.Subset != "v1" {
				t.Fatalf("%s: primary subset %s, want v1", hdr, d.Target.Subset)
			}
			if len(d.Mirrors) > 0 {
				mirrored++
			}
			for _, m := range d.Mirrors {
				targets[m.Target.Subset]++
				if m.Backend.Version != m.Target.Subset {
					t.Fatalf("mirror backend %+v does not serve %s", m.Backend, m.Target.Subset)
				}
			}
		}
		return mirrored, targets
	}
	if m, _ := count("x-all"); m != n {
		t.Errorf("mirror without percentage copied %d of %d, want all", m, n)
	}
	if m, _ := count("x-quarter"); m < n*20/100 || m > n*30/100 {
		t.Errorf("mirrorPercentage 25 copied %d of %d, want about a quarter", m, n)
	}
	if m, targets := count("x-many"); m != n || targets["v2"] != n || targets["v3"] != 0 {
		t.Errorf("mirrors list copied %d (%v), want every request to v2 and none to v3", m, targets)
	}
	if m, _ := count("x-none"); m != 0 {
		t.Errorf("route without mirror copied %d", m)
	}
}
