package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/fulcrum-ml/fulcrum/analysis/experiment"
	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/analysis/templates"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Built-in reward templates of A/B experiments, read from what a model
// server exports by model (the Service) and version (the subset, copied from
// the pod's label by the scrape configuration), as scoreSel does.
const (
	// RewardFeedback is a Proportion: model_feedback_total with
	// outcome="success" out of all outcomes (a click, a conversion, an
	// accepted suggestion per prediction served).
	RewardFeedback = "model-feedback"
	// RewardValue is a Mean: model_reward_sum / model_reward_count (the
	// value of each prediction served, e.g. revenue, bounded by the spec's
	// min and max).
	RewardValue = "model-reward"
)

// RewardReader reads an experiment's cumulative reward per arm.
type RewardReader interface {
	// Rewards returns every arm's counts since since, in the order of
	// arms (the control first). An arm with no series has zero counts.
	Rewards(ctx context.Context, namespace, service, template string, arms []string, since, now time.Time) ([]experiment.ArmData, error)
}

// Rewards implements RewardReader for the built-in reward templates and for
// MetricTemplates with a successQuery (Proportion) or a sumQuery (Mean)
// and a sampleQuery, rendered with {{.Window}} the experiment's age and
// {{.SubsetRegex}} the arms, and confined to the rollout's namespace.
func (e *Engine) Rewards(ctx context.Context, namespace, service, template string, arms []string, since, now time.Time) ([]experiment.ArmData, error) {
	num, den, err := RewardQueries(template, namespace, service, arms, now.Sub(since))
	mean := template == RewardValue
	label := "version"
	var spec *v1alpha1.Provider
	if err != nil {
		t, terr := templates.Resolve(ctx, e.cfg.Templates, namespace, v1alpha1.Metric{Name: "reward", Template: template})
		if terr != nil {
			return nil, fmt.Errorf("spec.strategy.experiment.reward.template: %w", terr)
		}
		if (t.SuccessQuery == "" && t.SumQuery == "") || t.SampleQuery == "" {
			return nil, fmt.Errorf("spec.strategy.experiment.reward.template %q is not a reward template: use %s, %s, or a MetricTemplate with successQuery (or sumQuery) and sampleQuery", template, RewardFeedback, RewardValue)
		}
		d := templates.NewData(namespace, service, arms[0], "", now.Sub(since))
		quoted := make([]string, len(arms))
		for i, a := range arms {
			quoted[i] = regexp.QuoteMeta(a)
		}
		d.Subsets, d.SubsetRegex = arms, strings.Join(quoted, "|")
		r, rerr := t.Render(d)
		if rerr != nil {
			return nil, fmt.Errorf("reward template %s: %w", template, rerr)
		}
		num, den, mean, label, spec = r.SuccessQuery, r.SampleQuery, t.SumQuery != "", t.VersionLabel, t.Provider
		if mean {
			num = r.SumQuery
		}
	}
	p, err := e.providerFor(ctx, namespace, spec)
	if err != nil {
		return nil, err
	}
	byVersion := func(q string) (map[string]float64, error) {
		samples, err := p.Query(ctx, q, now)
		if errors.Is(err, provider.ErrNoData) {
			return map[string]float64{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reward %s of %s/%s: %w", template, namespace, service, err)
		}
		out := map[string]float64{}
		for _, s := range samples {
			if v := s.Labels[label]; v != "" && !math.IsNaN(s.Value) && s.Value >= 0 {
				out[v] += s.Value
			}
		}
		return out, nil
	}
	n, err := byVersion(num)
	if err != nil {
		return nil, err
	}
	d, err := byVersion(den)
	if err != nil {
		return nil, err
	}
	out := make([]experiment.ArmData, len(arms))
	for i, a := range arms {
		out[i] = experiment.ArmData{Name: a}
		if mean {
			out[i].Sum, out[i].Count = n[a], d[a]
		} else {
			// increase() extrapolates each series on its own: successes can
			// read a hair above trials.
			out[i].Successes, out[i].Trials = math.Min(n[a], d[a]), d[a]
		}
	}
	return out, nil
}

// RewardQueries are the PromQL Rewards runs over the experiment's age:
// successes and trials (model-feedback) or sum and count (model-reward),
// by version. The window is written in whole seconds, at least one scrape.
func RewardQueries(template, namespace, service string, arms []string, age time.Duration) (num, den string, err error) {
	var re []string
	for _, a := range arms {
		re = append(re, promEscape(a))
	}
	sel := fmt.Sprintf(`namespace="%s",model="%s",version=~"%s"`, promEscape(namespace), promEscape(service), strings.Join(re, "|"))
	w := fmt.Sprintf("[%ds]", max(int64(math.Ceil(age.Seconds())), 15))
	inc := func(metric, extra string) string {
		return "sum by (version) (increase(" + metric + "{" + sel + extra + "}" + w + "))"
	}
	switch template {
	case RewardFeedback:
		return inc("model_feedback_total", `,outcome="success"`), inc("model_feedback_total", ""), nil
	case RewardValue:
		return inc("model_reward_sum", ""), inc("model_reward_count", ""), nil
	}
	return "", "", fmt.Errorf("spec.strategy.experiment.reward.template %q is not a reward template: use %s (model_feedback_total) or %s (model_reward_sum and _count)", template, RewardFeedback, RewardValue)
}
