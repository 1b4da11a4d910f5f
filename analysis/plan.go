package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fulcrum-ml/fulcrum/analysis/judge"
	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/analysis/stats"
	"github.com/fulcrum-ml/fulcrum/analysis/templates"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// plan is one metric's queries for a round.
type plan struct {
	metric v1alpha1.Metric
	tpl    templates.Template
	err    error // planning failed: the metric's verdict is Error

	value, samples, bad, histogram *queryKey
	// window is how long the queries' window is (from the step's start).
	window time.Duration
}

func (e *Engine) plan(ctx context.Context, req Request, m v1alpha1.Metric, data templates.Data, window time.Duration, sh *sharedRound, b *batch) *plan {
	p := &plan{metric: m}
	if m.Query != "" && !e.cfg.AllowInlineQueries {
		p.err = fmt.Errorf("metric %s: %w", m.Name, templates.ErrInlineQueriesOff)
		return p
	}
	tpl, err := templates.Resolve(ctx, e.cfg.Templates, req.Namespace, m)
	if err != nil {
		p.err = err
		return p
	}
	if tpl.NamespaceLabel == "" {
		tpl.NamespaceLabel = e.cfg.NamespaceLabel
	}
	p.tpl = tpl
	prov, err := e.providerFor(ctx, req.Namespace, tpl.Provider)
	if err != nil {
		p.err = fmt.Errorf("metric %s: template %s: %w", m.Name, tpl.Name, err)
		return p
	}
	// Built-in templates run in their batched form when the round has a
	// batched window; their rows are picked per rollout.
	var shared *rows
	render, rdata := tpl, data
	if sh != nil && tpl.Batched != nil {
		render, rdata = *tpl.Batched, sh.data
		ns, svc := render.IdentityLabels()
		shared = &rows{at: sh.at, nsLabel: ns, svcLabel: svc, namespace: req.Namespace, service: req.Service,
			versionLabel: render.VersionLabel, subsets: data.Subsets}
	}
	p.window = window
	if shared != nil {
		p.window = sh.window
	}
	r, err := render.Render(rdata)
	if err != nil {
		p.err = err
		return p
	}
	need := func(q, field, why string) (*queryKey, error) {
		if q == "" {
			return nil, fmt.Errorf("metric %s: template %s has no %s, which %s needs", m.Name, tpl.Name, field, why)
		}
		k := b.add(prov, q, shared)
		return &k, nil
	}
	optional := func(q string) *queryKey {
		if q == "" {
			return nil
		}
		k := b.add(prov, q, shared)
		return &k
	}
	switch {
	case m.Threshold != nil || m.Relative != nil:
		if tpl.ValueFromHistogram {
			p.histogram, err = need(r.HistogramQuery, "histogramQuery", "a PSI value")
		} else {
			p.value, err = need(r.Query, "query", "a threshold or relative judge")
		}
		p.samples = optional(r.SampleQuery)
	case m.Sequential != nil:
		p.samples, err = need(r.SampleQuery, "sampleQuery", "a sequential judge")
		if err == nil {
			if m.Sequential.SLOMilliseconds != nil {
				p.histogram, err = need(r.HistogramQuery, "histogramQuery", "a sequential judge with sloMilliseconds")
			} else {
				p.bad, err = need(r.BadQuery, "badQuery", "a sequential judge (or set sloMilliseconds with a latency template)")
			}
		}
	case m.Drift != nil:
		p.histogram, err = need(r.HistogramQuery, "histogramQuery", "a drift judge")
		p.samples = optional(r.SampleQuery)
	case m.SampleRatio != nil:
		p.samples, err = need(r.SampleQuery, "sampleQuery", "a sampleRatio judge")
	default:
		err = fmt.Errorf("metric %s: set one judge (threshold, relative, sequential, drift or sampleRatio)", m.Name)
	}
	p.err = err
	return p
}

// readErr turns failed queries into a result: Error when the provider is
// down or rejected the query; nil when every query answered (no data is
// an empty reading, judged as missing values).
func readErr(b *batch, keys ...*queryKey) *v1alpha1.MetricResult {
	for _, k := range keys {
		if k == nil {
			continue
		}
		err := b.queries[*k].err
		if err == nil || errors.Is(err, provider.ErrNoData) {
			continue
		}
		return &v1alpha1.MetricResult{Verdict: v1alpha1.VerdictError, Message: "cannot read metrics: " + err.Error()}
	}
	return nil
}

func (p *plan) judge(req Request, b *batch, prev *v1alpha1.MetricResult) v1alpha1.MetricResult {
	if p.err != nil {
		return v1alpha1.MetricResult{Verdict: v1alpha1.VerdictError, Message: p.err.Error()}
	}
	if r := readErr(b, p.value, p.samples, p.bad, p.histogram); r != nil {
		return *r
	}
	label := p.tpl.VersionLabel
	samples := func() (int64, int64) {
		if p.samples == nil {
			return -1, -1
		}
		v := byVersion(b, p.samples, label)
		return count(v, req.Candidate), count(v, req.Stable)
	}
	cs, ss := samples()
	m := p.metric
	switch {
	case m.Threshold != nil || m.Relative != nil:
		vals := judge.Values{CandidateSamples: cs, StableSamples: ss, MinSamples: req.Spec.MinSamples}
		if p.histogram != nil {
			h := histograms(b, p.histogram, label)
			vals.Candidate, vals.Stable = psi(h[req.Candidate], h[req.Stable]), 0
		} else {
			if why := severalSeries(b, p.value, label, req.Candidate, req.Stable); why != "" {
				return v1alpha1.MetricResult{Verdict: v1alpha1.VerdictError, Message: why}
			}
			v := byVersion(b, p.value, label)
			vals.Candidate, vals.Stable = get(v, req.Candidate), get(v, req.Stable)
		}
		if m.Threshold != nil {
			return judge.Threshold(*m.Threshold, vals)
		}
		return judge.Relative(*m.Relative, vals)
	case m.Sequential != nil:
		if why := nonFiniteCount(b, label, req, map[string]*queryKey{"sample": p.samples, "bad event": p.bad, "histogram bucket": p.histogram}); why != "" {
			return v1alpha1.MetricResult{Verdict: v1alpha1.VerdictInconclusive, Message: why}
		}
		in := judge.CountsInput{MinSamples: req.Spec.MinSamples, Step: req.Step, Previous: prev,
			Steps: completedSteps(req.Evidence, m.Name), Window: p.window}
		if p.histogram != nil {
			h := histograms(b, p.histogram, label)
			scale := p.tpl.HistogramScale
			if scale == 0 {
				scale = 1
			}
			slo := float64(*m.Sequential.SLOMilliseconds) / scale
			var okC, okS bool
			in.Candidate, _, okC = judge.SlowCounts(h[req.Candidate], slo)
			in.Stable, _, okS = judge.SlowCounts(h[req.Stable], slo)
			if (!okC && len(h[req.Candidate]) > 0) || (!okS && len(h[req.Stable]) > 0) {
				return v1alpha1.MetricResult{Verdict: v1alpha1.VerdictError,
					Message: fmt.Sprintf("latency histogram has no bucket at or below the SLO of %dms (or no +Inf bucket)", *m.Sequential.SLOMilliseconds)}
			}
		} else {
			bad := byVersion(b, p.bad, label)
			in.Candidate = stats.Counts{Bad: count(bad, req.Candidate), Total: cs}
			in.Stable = stats.Counts{Bad: count(bad, req.Stable), Total: ss}
		}
		in.Candidate.Total, in.Stable.Total = max(in.Candidate.Total, 0), max(in.Stable.Total, 0)
		return judge.Sequential(*m.Sequential, in)
	case m.Drift != nil:
		h := histograms(b, p.histogram, label)
		c, s := perBucket(h[req.Candidate], h[req.Stable])
		return judge.Drift(*m.Drift, c, s, req.Spec.MinSamples)
	default: // SampleRatio
		v := byVersion(b, p.samples, label)
		obs := map[string]float64{}
		for sub, val := range v {
			if !math.IsNaN(val) {
				obs[sub] = val
			}
		}
		return judge.SampleRatio(*m.SampleRatio, obs, req.Weights, req.Candidate, req.Spec.MinSamples)
	}
}

func byVersion(b *batch, k *queryKey, label string) map[string]float64 {
	out := map[string]float64{}
	if k == nil {
		return out
	}
	for _, s := range b.queries[*k].samples {
		if v, ok := s.Labels[label]; ok {
			out[v] += s.Value
		}
	}
	return out
}

// severalSeries says why a value query that returned more than one series
// for a version cannot be judged ("" when each version has at most one).
// Counts add up, so sample and bad-event queries are summed per version;
// a value (a ratio, a quantile, a mean) does not: summing ratios is no
// ratio. Ratios at the top of a MetricTemplate's or inline query are pooled
// before they run (templates.PoolRatio), so this is a query whose value
// the engine cannot know how to combine.
func severalSeries(b *batch, k *queryKey, label string, versions ...string) string {
	if k == nil {
		return ""
	}
	for _, v := range versions {
		var series []string
		for _, s := range b.queries[*k].samples {
			if s.Labels[label] == v {
				series = append(series, labelsText(s.Labels))
			}
		}
		if len(series) > 1 {
			shown := strings.Join(series[:min(len(series), 3)], ", ")
			if len(series) > 3 {
				shown += ", ..."
			}
			return fmt.Sprintf("the query returned %d series for %s (%s): a value needs one series per version; aggregate the query by %s, as in sum by (%s) (numerator) / sum by (%s) (denominator)",
				len(series), v, shown, label, label, label)
		}
	}
	return ""
}

// labelsText prints labels as {a="1", b="2"}, sorted.
func labelsText(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, l[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// nonFiniteCount names the first count of the candidate or stable that is
// NaN or ±Inf ("" when there is none). Such a count is no number of events:
// read as 0 it would let a candidate without bad events pass.
func nonFiniteCount(b *batch, label string, req Request, keys map[string]*queryKey) string {
	for _, what := range []string{"sample", "bad event", "histogram bucket"} {
		k := keys[what]
		if k == nil {
			continue
		}
		for _, s := range b.queries[*k].samples {
			v := s.Labels[label]
			if (v == req.Candidate || v == req.Stable) && (math.IsNaN(s.Value) || math.IsInf(s.Value, 0)) {
				return fmt.Sprintf("the %s count of %s is %s: counts must be finite numbers of events; check the template's query", what, v, strconv.FormatFloat(s.Value, 'g', -1, 64))
			}
		}
	}
	return ""
}

func get(v map[string]float64, sub string) float64 {
	if x, ok := v[sub]; ok {
		return x
	}
	return math.NaN()
}

// count rounds a Prometheus increase() (extrapolated, so fractional) to a
// whole number of events; missing is 0.
func count(v map[string]float64, sub string) int64 {
	x, ok := v[sub]
	if !ok || math.IsNaN(x) || x < 0 {
		return 0
	}
	return int64(math.Round(x))
}

// histograms groups cumulative bucket counts by version and upper bound.
func histograms(b *batch, k *queryKey, label string) map[string]map[float64]float64 {
	out := map[string]map[float64]float64{}
	for _, s := range b.queries[*k].samples {
		v, ok := s.Labels[label]
		if !ok {
			continue
		}
		le, err := strconv.ParseFloat(s.Labels["le"], 64)
		if err != nil || math.IsNaN(s.Value) {
			continue
		}
		if out[v] == nil {
			out[v] = map[float64]float64{}
		}
		out[v][le] += s.Value
	}
	return out
}

// perBucket turns two cumulative histograms into per-bucket counts over the
// union of their bounds (a bound one side lacks takes that side's previous
// cumulative count).
func perBucket(c, s map[float64]float64) ([]float64, []float64) {
	set := map[float64]bool{}
	for le := range c {
		set[le] = true
	}
	for le := range s {
		set[le] = true
	}
	les := make([]float64, 0, len(set))
	for le := range set {
		les = append(les, le)
	}
	sort.Float64s(les)
	diff := func(h map[float64]float64) []float64 {
		out := make([]float64, len(les))
		prev, last := 0.0, 0.0
		for i, le := range les {
			if v, ok := h[le]; ok {
				last = math.Max(v, last)
			}
			out[i] = math.Max(0, last-prev)
			prev = last
		}
		return out
	}
	return diff(c), diff(s)
}

// psi is the population stability index of two cumulative histograms; NaN
// when either is empty.
func psi(c, s map[float64]float64) float64 {
	cb, sb := perBucket(c, s)
	r, err := stats.Drift(cb, sb, 0.01)
	if err != nil {
		return math.NaN()
	}
	return r.PSI
}

// completedSteps are a metric's counts in the rollout's completed steps.
func completedSteps(ev []v1alpha1.MetricEvidence, metric string) []stats.Segment {
	for _, e := range ev {
		if e.Metric != metric {
			continue
		}
		out := make([]stats.Segment, 0, len(e.Steps))
		for _, s := range e.Steps {
			out = append(out, stats.Segment{
				Candidate: stats.Counts{Bad: s.Candidate.Bad, Total: s.Candidate.Total},
				Stable:    stats.Counts{Bad: s.Stable.Bad, Total: s.Stable.Total},
			})
		}
		return out
	}
	return nil
}
