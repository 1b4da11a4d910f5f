package sim

import (
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
// 100% without a Pass). Traffic is drawn second by second; a round sees
// the counts up to Lag seconds before it (scrape and batching delay), and a
// step's evidence ends at its last round.
type Fulcrum struct {
	Label          string
	Steps          []float64
	Interval       float64
	MinStep        float64
	MinSamples     int64
	Lag            float64
	Judge          v1alpha1.SequentialJudge
	ExposureBudget *float64
	NoBudget       bool // for comparison: exposure budget 0 (advance on a Pass only)
	// Trace, when set, sees every round: the time, the step and the result.
	Trace func(t float64, step int, r v1alpha1.MetricResult) `json:"-"`
}

// DefaultFulcrum is the README's configuration for the error-rate metric:
// steps 1, 5, 25, 50, 100; minStepDuration 1m; interval 30s (rounds every
// 5s, as the rollout has a sequential metric); minSamples 200; the
// sequential judge {maxIncrease: 0.005, confidence: 0.99} with the default
// exposure budget; data seen 3s late (half the 5s batching quantum plus
// half a 1s scrape).
var DefaultFulcrum = Fulcrum{
	Label:      "fulcrum",
	Steps:      []float64{1, 5, 25, 50, 100},
	Interval:   30,
	MinStep:    60,
	MinSamples: 200,
	Lag:        1,
	Judge:      v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.99},
}

// PeerFulcrum is Fulcrum on the peers' schedule from the benchmark:
// 10% steps to 50%, a 10s interval, the same tolerance.
var PeerFulcrum = Fulcrum{
	Label:      "fulcrum-10%-steps",
	Steps:      []float64{10, 20, 30, 40, 50, 100},
	Interval:   10,
	MinStep:    10,
	MinSamples: 200,
	Lag:        1,
	Judge:      v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.99},
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
	}
	// Undecided at the horizon: what the judge would report.
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
