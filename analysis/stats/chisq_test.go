package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestSampleRatio(t *testing.T) {
	for _, tc := range []struct {
		name    string
		obs     map[string]float64
		weights map[string]int32
		wantP   func(float64) bool
		wantErr bool
	}{
		{"matches 90/10", map[string]float64{"v1": 9010, "v2": 990}, map[string]int32{"v1": 90, "v2": 10}, func(p float64) bool { return p > 0.1 }, false},
		{"mesh ignores weights", map[string]float64{"v1": 5000, "v2": 5000}, map[string]int32{"v1": 90, "v2": 10}, func(p float64) bool { return p < 1e-6 }, false},
		{"traffic to a zero-weight subset", map[string]float64{"v1": 100, "v2": 3}, map[string]int32{"v1": 100, "v2": 0}, func(p float64) bool { return p == 0 }, false},
		{"no weights", map[string]float64{"v1": 1}, map[string]int32{"v1": 0}, nil, true},
		{"negative count", map[string]float64{"v1": -1}, map[string]int32{"v1": 100}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := SampleRatio(tc.obs, tc.weights)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err == nil && !tc.wantP(r.PValue) {
				t.Errorf("p-value %v unexpected (%+v)", r.PValue, r)
			}
		})
	}
}

func TestDrift(t *testing.T) {
	same := []float64{100, 300, 400, 200}
	shifted := []float64{300, 400, 200, 100}
	for _, tc := range []struct {
		name       string
		c, s       []float64
		minPSI     float64
		maxPSI     float64
		maxP, minP float64
		wantErr    bool
	}{
		{"identical", same, same, 0, 0.001, 1, 0.99, false},
		{"shifted", shifted, same, 0.3, 10, 1e-10, 0, false},
		{"different bucket counts", []float64{1}, same, 0, 0, 0, 0, true},
		{"empty candidate", []float64{0, 0, 0, 0}, same, 0, 0, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Drift(tc.c, tc.s, 0.01)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v", err)
			}
			if err != nil {
				return
			}
			if r.PSI < tc.minPSI || r.PSI > tc.maxPSI || r.PValue > tc.maxP || r.PValue < tc.minP {
				t.Errorf("got %+v", r)
			}
		})
	}
}

// Under no drift the PSI stays below its noise floor about 1-alpha of the
// time, at small and large sample sizes alike.
func TestDriftNoiseFloorScalesWithSamples(t *testing.T) {
	probs := []float64{0.1, 0.2, 0.3, 0.25, 0.15}
	for _, n := range []int{200, 20000} {
		r := rand.New(rand.NewPCG(3, uint64(n)))
		over := 0
		const trials = 2000
		for i := 0; i < trials; i++ {
			c, s := multinomial(r, n, probs), multinomial(r, n, probs)
			d, err := Drift(c, s, 0.01)
			if err != nil {
				t.Fatal(err)
			}
			if d.PSI > d.NoiseFloor {
				over++
			}
		}
		if rate := float64(over) / trials; rate > 0.01+3*math.Sqrt(0.01*0.99/trials)+0.01 {
			t.Errorf("n=%d: PSI above its noise floor in %.3f of null trials", n, rate)
		}
	}
}

// multinomial draws n trials over probs as a chain of binomials.
func multinomial(r *rand.Rand, n int, probs []float64) []float64 {
	out := make([]float64, len(probs))
	left, mass := int64(n), 1.0
	for i, p := range probs {
		if i == len(probs)-1 || mass <= 0 {
			out[i] = float64(left)
			break
		}
		k := binom(r, left, math.Min(1, p/mass))
		out[i] = float64(k)
		left -= k
		mass -= p
	}
	return out
}
