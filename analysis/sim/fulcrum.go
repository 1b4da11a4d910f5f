package sim

import (
	"fmt"
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/analysis"
	"github.com/fulcrum-ml/fulcrum/analysis/judge"
	"github.com/fulcrum-ml/fulcrum/analysis/stats"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Fulcrum is Fulcrum's controller loop around the sequential judge, as the
// controller runs it: a round every look period (analysis.LookPeriod)
// judges the whole rollout's evidence (the completed steps and the current
// one); a Fail rolls back at once (the test is always valid, so it needs
// no repeating); a step advances as analysis.Advance says (on a Pass after
// the minimum dwell, or earlier within the exposure budget; never onto
// 100% without a Pass). Rounds count toward InconclusiveLimit as the
// controller counts them (the first of a step, then one per interval); at
// the limit the rollout pauses for a person. Traffic is drawn second by
// second; a round sees the counts up to Lag seconds before it (scrape and
// batching delay), and a step's evidence ends at its last round.
type Fulcrum struct {
	Label      string
	Steps      []float64
	Interval   float64
	MinStep    float64 // minStepDuration in seconds; 0 leaves it unset
	MinSamples int64
	// InconclusiveLimit pauses the rollout (0: never).
	InconclusiveLimit int
	Lag               float64
	Judge             v1alpha1.SequentialJudge
	ExposureBudget    *float64
	NoBudget          bool // for comparison: exposure budget 0 (advance on a Pass only)
	// Trace, when set, sees every round: the time, the step and the result.
	Trace func(t float64, step int, r v1alpha1.MetricResult) `json:"-"`
}

// DefaultFulcrum is the README's configuration for the error-rate metric:
// steps 1, 5, 25, 50, 100; minStepDuration unset (5s for a rollout with a
// sequential metric); interval 30s (rounds every
// 5s, as the rollout has a sequential metric); minSamples 200;
// inconclusiveLimit 10 (the CRD's default); the sequential judge
// {maxIncrease: 0.005, confidence: 0.99} with the default exposure budget;
// data seen 1s late (looks run just after the batching boundaries; a 1s
// scrape).
var DefaultFulcrum = Fulcrum{
	Label:             "fulcrum",
	Steps:             []float64{1, 5, 25, 50, 100},
	Interval:          30,
	MinSamples:        200,
	InconclusiveLimit: 10,
	Lag:               1,
	Judge:             v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.99},
}

// PeerFulcrum is Fulcrum as make bench-peers configures it (e2e/peers): the
// peers' 10% steps to 50%, interval 10s, minStepDuration unset, the same
// tolerance, other settings at the CRD's defaults (minSamples 100,
// inconclusiveLimit 10).
var PeerFulcrum = Fulcrum{
	Label:             "fulcrum-10%-steps",
	Steps:             []float64{10, 20, 30, 40, 50, 100},
	Interval:          10,
	MinSamples:        100,
	InconclusiveLimit: 10,
	Lag:               1,
	Judge:             v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.99},
}

// String describes the configuration in one line.
func (f Fulcrum) String() string {
	budget := fmt.Sprintf("default %g", analysis.DefaultExposureBudget)
	switch {
	case f.NoBudget:
		budget = "0"
	case f.ExposureBudget != nil:
		budget = fmt.Sprintf("%g", *f.ExposureBudget)
	}
	minStep := "unset"
	if f.MinStep > 0 {
		minStep = fmt.Sprintf("%gs", f.MinStep)
	}
	return fmt.Sprintf("steps %v, minStepDuration %s, interval %gs (a look every %s), minSamples %d, inconclusiveLimit %d, sequential {maxIncrease: %g, confidence: %g}, exposure budget %s, data %gs late",
		f.Steps, minStep, f.Interval, analysis.LookPeriod(f.spec()), f.MinSamples, f.InconclusiveLimit, f.Judge.MaxIncrease, f.Judge.Confidence, budget, f.Lag)
}

// Name implements Policy.
func (f Fulcrum) Name() string {
	if f.Label != "" {
		return f.Label
	}
	return "fulcrum"
}

func (f Fulcrum) spec() *v1alpha1.Analysis {
	j := f.Judge
	if f.ExposureBudget != nil {
		j.ExposureBudget = f.ExposureBudget
	}
	if f.NoBudget {
		zero := 0.0
		j.ExposureBudget = &zero
	}
	return &v1alpha1.Analysis{
		Interval:   metav1.Duration{Duration: time.Duration(f.Interval * float64(time.Second))},
		MinSamples: f.MinSamples,
		Metrics:    []v1alpha1.Metric{{Name: "error-rate", Sequential: &j}},
	}
}

// Run implements Policy.
func (f Fulcrum) Run(sc Scenario, seed uint64, horizon float64) Run {
	tr := newTraffic(seed)
	spec := f.spec()
	look := analysis.LookPeriod(spec).Seconds()
	var run Run
	var done []stats.Segment // completed steps
	var prev *v1alpha1.MetricResult
	cum := []stats.Segment{{}} // this step's counts after each second
	step, stepStart := 0, 0.0
	inconclusive, lastRound := 0, -1.0
	run.MaxWeight = f.Steps[0]
	// seen is what a round at t reads: the step's counts up to t - Lag.
	seen := func(t float64) (stats.Segment, float64) {
		n := min(max(int(math.Floor(t-f.Lag-stepStart)), 0), len(cum)-1)
		return cum[n], float64(n)
	}
	for t := 1.0; t <= horizon; t++ {
		w := f.Steps[step]
		cn, cx, sn, sx := tr.interval(sc, w, 1)
		c := cum[len(cum)-1]
		cum = append(cum, stats.Segment{
			Candidate: stats.Counts{Bad: c.Candidate.Bad + cx, Total: c.Candidate.Total + cn},
			Stable:    stats.Counts{Bad: c.Stable.Bad + sx, Total: c.Stable.Total + sn},
		})
		run.CandidateRequests += cn
		run.CandidateErrors += cx
		run.Seconds = t
		if math.Mod(t-stepStart, look) != 0 {
			continue
		}
		cur, window := seen(t)
		res := judge.Sequential(*spec.Metrics[0].Sequential, judge.CountsInput{
			Steps: done, Candidate: cur.Candidate, Stable: cur.Stable, Step: int32(step),
			Window: time.Duration(window * float64(time.Second)), MinSamples: f.MinSamples,
			Previous: prev, NoEstimate: true,
		})
		res.Name = "error-rate"
		prev = &res
		if f.Trace != nil {
			f.Trace(t, step, res)
		}
		if res.Verdict == v1alpha1.VerdictFail {
			run.Outcome = RolledBack
			return run
		}
		iv := f.Interval
		if lastRound < 0 || math.Floor((t-stepStart)/iv) > math.Floor((lastRound-stepStart)/iv) {
			switch res.Verdict {
			case v1alpha1.VerdictPass:
				inconclusive = 0
			case v1alpha1.VerdictInconclusive:
				inconclusive++
			}
		}
		lastRound = t
		if f.InconclusiveLimit > 0 && inconclusive >= f.InconclusiveLimit {
			run.Outcome = Paused
			break
		}
		round := v1alpha1.AnalysisRound{Verdict: res.Verdict, Metrics: []v1alpha1.MetricResult{res}}
		kind, _ := analysis.Advance(analysis.StepInput{
			Round: round, Spec: spec, Age: time.Duration((t - stepStart) * float64(time.Second)),
			MinStepDuration: time.Duration(f.MinStep * float64(time.Second)),
			NextWeight:      int32(f.Steps[step+1]), NextIsLast: f.Steps[step+1] >= 100,
		})
		if kind == "" {
			continue
		}
		step++
		if f.Steps[step] >= 100 {
			run.Outcome = Promoted
			return run
		}
		run.MaxWeight = f.Steps[step]
		done = append(done, cur)
		stepStart, cum, prev = t, []stats.Segment{{}}, nil
		inconclusive, lastRound = 0, -1
	}
	// Paused, or undecided at the horizon: what the judge reports.
	cur, window := seen(run.Seconds)
	res := judge.Sequential(*spec.Metrics[0].Sequential, judge.CountsInput{
		Steps: done, Candidate: cur.Candidate, Stable: cur.Stable, Step: int32(step),
		Window: time.Duration(window * float64(time.Second)), MinSamples: f.MinSamples, Previous: prev,
	})
	if res.SamplesNeeded != nil {
		run.SamplesNeeded = *res.SamplesNeeded
	}
	if res.EvidenceETA != nil {
		run.ETASeconds = res.EvidenceETA.Seconds()
	}
	return run
}
