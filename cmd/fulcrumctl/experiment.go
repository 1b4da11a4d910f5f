package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// An experiment has no actions of its own in the admin API: it starts with
// the start action naming one of its arms as the candidate, and stops with
// the rollback action. These commands say so in its words, and check the
// rollout first so that a start on a rollout without an experiment does
// not quietly begin a canary.

func newExperimentCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "experiment",
		Short: "Run an A/B experiment (spec.strategy.experiment): start, get, stop",
		Long: `An experiment compares the arms of spec.strategy.experiment on a reward,
keeping each user on one arm, until it has an outcome: Winner, NoDifference,
Inconclusive (at maxDuration) or Stopped.`,
		// Without these, a mistyped subcommand would print help and exit 0.
		Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			return &exitError{code: exitUsageErr, err: errors.New("name a subcommand: fulcrumctl experiment start|get|stop NAME")}
		},
	}
	cmd.AddCommand(newExperimentStartCmd(o), newExperimentGetCmd(o), newExperimentStopCmd(o))
	return cmd
}

func newExperimentStartCmd(o *options) *cobra.Command {
	var af actionFlags
	var arm string
	cmd := &cobra.Command{
		Use:   "start NAME --arm SUBSET",
		Short: "Start the experiment, with SUBSET (an arm other than the control) as the candidate",
		Long: `Start the experiment of spec.strategy.experiment: every arm gets its weight of
new users, and the reward is read until there is an outcome. It is the start
action with the arm as the candidate.

With --wait, follow the experiment until it has an outcome and exit with:
  0  an arm beat the control (Winner)
  4  NoDifference: every arm is within minEffect of the control
  5  Inconclusive: no decision by maxDuration
  6  Stopped: a person rolled back or a guardrail failed
  7  Winner, but the winner is the control
  1  the request was refused, superseded or ignored, or the rollout ended
     without an outcome (promoted or split by hand, failed, deleted)
  2  --timeout passed first; the experiment goes on (set --timeout past
     spec.strategy.experiment.maxDuration to always see the outcome)`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if arm == "" {
				return &exitError{code: exitUsageErr, err: errors.New("--arm is required: name the arm to start with, e.g. --arm v2")}
			}
			mr, err := o.experimentRollout(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := checkArm(mr, arm); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			return o.actThen(cmd, args[0], "start", client.ActionRequest{Candidate: arm}, af, waitExperiment)
		},
	}
	cmd.Flags().StringVar(&arm, "arm", "", "the arm to start with as the candidate (a subset of spec.strategy.experiment.arms other than the control)")
	af.add(cmd, false)
	af.addWait(cmd, "wait for the outcome: exit 0 an arm won, 4 no difference, 5 inconclusive, 6 stopped, 7 the control won (1 and 2 as for start)", 30*time.Minute)
	return cmd
}

func newExperimentStopCmd(o *options) *cobra.Command {
	var af actionFlags
	cmd := &cobra.Command{
		Use:   "stop NAME",
		Short: "Stop the experiment and return all users to the control (the rollback action)",
		Long: `Stop the experiment: all users return to the control (spec.stable), which serves
100%, and the stickiness routes go. It is the rollback action; the outcome is
Stopped when the experiment was still running. After a winner kept as a split
it ends that split the same way.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := o.experimentRollout(cmd.Context(), args[0]); err != nil {
				return err
			}
			return o.act(cmd, args[0], "rollback", client.ActionRequest{}, af)
		},
	}
	af.add(cmd, false)
	return cmd
}

func newExperimentGetCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show the experiment: per arm weight, samples, value and lift with their bounds; the outcome",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			mr, err := o.experimentRollout(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if o.output == "json" {
				return o.printJSON(experimentJSON{Namespace: mr.Namespace, Name: mr.Name, Phase: phaseOf(mr),
					Strategy: mr.Spec.Strategy.Experiment, Status: mr.Status.Experiment})
			}
			for _, l := range experimentView(mr) {
				fmt.Fprintln(o.out, l)
			}
			return nil
		},
	}
}

// experimentJSON is experiment get -o json: the strategy and the status.
type experimentJSON struct {
	Namespace string                       `json:"namespace"`
	Name      string                       `json:"name"`
	Phase     v1alpha1.Phase               `json:"phase"`
	Strategy  *v1alpha1.ExperimentStrategy `json:"strategy"`
	Status    *v1alpha1.ExperimentStatus   `json:"status"`
}

// experimentRollout reads the rollout and refuses one without an
// experiment (exit 1).
func (o *options) experimentRollout(ctx context.Context, name string) (*v1alpha1.ModelRollout, error) {
	ns, err := o.requireNamespace()
	if err != nil {
		return nil, err
	}
	c, err := o.client()
	if err != nil {
		return nil, err
	}
	mr, err := c.Get(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	if mr.Spec.Strategy.Experiment == nil {
		return nil, &exitError{code: exitFailed, err: fmt.Errorf(
			"%s/%s has no experiment: spec.strategy.experiment is not set; add it (arms, reward) to the ModelRollout, or use 'fulcrumctl start' and 'rollback' for a canary", ns, name)}
	}
	return mr, nil
}

// checkArm says why arm cannot start the experiment; the controller would
// ignore the start, and a pipeline learns it sooner here.
func checkArm(mr *v1alpha1.ModelRollout, arm string) error {
	arms := mr.Spec.Strategy.Experiment.Arms
	names := make([]string, len(arms))
	for i, a := range arms {
		names[i] = a.Subset
	}
	if len(arms) > 0 && arms[0].Subset == arm {
		return fmt.Errorf("--arm %s is the control (the first of spec.strategy.experiment.arms): name another arm, one of %s",
			arm, strings.Join(names[1:], ", "))
	}
	for _, a := range arms {
		if a.Subset == arm {
			return nil
		}
	}
	return fmt.Errorf("--arm %s is not an arm of spec.strategy.experiment (arms %s): name one of them other than the control, or add it to arms",
		arm, strings.Join(names, ", "))
}

// waitExperiment follows the experiment that intent id started until it
// has an outcome, and returns the outcome's exit code.
func waitExperiment(ctx context.Context, c *client.Client, p *printer, ns, name, id string, timeout time.Duration) int {
	hint := fmt.Sprintf("the experiment goes on; follow it with 'fulcrumctl experiment get %s -n %s'", name, ns)
	return follow(ctx, c, p, ns, name, timeout, hint, func(mr *v1alpha1.ModelRollout) verdict {
		if v, settled := intentVerdict(mr, id); settled {
			return v
		}
		return experimentVerdict(mr)
	})
}

// experimentVerdict reads an experiment that has started: done once it has
// an outcome, or once the rollout left it without one (a person promoted
// or split by hand, or the rollout failed).
func experimentVerdict(mr *v1alpha1.ModelRollout) verdict {
	es := mr.Status.Experiment
	if es != nil && es.Outcome != "" {
		v := verdict{done: true, code: outcomeCode(mr), result: string(es.Outcome), message: es.Reason, reason: es.Reason}
		if es.Winner != "" {
			v.result += " " + es.Winner
		}
		return v
	}
	switch mr.Status.Phase {
	case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused:
		return verdict{}
	}
	return verdict{done: true, code: exitFailed, result: string(phaseOf(mr)),
		message: "the experiment ended without an outcome: " + dash(mr.Status.Message), reason: mr.Status.Message}
}

// outcomeCode is the exit code of an experiment's outcome.
func outcomeCode(mr *v1alpha1.ModelRollout) int {
	es := mr.Status.Experiment
	switch es.Outcome {
	case v1alpha1.ExperimentWinner:
		if es.Winner == controlOf(mr) {
			return exitControlWon
		}
		return exitOK
	case v1alpha1.ExperimentNoDifference:
		return exitNoDifference
	case v1alpha1.ExperimentInconclusive:
		return exitInconclusive
	case v1alpha1.ExperimentStopped:
		return exitStopped
	}
	return exitFailed
}

// controlOf is the experiment's control: the first arm.
func controlOf(mr *v1alpha1.ModelRollout) string {
	if e := mr.Spec.Strategy.Experiment; e != nil && len(e.Arms) > 0 {
		return e.Arms[0].Subset
	}
	if es := mr.Status.Experiment; es != nil && len(es.Arms) > 0 {
		return es.Arms[0].Subset
	}
	return mr.Spec.Stable
}
