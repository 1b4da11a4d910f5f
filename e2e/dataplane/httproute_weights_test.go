package dataplane

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// weightedRoute splits fraud between fraud-v1, fraud-v2, ... by weight; a
// negative weight leaves the field unset (default 1).
func weightedRoute(weights ...int) string {
	s := meshRoute("fraud") + "  rules:\n  - backendRefs:\n"
	for i, w := range weights {
		if w < 0 {
			s += fmt.Sprintf("    - {name: fraud-v%d, port: 80}\n", i+1)
			continue
		}
		s += fmt.Sprintf("    - {name: fraud-v%d, port: 80, weight: %d}\n", i+1, w)
	}
	return s
}

func TestHTTPRouteWeightedSplit(t *testing.T) {
	cases := map[string]struct {
		weights []int
		shares  []float64 // expected share of fraud-v1, fraud-v2, ...
	}{
		"canary 90/10":           {[]int{90, 10}, []float64{0.9, 0.1}},
		"80/20":                  {[]int{80, 20}, []float64{0.8, 0.2}},
		"weights are relative":   {[]int{3, 1}, []float64{0.75, 0.25}},
		"unset weight is 1":      {[]int{-1, -1}, []float64{0.5, 0.5}},
		"zero weight gets none":  {[]int{0, 100}, []float64{0, 1}},
		"three services":         {[]int{70, 20, 10}, []float64{0.7, 0.2, 0.1}},
		"one backend takes all":  {[]int{5}, []float64{1}},
		"zero among three":       {[]int{50, 0, 50}, []float64{0.5, 0, 0.5}},
		"one percent is visible": {[]int{99, 1}, []float64{0.99, 0.01}},
	}
	const n = 40000
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tbl := Build(gammaWorld(t, weightedRoute(tc.weights...)))
			if len(tbl.Problems) != 0 {
				t.Fatalf("problems: %v", tbl.Problems)
			}
			rnd := rand.New(rand.NewPCG(uint64(len(name)), 77))
			counts := map[string]int{}
			for range n {
				d := tbl.Route(req("fraud", "/"), rnd)
				if d.Backend == nil || "fraud-"+d.Backend.Version != d.Target.Service.Name {
					t.Fatalf("decision %+v: want a backend of the drawn Service", d)
				}
				counts[d.Target.Service.Name]++
			}
			chi, df := 0.0, -1
			for i, share := range tc.shares {
				got := counts[fmt.Sprintf("fraud-v%d", i+1)]
				if share == 0 {
					if got != 0 {
						t.Errorf("fraud-v%d has weight 0 but served %d requests", i+1, got)
					}
					continue
				}
				exp := n * share
				chi += (float64(got) - exp) * (float64(got) - exp) / exp
				df++
			}
			if df > 0 && chi > chiSquareCritical999[df-1] {
				t.Errorf("split %v for weights %v: chi-square %.2f > %.2f (df %d)", counts, tc.weights, chi, chiSquareCritical999[df-1], df)
			}
		})
	}
}

// An invalid backendRef keeps its weight: its share answers 500, the rest
// is routed.
func TestHTTPRouteInvalidBackendShareAnswers500(t *testing.T) {
	tbl := Build(gammaWorld(t, meshRoute("fraud")+`  rules:
  - backendRefs: [{name: fraud-v1, port: 80, weight: 75}, {name: gone, port: 80, weight: 25}]
`))
	rnd := rand.New(rand.NewPCG(3, 3))
	const n = 20000
	failed := 0
	for range n {
		d := tbl.Route(req("fraud", "/"), rnd)
		switch {
		case d.DirectStatus == 500 && d.Backend == nil && d.Target.Service.Name == "gone":
			failed++
		case d.DirectStatus == 0 && d.Backend != nil && d.Target.Service.Name == "fraud-v1":
		default:
			t.Fatalf("decision %+v: want fraud-v1 or a 500 for gone", d)
		}
	}
	exp := n * 0.25
	if chi := (float64(failed) - exp) * (float64(failed) - exp) / exp * 4 / 3; chi > chiSquareCritical999[0] {
		t.Errorf("%d of %d answered 500, want about a quarter (chi-square %.2f)", failed, n, chi)
	}
}
