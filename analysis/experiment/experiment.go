package experiment

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Kind is how an arm's reward is counted.
type Kind string

// The kinds of reward.
const (
	// Proportion: successes out of trials (clicks per prediction served).
	Proportion Kind = "Proportion"
	// Mean: the mean of a per-request value known to lie in [Min, Max]
	// (revenue per request, capped), from its sum and count.
	Mean Kind = "Mean"
)

// DefaultAlpha is the error rate when Config.Alpha is 0: confidence 0.99,
// the default of spec.strategy.experiment.confidence.
const DefaultAlpha = 0.01

// Config is how an experiment decides; it mirrors
// spec.strategy.experiment.
type Config struct {
	// Kind of reward; empty means Proportion.
	Kind Kind
	// Min and Max bound every per-request value of a Mean reward.
	Min, Max float64
	// MinEffect is the smallest absolute difference worth having, in the
	// reward's unit (0.02 is two points of a proportion).
	MinEffect float64
	// Alpha bounds the chance of a false winner (or of a false "no
	// difference") over all arms and all looks; 0 means DefaultAlpha.
	// It is 1 - spec.strategy.experiment.confidence.
	Alpha float64
	// LowerIsBetter is set when a smaller reward wins (a cost).
	LowerIsBetter bool
	// MinSamples is the least trials (or count) every arm needs before any
	// decision; 0 means no minimum.
	MinSamples float64
}

// ArmData is one arm's cumulative counts since the experiment started.
// Counts may be fractional: Prometheus' increase() extrapolates.
type ArmData struct {
	Name string
	// Successes and Trials, for a Proportion.
	Successes, Trials float64
	// Sum and Count of the per-request values, for a Mean.
	Sum, Count float64
}

// ArmResult is one arm's evidence at a look. Bounds hold simultaneously
// for every arm, and lift bounds for every arm, at every look, with
// probability at least 1 - Alpha (each family on its own).
type ArmResult struct {
	Name string
	// Samples are the trials (or count) so far.
	Samples float64
	// Estimate is the observed rate or mean (0 without samples); Lower and
	// Upper bound the true one. All numbers are finite.
	Estimate, Lower, Upper float64
	// Lift is Estimate minus the control's (0 while either has no
	// samples); LiftLower and LiftUpper bound the true difference. All
	// three are 0 for the control itself.
	Lift, LiftLower, LiftUpper float64
}

// Outcome of a look.
type Outcome string

// The outcomes.
const (
	// Continue: no decision yet; look again later.
	Continue Outcome = "Continue"
	// Winner: one arm beats every other arm by more than MinEffect.
	Winner Outcome = "Winner"
	// NoDifference: every arm is within MinEffect of the control.
	NoDifference Outcome = "NoDifference"
	// Inconclusive: the deadline came before either.
	Inconclusive Outcome = "Inconclusive"
)

// Decision is the verdict of one look with its evidence.
type Decision struct {
	Outcome Outcome
	// Winner names the winning arm when Outcome is Winner.
	Winner string
	// Arms in the order given, the control first.
	Arms []ArmResult
	// Reason is one line with the evidence, for events and status.
	Reason string
}

// Decide judges an experiment at one look from every arm's cumulative
// counts, the control first. It may be called at every look, as often as
// wanted: the bounds are confidence sequences, valid at all looks at once.
//
//   - Winner when one arm's lower bound on its difference with each other
//     arm exceeds MinEffect (upper bound below -MinEffect if lower is
//     better).
//   - NoDifference when every arm's lift interval against the control lies
//     within ±MinEffect.
//   - Otherwise Inconclusive if deadlineReached, else Continue; also
//     Continue while an arm has fewer than MinSamples samples.
func Decide(cfg Config, arms []ArmData, deadlineReached bool) (Decision, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Decision{}, err
	}
	units, err := toUnits(cfg, arms)
	if err != nil {
		return Decision{}, err
	}
	ev := judge(cfg, units)
	d := Decision{Arms: make([]ArmResult, len(arms))}
	scale := cfg.scale()
	for i, u := range units {
		lo, hi := ev.arm[i][0], ev.arm[i][1]
		r := ArmResult{
			Name:     arms[i].Name,
			Samples:  u.n,
			Estimate: cfg.value(u.mean()),
			Lower:    cfg.value(lo),
			Upper:    cfg.value(hi),
		}
		if i > 0 {
			r.Lift = r.Estimate - cfg.value(units[0].mean())
			r.LiftLower = ev.lower[i][0] * scale
			r.LiftUpper = -ev.lower[0][i] * scale
		}
		if u.n <= 0 || units[0].n <= 0 {
			r.Lift = 0
		}
		if u.n <= 0 {
			r.Estimate = 0
		}
		d.Arms[i] = r
	}
	d.Outcome, d.Winner, d.Reason = verdict(cfg, d.Arms, ev, deadlineReached)
	return d, nil
}

// evidence holds the confidence sequences of one look on the unit scale.
type evidence struct {
	// arm[i] is arm i's [lower, upper].
	arm [][2]float64
	// lower[i][j] is the lower bound of mean i - mean j.
	lower [][]float64
}

// judge computes every arm's bounds at level α/k and every pair's
// difference bounds at level α/(k(k-1)/2): union bounds make each family
// simultaneous at 1 - α.
func judge(cfg Config, units []arm) evidence {
	k := len(units)
	cArm := math.Log(float64(k) / cfg.Alpha)
	cPair := math.Log(float64(k*(k-1)/2) / cfg.Alpha)
	ev := evidence{arm: make([][2]float64, k), lower: make([][]float64, k)}
	for i, u := range units {
		ev.arm[i][0], ev.arm[i][1] = armBounds(u, cArm)
		ev.lower[i] = make([]float64, k)
		for j, v := range units {
			if i != j {
				ev.lower[i][j] = diffLower(u, v, cPair)
			}
		}
	}
	return ev
}

// verdict applies the stopping rules to one look's evidence.
func verdict(cfg Config, arms []ArmResult, ev evidence, deadline bool) (Outcome, string, string) {
	scale := cfg.scale()
	// diff is the interval of arm i minus arm j in the reward's unit.
	diff := func(i, j int) (float64, float64) {
		return ev.lower[i][j] * scale, -ev.lower[j][i] * scale
	}
	conf := fmt.Sprintf("%.4g%% confidence over all arms and looks", 100*(1-cfg.Alpha))
	for _, a := range arms {
		if a.Samples < cfg.MinSamples {
			if deadline {
				return Inconclusive, "", fmt.Sprintf("deadline reached with %s at %.0f of the %.0f samples every arm needs", a.Name, a.Samples, cfg.MinSamples)
			}
			return Continue, "", fmt.Sprintf("waiting for samples: %s has %.0f of the %.0f every arm needs", a.Name, a.Samples, cfg.MinSamples)
		}
	}
	better := "higher"
	if cfg.LowerIsBetter {
		better = "lower"
	}
	for w := range arms {
		var parts []string
		wins := true
		for j := range arms {
			if j == w {
				continue
			}
			lo, hi := diff(w, j)
			if (!cfg.LowerIsBetter && lo <= cfg.MinEffect) || (cfg.LowerIsBetter && hi >= -cfg.MinEffect) {
				wins = false
				break
			}
			parts = append(parts, fmt.Sprintf("%s - %s in [%s, %s]", arms[w].Name, arms[j].Name, num(lo), num(hi)))
		}
		if wins {
			return Winner, arms[w].Name, fmt.Sprintf("%s is %s than every other arm by more than %s: %s, at %s",
				arms[w].Name, better, num(cfg.MinEffect), strings.Join(parts, "; "), conf)
		}
	}
	var lifts []string
	within := true
	for i := 1; i < len(arms); i++ {
		lo, hi := diff(i, 0)
		lifts = append(lifts, fmt.Sprintf("%s - %s in [%s, %s]", arms[i].Name, arms[0].Name, num(lo), num(hi)))
		if lo < -cfg.MinEffect || hi > cfg.MinEffect {
			within = false
		}
	}
	all := strings.Join(lifts, "; ")
	switch {
	case within:
		return NoDifference, "", fmt.Sprintf("every arm is within ±%s of control %s: %s, at %s", num(cfg.MinEffect), arms[0].Name, all, conf)
	case deadline:
		return Inconclusive, "", fmt.Sprintf("deadline reached with no arm %s than all others by more than %s and not every arm within ±%s of control: %s", better, num(cfg.MinEffect), num(cfg.MinEffect), all)
	}
	return Continue, "", fmt.Sprintf("no decision yet (a winner by more than %s, or every arm within ±%s of control): %s", num(cfg.MinEffect), num(cfg.MinEffect), all)
}

func num(v float64) string { return fmt.Sprintf("%.4g", v) }

// scale is the width of the reward's range: differences on the unit scale
// times scale are in the reward's unit.
func (c Config) scale() float64 {
	if c.Kind == Mean {
		return c.Max - c.Min
	}
	return 1
}

// value maps a mean on the unit scale to the reward's unit.
func (c Config) value(u float64) float64 {
	if c.Kind == Mean {
		return c.Min + u*(c.Max-c.Min)
	}
	return u
}

const field = "spec.strategy.experiment"

// withDefaults fills the defaults and checks the settings.
func (c Config) withDefaults() (Config, error) {
	if c.Kind == "" {
		c.Kind = Proportion
	}
	if c.Alpha == 0 {
		c.Alpha = DefaultAlpha
	}
	var errs []error
	switch c.Kind {
	case Proportion:
	case Mean:
		if !finite(c.Min) || !finite(c.Max) || c.Min >= c.Max {
			errs = append(errs, fmt.Errorf("%s.reward: kind Mean needs min (%g) below max (%g), both finite: the range every per-request value lies in, e.g. 0 and 100 for revenue capped at 100", field, c.Min, c.Max))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.reward.kind %q is not Proportion or Mean", field, c.Kind))
	}
	if !(c.Alpha > 0 && c.Alpha < 0.5) {
		errs = append(errs, fmt.Errorf("%s.confidence must be above 0.5 and below 1 (alpha %g, 1 - confidence, must be in (0, 0.5)), e.g. 0.99", field, c.Alpha))
	}
	if !(c.MinEffect > 0) || math.IsInf(c.MinEffect, 0) {
		errs = append(errs, fmt.Errorf("%s.reward.minEffect must be above 0, e.g. 0.02 for two points (got %g)", field, c.MinEffect))
	} else if len(errs) == 0 && c.MinEffect >= c.scale() {
		errs = append(errs, fmt.Errorf("%s.reward.minEffect %g must be below the reward's range %g (max - min, or 1 for a proportion), e.g. 0.02 for two points", field, c.MinEffect, c.scale()))
	}
	if !(c.MinSamples >= 0) || math.IsInf(c.MinSamples, 0) {
		errs = append(errs, fmt.Errorf("experiment.Config.MinSamples %g must be 0 (no minimum) or more, e.g. 1000", c.MinSamples))
	}
	return c, errors.Join(errs...)
}

// slack forgives the rounding of counts computed by separate queries.
const slack = 1e-9

// toUnits checks the arms' counts and maps them to the unit scale.
func toUnits(c Config, arms []ArmData) ([]arm, error) {
	if len(arms) < 2 {
		return nil, fmt.Errorf("%s.arms has %d arm(s): an experiment compares at least 2, the control first", field, len(arms))
	}
	var errs []error
	units := make([]arm, len(arms))
	for i, a := range arms {
		at := fmt.Sprintf("%s.arms[%d] (%s)", field, i, a.Name)
		var s, n float64
		switch c.Kind {
		case Proportion:
			s, n = a.Successes, a.Trials
			if !finite(s) || !finite(n) {
				errs = append(errs, fmt.Errorf("%s: successes %g and trials %g must be finite numbers: check the reward template's queries return a number for this subset", at, s, n))
				continue
			}
			if s < 0 || n < 0 {
				errs = append(errs, fmt.Errorf("%s: successes %g and trials %g must not be negative: use increase() over counters", at, s, n))
				continue
			}
			if s > n*(1+slack) {
				errs = append(errs, fmt.Errorf("%s: successes %g exceed trials %g: the success query must count a subset of what the sample query counts", at, s, n))
				continue
			}
			s = min(s, n)
		case Mean:
			sum := a.Sum
			n = a.Count
			if !finite(sum) || !finite(n) {
				errs = append(errs, fmt.Errorf("%s: sum %g and count %g must be finite numbers: check the reward template's queries return a number for this subset", at, sum, n))
				continue
			}
			if n < 0 {
				errs = append(errs, fmt.Errorf("%s: count %g must not be negative: use increase() over counters", at, n))
				continue
			}
			w := c.Max - c.Min
			s = (sum - c.Min*n) / w
			tol := slack * (n + math.Abs(sum)/w)
			if s < -tol || s > n+tol {
				errs = append(errs, fmt.Errorf("%s: sum %g over count %g is a mean outside the reward's range [%g, %g]: widen spec.strategy.experiment.reward.min/max or cap the values the sum query adds", at, sum, n, c.Min, c.Max))
				continue
			}
			s = min(max(s, 0), n)
		}
		units[i] = newArm(s, n)
	}
	return units, errors.Join(errs...)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
