// Package sim replays seeded canary traffic through two promotion policies:
// Flagger's fixed-threshold rule and Fulcrum's sequential judge, so their
// exposure, speed and error rates can be compared on the same traffic.
package sim

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
)

// Outcome of one simulated rollout.
type Outcome int

// Outcomes.
const (
	Undecided Outcome = iota
	Promoted
	RolledBack
	// Paused: the inconclusive limit stopped the rollout for a person.
	Paused
)

// Scenario is the traffic of one rollout.
type Scenario struct {
	Name                string
	RPS                 float64
	StableP, CandidateP float64
}

// Run is what one policy did with one seed.
type Run struct {
	Outcome Outcome
	// CandidateRequests and CandidateErrors served before the decision
	// (or the horizon).
	CandidateRequests, CandidateErrors int64
	// Seconds to the decision (or the horizon).
	Seconds float64
	// SamplesNeeded, for an undecided Fulcrum run: the judge's estimate,
	// and ETASeconds how long it takes at the candidate's current rate.
	SamplesNeeded int64
	ETASeconds    float64
	// MaxWeight is the largest candidate weight the run reached.
	MaxWeight float64
}

// Policy decides a rollout.
type Policy interface {
	Name() string
	Run(sc Scenario, seed uint64, horizonSeconds float64) Run
}

// traffic draws requests and errors for one interval.
type traffic struct {
	r *rand.Rand
}

func newTraffic(seed uint64) traffic {
	return traffic{rand.New(rand.NewPCG(seed, 0x5eed))}
}

func (t traffic) poisson(mean float64) int64 {
	if mean <= 0 {
		return 0
	}
	if mean > 500 {
		return max(0, int64(math.Round(mean+math.Sqrt(mean)*t.r.NormFloat64())))
	}
	return int64(distuv.Poisson{Lambda: mean, Src: t.r}.Rand())
}

func (t traffic) binomial(n int64, p float64) int64 {
	if n <= 0 || p <= 0 {
		return 0
	}
	if p >= 1 {
		return n
	}
	return int64(distuv.Binomial{N: float64(n), P: p, Src: t.r}.Rand())
}

// interval returns candidate and stable (requests, errors) for dt seconds at
// candidate weight w percent.
func (t traffic) interval(sc Scenario, w float64, dt float64) (cn, cx, sn, sx int64) {
	n := t.poisson(sc.RPS * dt)
	cn = t.binomial(n, w/100)
	sn = n - cn
	return cn, t.binomial(cn, sc.CandidateP), sn, t.binomial(sn, sc.StableP)
}

// Flagger is the fixed-threshold rule of Flagger's Istio tutorial: every
// Interval seconds, the candidate's success rate over the last interval
// must be at least MinSuccess; a check with no candidate requests fails
// ("no values found"); Threshold failed checks roll back; each passed
// check adds StepWeight up to MaxWeight, and a passed check at MaxWeight
// promotes.
type Flagger struct {
	Label                                       string
	Interval, StepWeight, MaxWeight, MinSuccess float64
	Threshold                                   int
}

// DefaultFlagger is the tutorial's configuration.
var DefaultFlagger = Flagger{Interval: 60, StepWeight: 10, MaxWeight: 50, MinSuccess: 0.99, Threshold: 5}

// PeerFlagger is the benchmark configuration: a 10s interval.
var PeerFlagger = Flagger{Label: "flagger-10s", Interval: 10, StepWeight: 10, MaxWeight: 50, MinSuccess: 0.99, Threshold: 5}

// String describes the configuration in one line.
func (f Flagger) String() string {
	return fmt.Sprintf("success rate >= %g%% every %gs, %g%% steps to %g%%, %d failed checks roll back",
		100*f.MinSuccess, f.Interval, f.StepWeight, f.MaxWeight, f.Threshold)
}

// Name implements Policy.
func (f Flagger) Name() string {
	if f.Label != "" {
		return f.Label
	}
	return "flagger"
}

// Run implements Policy.
func (f Flagger) Run(sc Scenario, seed uint64, horizon float64) Run {
	tr := newTraffic(seed)
	w := f.StepWeight
	var run Run
	failed := 0
	for t := f.Interval; t <= horizon; t += f.Interval {
		cn, cx, _, _ := tr.interval(sc, w, f.Interval)
		run.CandidateRequests += cn
		run.CandidateErrors += cx
		run.Seconds = t
		ok := cn > 0 && 1-float64(cx)/float64(cn) >= f.MinSuccess
		if !ok {
			failed++
			if failed >= f.Threshold {
				run.Outcome = RolledBack
				return run
			}
			continue
		}
		if w >= f.MaxWeight {
			run.Outcome = Promoted
			return run
		}
		w = math.Min(w+f.StepWeight, f.MaxWeight)
	}
	return run
}

// SPRTExpectedSamples is Wald's approximation of the expected number of
// trials of the sequential probability ratio test of rate p0 against p1
// with error rates alpha and beta, when the true rate is p (p0 or p1).
func SPRTExpectedSamples(p0, p1, alpha, beta, p float64) float64 {
	a := math.Log((1 - beta) / alpha)
	b := math.Log(beta / (1 - alpha))
	step := func(q float64) float64 { // E[log LR] per trial at rate q
		return q*math.Log(p1/p0) + (1-q)*math.Log((1-p1)/(1-p0))
	}
	if p == p1 {
		return ((1-beta)*a + beta*b) / step(p1)
	}
	return (alpha*a + (1-alpha)*b) / step(p0)
}
