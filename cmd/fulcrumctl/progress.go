package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// printer shows rollouts as they change: on a terminal a block redrawn in
// place, otherwise one plain line per change, or one JSON object per event
// with -o json.
type printer struct {
	o     *options
	tty   bool
	drawn int               // lines of the block last drawn (terminal)
	last  map[string]string // last plain line per rollout, to skip repeats
}

func newPrinter(o *options) *printer {
	return &printer{o: o, tty: o.output != "json" && isTerminal(o.out), last: map[string]string{}}
}

func (p *printer) event(ev client.Event) {
	switch {
	case p.o.output == "json":
		if ev.Type == "rollout" || ev.Type == "deleted" {
			_ = json.NewEncoder(p.o.out).Encode(map[string]any{"type": ev.Type, "rollout": ev.Rollout, "namespace": ev.Namespace, "name": ev.Name})
		}
	case ev.Type == "deleted":
		p.clear()
		fmt.Fprintf(p.o.out, "%s %s/%s deleted\n", stamp(), ev.Namespace, ev.Name)
	case ev.Type == "rollout" && p.tty:
		p.clear()
		lines := describe(ev.Rollout)
		for _, l := range lines {
			fmt.Fprintln(p.o.out, l)
		}
		p.drawn = len(lines)
	case ev.Type == "rollout":
		mr := ev.Rollout
		line := summary(mr)
		key := mr.Namespace + "/" + mr.Name
		if p.last[key] != line {
			p.last[key] = line
			fmt.Fprintf(p.o.out, "%s %s\n", stamp(), line)
		}
	}
}

// clear erases the block drawn last, so the next one replaces it.
func (p *printer) clear() {
	if p.tty && p.drawn > 0 {
		fmt.Fprintf(p.o.out, "\x1b[%dA\x1b[J", p.drawn)
	}
	p.drawn = 0
}

func stamp() string { return time.Now().UTC().Format(time.RFC3339) }

// summary is one line: where the rollout is and what the analysis says.
func summary(mr *v1alpha1.ModelRollout) string {
	s := fmt.Sprintf("%s/%s phase=%s", mr.Namespace, mr.Name, phaseOf(mr))
	if st := stepOf(mr); st != "" {
		s += " step=" + st
	}
	if w := weights(mr.Status.Weights); w != "" {
		s += " weights=" + w
	}
	if v := verdicts(mr); v != "" {
		s += " verdicts=" + v
	}
	s += experimentSummary(mr)
	if mr.Status.Message != "" {
		s += fmt.Sprintf(" message=%q", mr.Status.Message)
	}
	return s
}

// describe is the multi-line view of get and of live progress.
func describe(mr *v1alpha1.ModelRollout) []string {
	lines := []string{
		fmt.Sprintf("%s/%s  %s", mr.Namespace, mr.Name, phaseOf(mr)),
		fmt.Sprintf("  stable %s  candidate %s  step %s", mr.Spec.Stable, dash(mr.Spec.Candidate), dash(stepOf(mr))),
		fmt.Sprintf("  weights %s", dash(weights(mr.Status.Weights))),
	}
	if a := mr.Status.Analysis; a != nil && len(a.RecentRounds) > 0 {
		r := a.RecentRounds[len(a.RecentRounds)-1]
		lines = append(lines, fmt.Sprintf("  analysis round %d at step %d: %s", a.Rounds, r.Step, r.Verdict))
		for _, m := range r.Metrics {
			l := fmt.Sprintf("    %-20s %-12s", m.Name, m.Verdict)
			if m.Value != nil {
				l += fmt.Sprintf(" value %.4g", *m.Value)
			}
			if m.Baseline != nil {
				l += fmt.Sprintf(" baseline %.4g", *m.Baseline)
			}
			if m.Threshold != "" {
				l += " threshold " + m.Threshold
			}
			if m.CandidateSamples > 0 {
				l += fmt.Sprintf(" samples %d", m.CandidateSamples)
			}
			if m.Message != "" {
				l += "  " + m.Message
			}
			lines = append(lines, l)
		}
	} else if a != nil && !a.Ran {
		lines = append(lines, "  analysis: none configured (steps advance on time)")
	}
	lines = append(lines, describeExperiment(mr)...)
	lines = append(lines, gateLines(mr)...)
	lines = append(lines, scaling(mr)...)
	if mr.Status.Message != "" {
		lines = append(lines, "  "+mr.Status.Message)
	}
	if in := mr.Spec.Intent; in != nil {
		state := "applied"
		if in.ID != mr.Status.ObservedIntent {
			state = "pending"
		}
		lines = append(lines, fmt.Sprintf("  last request: %s by %s (%s) %s", strings.ToLower(string(in.Action)), dash(in.Actor), state, in.Reason))
	}
	return lines
}

// scaling lists what Fulcrum changed on the versions' workloads, with the
// values it will put back, and the pending scale-down.
func scaling(mr *v1alpha1.ModelRollout) []string {
	sc := mr.Status.Scaling
	if sc == nil {
		return nil
	}
	var lines []string
	for _, c := range sc.Changes {
		l := fmt.Sprintf("  scaled %s %s %s %d→%d at %s: %s", c.Kind, c.Name, strings.TrimPrefix(c.Field, "spec."),
			c.Original, c.Set, c.At.UTC().Format(time.RFC3339), c.Reason)
		if c.Restoring {
			l = fmt.Sprintf("  putting back %s %s %s to %d (Fulcrum set %d)", c.Kind, c.Name, strings.TrimPrefix(c.Field, "spec."), c.Original, c.Set)
		}
		lines = append(lines, l)
	}
	if sd := sc.ScaleDown; sd != nil {
		lines = append(lines, fmt.Sprintf("  scale-down: %s to %d replicas at %s", sd.Subset, sd.Replicas, sd.At.UTC().Format(time.RFC3339)))
	}
	return lines
}

func verdicts(mr *v1alpha1.ModelRollout) string {
	a := mr.Status.Analysis
	if a == nil || len(a.RecentRounds) == 0 {
		return ""
	}
	r := a.RecentRounds[len(a.RecentRounds)-1]
	parts := []string{}
	for _, m := range r.Metrics {
		parts = append(parts, m.Name+":"+string(m.Verdict))
	}
	if len(parts) == 0 {
		return string(r.Verdict)
	}
	return strings.Join(parts, ",")
}

func phaseOf(mr *v1alpha1.ModelRollout) v1alpha1.Phase {
	if mr.Status.Phase == "" {
		return "Pending"
	}
	return mr.Status.Phase
}

func stepOf(mr *v1alpha1.ModelRollout) string {
	if sh := mr.Status.Shadow; sh != nil && (mr.Status.Phase == v1alpha1.PhaseProgressing || mr.Status.Phase == v1alpha1.PhasePaused) {
		return fmt.Sprintf("shadow (%d%% copied to %s)", sh.Percent, sh.Subset)
	}
	if mr.Status.Step == nil || mr.Spec.Strategy.Experiment != nil {
		// An experiment's step is always 0: it has arms, not steps.
		return ""
	}
	n := ""
	if c := mr.Spec.Strategy.Canary; c != nil {
		n = fmt.Sprintf("/%d", len(c.Steps))
	}
	if w := mr.Status.Warmup; w != nil && mr.Status.Phase == v1alpha1.PhaseProgressing {
		return fmt.Sprintf("%d%s (warming %s for %d%%)", *mr.Status.Step+1, n, w.Subset, w.Weight)
	}
	return fmt.Sprintf("%d%s", *mr.Status.Step+1, n)
}

func weights(ws []v1alpha1.SubsetWeight) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = fmt.Sprintf("%s=%d", w.Subset, w.Weight)
	}
	return strings.Join(parts, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// watchLoop follows a stream, reconnecting after the server closes it,
// until fn says done or ctx ends. Failing to connect the first time is an
// error (exit 3); later drops are retried with backoff.
func watchLoop(ctx context.Context, c *client.Client, ns, name string, fn func(client.Event) (done bool, code int)) error {
	connected := false
	backoff := 500 * time.Millisecond
	for {
		var code int
		done := false
		err := c.Watch(ctx, ns, name, func(ev client.Event) bool {
			connected = true
			done, code = fn(ev)
			return !done
		})
		if done {
			if code != exitOK {
				return &exitError{code: code}
			}
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		var p *client.Problem
		if errors.As(err, &p) || !connected {
			return err
		}
		if !errors.Is(err, io.EOF) {
			backoff = min(backoff*2, 5*time.Second)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// verdict is what a --wait makes of the rollout it follows.
type verdict struct {
	done   bool
	code   int
	result string // Promoted, RolledBack, NotApplied, Winner...
	// message follows the result on the last text line; reason is the
	// JSON's reason field.
	message, reason string
}

// judge reads one state of the followed rollout.
type judge func(mr *v1alpha1.ModelRollout) verdict

// waitOutcome follows the rollout until the controller has applied intent
// id and the rollout reached an end: Promoted (exit 0), RolledBack or Failed
// (exit 1), or the timeout passed (exit 2).
func waitOutcome(ctx context.Context, c *client.Client, p *printer, ns, name, id string, timeout time.Duration) int {
	hint := fmt.Sprintf("the rollout goes on; follow it with 'fulcrumctl watch %s -n %s'", name, ns)
	return follow(ctx, c, p, ns, name, timeout, hint, func(mr *v1alpha1.ModelRollout) verdict {
		if v, settled := intentVerdict(mr, id); settled {
			return v
		}
		switch mr.Status.Phase {
		case v1alpha1.PhasePromoted:
			return verdict{done: true, code: exitOK, result: string(mr.Status.Phase), message: mr.Status.Message}
		case v1alpha1.PhaseRolledBack, v1alpha1.PhaseFailed:
			return verdict{done: true, code: exitFailed, result: string(mr.Status.Phase), message: mr.Status.Message}
		}
		return verdict{}
	})
}

// intentVerdict settles a --wait whose request will never be applied (exit
// 1, result NotApplied), and holds it (settled, not done) until the
// controller applied intent id: earlier outcomes do not count.
func intentVerdict(mr *v1alpha1.ModelRollout, id string) (verdict, bool) {
	if why := notApplied(mr, id); why != "" {
		// Superseded by a rollback or ignored: this request will not be
		// applied, whatever the phase does next.
		return verdict{done: true, code: exitFailed, result: "NotApplied", message: why, reason: why}, true
	}
	return verdict{}, !applied(mr, id)
}

// follow prints the rollout's progress until judge says done, the rollout
// is deleted (exit 1) or the timeout passes (exit 2, with hint), then one
// last line (or JSON object) with the result, and returns the exit code.
func follow(ctx context.Context, c *client.Client, p *printer, ns, name string, timeout time.Duration, hint string, judge judge) int {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var final *v1alpha1.ModelRollout
	var last verdict
	gates := &gateWatch{p: p}
	err := watchLoop(ctx, c, ns, name, func(ev client.Event) (bool, int) {
		p.event(ev)
		switch ev.Type {
		case "deleted":
			last = verdict{done: true, code: exitFailed, result: "Deleted", message: "the rollout was deleted"}
		case "rollout":
			last = judge(ev.Rollout)
			final = ev.Rollout
			if !last.done {
				gates.look(ev.Rollout)
			}
		}
		return last.done, last.code
	})
	code := exitOK
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case err != nil:
		fmt.Fprintln(p.o.err, "error:", err)
		var prob *client.Problem
		if errors.As(err, &prob) {
			return exitFailed
		}
		return exitUsageErr
	case ctx.Err() != nil && !last.done:
		code = exitTimeout
	}
	result, msg := last.result, last.message
	if !last.done {
		// Only the timeout ends a wait without a verdict.
		result, msg, final = "timed out", fmt.Sprintf("after %s (%s)", timeout, hint), nil
		if gates.last != "" {
			msg += "; still " + strings.TrimPrefix(gates.last, ns+"/"+name+" ")
		}
	}
	if p.o.output == "json" {
		_ = json.NewEncoder(p.o.out).Encode(map[string]any{"result": result, "exitCode": code, "reason": last.reason, "rollout": final})
	} else {
		sep := ": "
		if !last.done {
			sep = " "
		}
		if msg == "" {
			sep = ""
		}
		fmt.Fprintf(p.o.out, "%s/%s %s%s%s\n", ns, name, result, sep, msg)
	}
	return code
}

// applied reports whether the controller has applied intent id.
func applied(mr *v1alpha1.ModelRollout, id string) bool {
	if id == "" || mr.Status.ObservedIntent == id {
		return true
	}
	for _, h := range mr.Status.History {
		if h.IntentID == id {
			return true
		}
	}
	return false
}

// notApplied says why the controller will never apply intent id: a rollback
// superseded it (named in spec.intent.supersedes, then in history), or the
// controller ignored it. Empty while it may still be applied.
func notApplied(mr *v1alpha1.ModelRollout, id string) string {
	if in := mr.Spec.Intent; id != "" && in != nil && in.Supersedes != nil && in.Supersedes.ID == id {
		return fmt.Sprintf("superseded by %s from %s (intent %s)", strings.ToLower(string(in.Action)), dash(in.Actor), in.ID)
	}
	for _, h := range mr.Status.History {
		if id != "" && h.IntentID == id && (h.Type == "IntentSuperseded" || h.Type == "IntentIgnored") {
			return h.Reason
		}
	}
	return ""
}
