package main

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// experimentView is experiment get's text: the settings that explain the
// figures, one row per arm, and the outcome with its reason.
func experimentView(mr *v1alpha1.ModelRollout) []string {
	e := mr.Spec.Strategy.Experiment
	es := mr.Status.Experiment
	lines := []string{fmt.Sprintf("%s/%s  %s", mr.Namespace, mr.Name, phaseOf(mr))}
	reward := fmt.Sprintf("  reward %s (%s), min effect %s", e.Reward.Template, orDefault(string(e.Reward.Kind), string(v1alpha1.RewardProportion)), fnum(e.Reward.MinEffect))
	if e.Reward.LowerIsBetter {
		reward += ", lower is better"
	}
	if e.Confidence != nil {
		reward += ", confidence " + fnum(*e.Confidence)
	}
	lines = append(lines, reward, "  stickiness "+stickiness(mr))
	if es == nil || es.StartedAt == nil {
		state := "not started: start it with 'fulcrumctl experiment start " + mr.Name + " --arm SUBSET'"
		if es != nil {
			state = "starting: waiting for the arms' pods before the weights go on"
		}
		lines = append(lines, "  "+state)
	} else {
		l := "  started " + es.StartedAt.UTC().Format(time.RFC3339)
		if es.LastReadAt != nil {
			l += ", reward last read " + es.LastReadAt.UTC().Format(time.RFC3339)
		}
		lines = append(lines, l)
	}
	lines = append(lines, armTable(mr)...)
	lines = append(lines, outcomeLines(mr)...)
	return lines
}

// armTable has one row per arm: the figures of status.experiment, or the
// spec's weights before any were read.
func armTable(mr *v1alpha1.ModelRollout) []string {
	control := controlOf(mr)
	var arms []v1alpha1.ArmStatus
	if es := mr.Status.Experiment; es != nil && len(es.Arms) > 0 {
		arms = es.Arms
	} else {
		for _, a := range mr.Spec.Strategy.Experiment.Arms {
			arms = append(arms, v1alpha1.ArmStatus{Subset: a.Subset, Weight: a.Weight})
		}
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  ARM\tWEIGHT\tSAMPLES\tVALUE\t[LOWER, UPPER]\tLIFT VS %s\t[LOWER, UPPER]\n", control)
	for _, a := range arms {
		name := a.Subset
		lift, liftBounds := "-", "-"
		if a.Subset == control {
			name += " (control)"
		} else if a.Lift != nil {
			lift, liftBounds = signed(a.Lift), fmt.Sprintf("[%s, %s]", signed(a.LiftLower), signed(a.LiftUpper))
		}
		bounds := "-"
		if a.Lower != nil || a.Upper != nil {
			bounds = fmt.Sprintf("[%s, %s]", pnum(a.Lower), pnum(a.Upper))
		}
		fmt.Fprintf(tw, "  %s\t%d%%\t%s\t%s\t%s\t%s\t%s\n", name, a.Weight, fnum(a.Samples), pnum(a.Value), bounds, lift, liftBounds)
	}
	_ = tw.Flush()
	return strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
}

// outcomeLines say how the experiment ended, or what it waits for.
func outcomeLines(mr *v1alpha1.ModelRollout) []string {
	es := mr.Status.Experiment
	if es == nil {
		return nil
	}
	if es.Outcome == "" {
		if es.Reason == "" {
			return []string{"  outcome: none yet"}
		}
		return []string{"  outcome: none yet: " + es.Reason}
	}
	l := "  outcome " + string(es.Outcome)
	if es.Winner != "" {
		l += ", winner " + es.Winner
		if es.Winner == controlOf(mr) {
			l += " (the control)"
		}
	}
	if es.DecidedAt != nil {
		l += " at " + es.DecidedAt.UTC().Format(time.RFC3339)
	}
	out := []string{l}
	if es.Reason != "" {
		out = append(out, "  reason: "+es.Reason)
	}
	return out
}

// stickiness says how users stay on their arm, with the defaults the
// controller applies.
func stickiness(mr *v1alpha1.ModelRollout) string {
	st := mr.Spec.Strategy.Experiment.Stickiness
	switch st.Mode {
	case v1alpha1.StickinessHeader:
		return "Header (request header " + st.Header + " names the arm)"
	case v1alpha1.StickinessNone:
		return "None (every request is split by weight)"
	}
	return "Cookie (cookie " + orDefault(st.CookieName, "fulcrum-exp-"+mr.Name) + ")"
}

// experimentSummary is the experiment's part of a progress line:
// arm=value[lower,upper] for each arm, the lift of the others, and the
// outcome once there is one.
func experimentSummary(mr *v1alpha1.ModelRollout) string {
	es := mr.Status.Experiment
	if es == nil {
		return ""
	}
	var arms, lifts []string
	for _, a := range es.Arms {
		if a.Value == nil {
			continue
		}
		arms = append(arms, fmt.Sprintf("%s:%s[%s,%s]n=%s", a.Subset, pnum(a.Value), pnum(a.Lower), pnum(a.Upper), fnum(a.Samples)))
		if a.Lift != nil {
			lifts = append(lifts, fmt.Sprintf("%s:%s[%s,%s]", a.Subset, signed(a.Lift), signed(a.LiftLower), signed(a.LiftUpper)))
		}
	}
	s := ""
	if len(arms) > 0 {
		s += " arms=" + strings.Join(arms, ",")
	}
	if len(lifts) > 0 {
		s += " lift=" + strings.Join(lifts, ",")
	}
	if es.Outcome != "" {
		s += " outcome=" + string(es.Outcome)
		if es.Winner != "" {
			s += " winner=" + es.Winner
		}
	}
	return s
}

// describeExperiment is the experiment's part of get and of live
// progress: the arm table and the outcome.
func describeExperiment(mr *v1alpha1.ModelRollout) []string {
	if mr.Spec.Strategy.Experiment == nil || mr.Status.Experiment == nil {
		return nil
	}
	lines := []string{"  experiment, users kept on their arm by " + stickiness(mr)}
	for _, l := range armTable(mr) {
		lines = append(lines, "  "+l)
	}
	for _, l := range outcomeLines(mr) {
		lines = append(lines, "  "+l)
	}
	return lines
}

// fnum prints a figure with four significant digits, and a large one (a
// count, a mean in the thousands) whole rather than in e-notation.
func fnum(v float64) string {
	if math.Abs(v) >= 1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func pnum(v *float64) string {
	if v == nil {
		return "-"
	}
	return fnum(*v)
}

// signed prints a lift with its sign, so that a loss reads as one.
func signed(v *float64) string {
	if v == nil {
		return "-"
	}
	if *v >= 0 {
		return "+" + fnum(*v)
	}
	return fnum(*v)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
