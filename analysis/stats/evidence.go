package stats

import (
	"math"
)

// The mixing priors are uniform on log r over a grid, where the alternative
// rate is r times the null rate q. Mixing over the ratio rather than the
// rate makes the cost of not knowing the alternative depend on the number of
// bad events seen, not on the number of trials: about
// log(range of log r) + ½·log(bad events) nats.
const gridPoints = 48

var (
	// up mixes alternatives 1.1..10 times the null rate (a worse candidate).
	up = newGrid(1.1, 10)
	// down mixes alternatives 0.1..0.99 times the null rate (a better one).
	// Bounds are valid for any fixed grid; this one puts the weight where
	// NotWorse decisions are made (a candidate at stable's rate against
	// stable + maxIncrease is r ≈ 0.2..0.95 for base rates from 0.1% to 10%
	// and maxIncrease 0.5 points), and needs about 10% fewer candidate
	// requests than 0.01..0.99 (measured at a 0.5% base rate).
	down = newGrid(0.1, 0.99)
)

// grid is a mixing prior: ratios uniform in log between two ends, with
// their logarithms.
type grid struct {
	ratios, logs [gridPoints]float64
}

func newGrid(lo, hi float64) *grid {
	g := &grid{}
	for i := range g.ratios {
		g.logs[i] = math.Log(lo) + (math.Log(hi)-math.Log(lo))*float64(i)/float64(gridPoints-1)
		g.ratios[i] = math.Exp(g.logs[i])
	}
	return g
}

// mixture is log of the average likelihood ratio over the ratio grid. Grid
// points whose rate leaves (0, 1) are dropped: they contribute zero, which
// keeps the mixture a supermartingale. With p = r·q the log likelihood ratio
// is x·log r + (n-x)·(log(1-rq) - log(1-q)): one logarithm per grid point.
func mixture(x, n, q float64, g *grid) float64 {
	var terms [gridPoints]float64
	k := 0
	l1q := math.Log1p(-q)
	for i, r := range g.ratios {
		p := q * r
		if p <= 0 || p >= 1 {
			continue
		}
		t := 0.0
		if x > 0 {
			t += x * g.logs[i]
		}
		if n-x > 0 {
			t += (n - x) * (math.Log1p(-p) - l1q)
		}
		terms[k] = t
		k++
	}
	if k == 0 {
		return math.Inf(-1)
	}
	return logSumExp(terms[:k]) - math.Log(gridPoints)
}

// LogEvidenceAbove is log E, where E is an e-value against "the rate is at
// most q" from x bad events in n Bernoulli trials. For every alternative
// p = r·q with r > 1 the likelihood ratio is a supermartingale under any rate
// at most q (its one-trial mean p'·r + (1-p')(1-rq)/(1-q) is 1 at p' = q and
// decreases in p'), so their average E is too, and by Ville's inequality
// P(sup_n E_n >= 1/α) <= α whatever the stopping rule. E decreases in q.
func LogEvidenceAbove(x, n int64, q float64) float64 {
	if n <= 0 || q >= 1 {
		return 0
	}
	if q <= 0 {
		if x > 0 {
			return math.Inf(1)
		}
		return 0
	}
	return mixture(float64(x), float64(n), q, up)
}

// LogEvidenceBelow is log E against "the rate is at least q": the mirror of
// LogEvidenceAbove with alternatives r·q, r < 1. E increases in q.
func LogEvidenceBelow(x, n int64, q float64) float64 {
	if n <= 0 || q <= 0 {
		return 0
	}
	if q >= 1 {
		if x < n {
			return math.Inf(1)
		}
		return 0
	}
	return mixture(float64(x), float64(n), q, down)
}

// boundPrecision is the relative precision of bounds. Lower bounds stop
// below and upper bounds above the exact value, so rounding is conservative.
const boundPrecision = 1e-4

// LowerBound is a time-uniform lower confidence bound on a Bernoulli rate:
// P(rate < LowerBound at any n) <= alpha. It is the smallest q that
// LogEvidenceAbove does not reject at level alpha.
func LowerBound(x, n int64, alpha float64) float64 {
	x, n = clampCounts(x, n)
	return lowerBound(float64(x), float64(n), alpha)
}

func lowerBound(x, n, alpha float64) float64 {
	if n <= 0 || x <= 0 {
		return 0
	}
	limit := math.Log(1 / alpha)
	phat := x / n
	// Rejected below the bound, not rejected at phat (E <= 1 there).
	lo, hi := 0.0, phat
	for i := 0; i < 60 && hi-lo > boundPrecision*hi; i++ {
		m := (lo + hi) / 2
		if mixture(x, n, m, up) >= limit {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// UpperBound is a time-uniform upper confidence bound on a Bernoulli rate:
// P(rate > UpperBound at any n) <= alpha.
func UpperBound(x, n int64, alpha float64) float64 {
	x, n = clampCounts(x, n)
	return upperBound(float64(x), float64(n), alpha)
}

func upperBound(x, n, alpha float64) float64 {
	if n <= 0 || x >= n {
		return 1
	}
	limit := math.Log(1 / alpha)
	phat := x / n
	lo, hi := phat, 1.0
	for i := 0; i < 60 && hi-lo > boundPrecision*hi; i++ {
		m := (lo + hi) / 2
		if mixture(x, n, m, down) >= limit {
			hi = m
		} else {
			lo = m
		}
	}
	return hi
}

func clampCounts(x, n int64) (int64, int64) {
	if n < 0 {
		n = 0
	}
	if x < 0 {
		x = 0
	}
	if x > n {
		x = n
	}
	return x, n
}

func logSumExp(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		if x > m {
			m = x
		}
	}
	if math.IsInf(m, 0) {
		return m
	}
	s := 0.0
	for _, x := range v {
		s += math.Exp(x - m)
	}
	return m + math.Log(s)
}
