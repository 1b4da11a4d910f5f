package experiment

import "math"

// arm is one arm's evidence on the unit scale: s is the successes (or the
// rescaled sum, a real number) in n trials, 0 <= s <= n.
//
// For a null mean p, logM(p) is the log of the mixture
//
//	M_n(p) = ∫ q^s (1-q)^(n-s) dq / (p^s (1-p)^(n-s)) = B(s+1, n-s+1) / (p^s (1-p)^(n-s)),
//
// the likelihood ratio of a Bernoulli(q) alternative against Bernoulli(p)
// averaged over q uniform on [0, 1]. One observation x in [0, 1] multiplies
// each ratio by (q/p)^x ((1-q)/(1-p))^(1-x), a convex function of x that
// lies below its chord on [0, 1], whose mean under any law of mean p is
// exactly 1. So M(p) is a nonnegative supermartingale with M_0 = 1 whenever
// the arm's true mean is p, for Bernoulli trials (a martingale) and for any
// values in [0, 1] alike, and only s and n are needed to compute it.
type arm struct {
	s, n  float64
	lbeta float64 // log B(s+1, n-s+1)
}

func newArm(s, n float64) arm {
	a, _ := math.Lgamma(s + 1)
	b, _ := math.Lgamma(n - s + 1)
	c, _ := math.Lgamma(n + 2)
	return arm{s: s, n: n, lbeta: a + b - c}
}

// mean is the observed mean s/n, 0.5 without trials.
func (a arm) mean() float64 {
	if a.n <= 0 {
		return 0.5
	}
	return a.s / a.n
}

// logM is log M_n(p); it is convex in p, smallest (at most 0) at s/n.
func (a arm) logM(p float64) float64 {
	v := a.lbeta
	if a.s > 0 {
		if p <= 0 {
			return math.Inf(1)
		}
		v -= a.s * math.Log(p)
	}
	if f := a.n - a.s; f > 0 {
		if p >= 1 {
			return math.Inf(1)
		}
		v -= f * math.Log1p(-p)
	}
	return v
}

// slope is the derivative of logM at p: (n·p - s) / (p(1-p)).
func (a arm) slope(p float64) float64 {
	switch {
	case a.n <= 0:
		return 0
	case p <= 0:
		if a.s > 0 {
			return math.Inf(-1)
		}
		return a.n
	case p >= 1:
		if a.s < a.n {
			return math.Inf(1)
		}
		return -a.n
	}
	return (a.n*p - a.s) / (p * (1 - p))
}

// at is the p in [0, 1] where logM has slope λ, or the end of [0, 1] where
// it cannot: the minimizer of logM(p) - λp. Inside (0, 1) the slope equals
// λ where λp² + (n-λ)p - s = 0.
func (a arm) at(lambda float64) float64 {
	switch {
	case a.n <= 0:
		if lambda > 0 {
			return 1
		}
		return 0
	case math.IsInf(lambda, 1):
		return 1
	case math.IsInf(lambda, -1):
		return 0
	case a.s <= 0:
		if lambda <= a.n {
			return 0
		}
		return 1 - a.n/lambda
	case a.s >= a.n:
		if lambda >= -a.n {
			return 1
		}
		return -a.n / lambda
	case lambda == 0:
		return a.s / a.n
	}
	b := a.n - lambda
	d := math.Sqrt(b*b + 4*lambda*a.s)
	var p float64
	if b >= 0 {
		p = 2 * a.s / (b + d) // no cancellation when b >= 0
	} else {
		p = (d - b) / (2 * lambda) // λ > n > 0 here
	}
	return min(1, max(0, p))
}

// precision is the absolute precision of every bound on the unit scale.
// Bisections stop on the outer side, so bounds are never narrower than the
// exact ones.
const precision = 1e-9

// armBounds is the level-exp(-c) confidence sequence of one arm's mean:
// {p : logM(p) < c}. With c = log(1/α), P(the mean leaves it at some n) <= α
// by Ville's inequality.
func armBounds(a arm, c float64) (lower, upper float64) {
	m := a.mean()
	// lower: logM(lo) >= c (outside), logM(hi) < c (inside).
	lower = 0
	if a.logM(0) >= c {
		lo, hi := 0.0, m
		for hi-lo > precision {
			mid := (lo + hi) / 2
			if a.logM(mid) >= c {
				lo = mid
			} else {
				hi = mid
			}
		}
		lower = lo
	}
	upper = 1
	if a.logM(1) >= c {
		lo, hi := m, 1.0
		for hi-lo > precision {
			mid := (lo + hi) / 2
			if a.logM(mid) >= c {
				hi = mid
			} else {
				lo = mid
			}
		}
		upper = hi
	}
	return lower, upper
}

// diffLower is the lower end of the level-exp(-c) confidence sequence of
// the difference of means x - y, the projection of the joint set
// {(p, q) : logM_x(p) + logM_y(q) < c}. M_x(p)·M_y(q) is a supermartingale
// when the means are (p, q): each trial goes to one arm and multiplies one
// factor by a term of conditional mean at most 1, whichever arm the router
// picks. So the true difference is above diffLower at every look with
// probability at least 1 - exp(-c).
//
// The minimum of p - q over the convex set has logM_x'(p) = -logM_y'(q)
// (Lagrange); walking p up from 0 to x's mean along that curve, q = y.at(-slope)
// falls, p - q rises and logM_x(p) + logM_y(q) falls, so a bisection on p
// finds where the sum crosses c.
func diffLower(x, y arm, c float64) float64 {
	// At a corner the Lagrange curve degenerates: when x's mean is 0 (or
	// unknown) p stays at 0 and q takes what the budget leaves; when y's
	// mean is 1 (or unknown), q stays at 1.
	if x.n <= 0 || x.s <= 0 {
		_, u := armBounds(y, c-x.logM(0))
		return -u
	}
	if y.n <= 0 || y.s >= y.n {
		l, _ := armBounds(x, c-y.logM(1))
		return l - 1
	}
	along := func(p float64) (q, g float64) {
		q = y.at(-x.slope(p))
		return q, x.logM(p) + y.logM(q)
	}
	q0, g0 := along(0)
	if g0 < c {
		return -q0
	}
	lo, hi := 0.0, x.mean()
	for hi-lo > precision {
		mid := (lo + hi) / 2
		if _, g := along(mid); g >= c {
			lo = mid
		} else {
			hi = mid
		}
	}
	q, _ := along(lo)
	return lo - q
}
