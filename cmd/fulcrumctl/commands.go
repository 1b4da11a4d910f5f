package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func (o *options) printJSON(v any) error {
	enc := json.NewEncoder(o.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newListCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List rollouts (in -n NAMESPACE, or in all namespaces)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			items, err := c.List(cmd.Context(), o.namespace)
			if err != nil {
				return err
			}
			if o.output == "json" {
				return o.printJSON(map[string]any{"items": items})
			}
			tw := tabwriter.NewWriter(o.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAMESPACE\tNAME\tPHASE\tSTABLE\tCANDIDATE\tWEIGHTS\tSTEP\tMESSAGE")
			for i := range items {
				mr := &items[i]
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mr.Namespace, mr.Name, phaseOf(mr), mr.Spec.Stable,
					dash(mr.Spec.Candidate), dash(weights(mr.Status.Weights)), dash(stepOf(mr)), mr.Status.Message)
			}
			return tw.Flush()
		},
	}
}

func newGetCmd(o *options) *cobra.Command {
	var af actionFlags
	cmd := &cobra.Command{
		Use:   "get NAME [--wait]",
		Short: "Show one rollout: phase, weights, step, gates and latest analysis",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, err := o.requireNamespace()
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			mr, err := c.Get(cmd.Context(), ns, args[0])
			if err != nil {
				return err
			}
			if af.wait {
				// Follow the rollout in progress to its end, as start
				// --wait does, saying so when a gate holds it.
				code := waitOutcome(cmd.Context(), c, newPrinter(o), ns, args[0], "", af.timeout)
				if code != exitOK {
					return &exitError{code: code}
				}
				return nil
			}
			if o.output == "json" {
				return o.printJSON(mr)
			}
			for _, l := range describe(mr) {
				fmt.Fprintln(o.out, l)
			}
			return nil
		},
	}
	af.addWait(cmd, "follow the rollout until it ends: exit 0 promoted, 1 rolled back or failed, 2 timed out", 30*time.Minute)
	return cmd
}

func newHistoryCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "history NAME",
		Short: "Show a rollout's transitions: who did what, when and why",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, err := o.requireNamespace()
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			h, err := c.History(cmd.Context(), ns, args[0])
			if err != nil {
				return err
			}
			if o.output == "json" {
				return o.printJSON(h)
			}
			if h.Dropped > 0 {
				fmt.Fprintf(o.out, "(%d older entries dropped)\n", h.Dropped)
			}
			tw := tabwriter.NewWriter(o.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tTYPE\tFROM\tTO\tWEIGHTS\tACTOR\tREASON")
			for _, e := range h.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Type, dash(string(e.From)),
					dash(string(e.To)), dash(weights(e.Weights)), dash(e.Actor), e.Reason)
			}
			return tw.Flush()
		},
	}
}

func newWhoAmICmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the token is and what it may do (in -n NAMESPACE)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			w, err := c.WhoAmI(cmd.Context(), o.namespace)
			if err != nil {
				return err
			}
			if o.output == "json" {
				return o.printJSON(w)
			}
			var can []string
			for _, v := range []string{"get", "list", "start", "split", "promote", "rollback", "pause", "resume", "approve"} {
				if w.Can[v] {
					can = append(can, v)
				}
			}
			fmt.Fprintf(o.out, "user: %s\ngroups: %s\nmay: %s\n", w.User, strings.Join(w.Groups, ", "), strings.Join(can, ", "))
			return nil
		},
	}
}

func newWatchCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "watch [NAME]",
		Short: "Follow one rollout, or every rollout in -n NAMESPACE (all namespaces when empty), live",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
				if _, err := o.requireNamespace(); err != nil {
					return err
				}
			}
			p := newPrinter(o)
			return watchLoop(cmd.Context(), c, o.namespace, name, func(ev client.Event) (bool, int) {
				p.event(ev)
				return false, 0
			})
		},
	}
}

type actionFlags struct {
	reason, key string
	wait        bool
	timeout     time.Duration
}

func (a *actionFlags) add(cmd *cobra.Command, wait bool) {
	cmd.Flags().StringVar(&a.reason, "reason", "", "why: recorded in the rollout's history, an Event and the audit log")
	cmd.Flags().StringVar(&a.key, "idempotency-key", "", "repeating the command with the same key does not repeat the action (e.g. the CI job id)")
	if wait {
		a.addWait(cmd, "wait for the outcome: exit 0 promoted, 1 rolled back or failed, 2 timed out", 30*time.Minute)
	}
}

// addWait adds --wait with its exit codes, and --timeout.
func (a *actionFlags) addWait(cmd *cobra.Command, usage string, timeout time.Duration) {
	cmd.Flags().BoolVar(&a.wait, "wait", false, usage)
	cmd.Flags().DurationVar(&a.timeout, "timeout", timeout, "how long --wait waits")
}

func newStartCmd(o *options) *cobra.Command {
	var af actionFlags
	var candidate string
	cmd := &cobra.Command{
		Use:   "start NAME --candidate VERSION",
		Short: "Start rolling out a candidate version (a DestinationRule subset)",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if candidate == "" {
				return &exitError{code: exitUsageErr, err: errors.New("--candidate is required: name the subset to roll out, e.g. --candidate v2")}
			}
			return o.act(cmd, args[0], "start", client.ActionRequest{Candidate: candidate}, af)
		},
	}
	cmd.Flags().StringVar(&candidate, "candidate", "", "the subset to roll out, e.g. v2")
	af.add(cmd, true)
	return cmd
}

func newSplitCmd(o *options) *cobra.Command {
	var af actionFlags
	cmd := &cobra.Command{
		Use:   "split NAME SUBSET=WEIGHT SUBSET=WEIGHT...",
		Short: "Pin explicit weights (integers summing to 100), e.g. split fraud v1=70 v2=30",
		Args:  usageArgs(cobra.MinimumNArgs(3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := parseWeights(args[1:])
			if err != nil {
				return &exitError{code: exitUsageErr, err: err}
			}
			return o.act(cmd, args[0], "split", client.ActionRequest{Weights: ws}, af)
		},
	}
	af.add(cmd, false)
	return cmd
}

func newSimpleActionCmd(o *options, action, short string, wait bool) *cobra.Command {
	var af actionFlags
	cmd := &cobra.Command{
		Use:   action + " NAME",
		Short: short,
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.act(cmd, args[0], action, client.ActionRequest{}, af)
		},
	}
	af.add(cmd, wait)
	return cmd
}

// parseWeights reads SUBSET=WEIGHT arguments; the server checks the rest
// (subsets exist, sum is 100) and says so if not.
func parseWeights(args []string) ([]v1alpha1.SubsetWeight, error) {
	out := make([]v1alpha1.SubsetWeight, 0, len(args))
	for _, a := range args {
		subset, w, ok := strings.Cut(a, "=")
		if !ok || subset == "" {
			return nil, fmt.Errorf("%q: write weights as SUBSET=WEIGHT, e.g. v1=70 v2=30", a)
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 || n > 100 {
			return nil, fmt.Errorf("%q: the weight must be an integer from 0 to 100", a)
		}
		out = append(out, v1alpha1.SubsetWeight{Subset: subset, Weight: int32(n)})
	}
	return out, nil
}

func (o *options) act(cmd *cobra.Command, name, action string, req client.ActionRequest, af actionFlags) error {
	return o.actThen(cmd, name, action, req, af, waitOutcome)
}

// waiter follows a rollout after the request that recorded intent id and
// returns the exit code.
type waiter func(ctx context.Context, c *client.Client, p *printer, ns, name, id string, timeout time.Duration) int

// actThen requests the action and, with --wait, follows it with wait.
func (o *options) actThen(cmd *cobra.Command, name, action string, req client.ActionRequest, af actionFlags, wait waiter) error {
	ns, err := o.requireNamespace()
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	req.Reason, req.IdempotencyKey = af.reason, af.key
	mr, err := c.Act(cmd.Context(), ns, name, action, req)
	if err != nil {
		return err
	}
	id := ""
	if mr.Spec.Intent != nil {
		id = mr.Spec.Intent.ID
	}
	if o.output == "json" && !af.wait {
		return o.printJSON(mr)
	}
	if o.output != "json" {
		fmt.Fprintf(o.out, "%s/%s: %s requested (intent %s); phase %s\n", ns, name, action, id, phaseOf(mr))
		if in := mr.Spec.Intent; in != nil && in.Supersedes != nil {
			old := in.Supersedes
			fmt.Fprintf(o.out, "%s/%s: it supersedes the pending %s by %s (intent %s), which will not be applied\n",
				ns, name, strings.ToLower(string(old.Action)), dash(old.Actor), old.ID)
		}
	}
	if !af.wait {
		return nil
	}
	code := wait(cmd.Context(), c, newPrinter(o), ns, name, id, af.timeout)
	if code != exitOK {
		return &exitError{code: code}
	}
	return nil
}

// usageArgs makes argument errors exit with the usage code.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &exitError{code: exitUsageErr, err: fmt.Errorf("%w\nusage: %s", err, cmd.UseLine())}
		}
		return nil
	}
}
