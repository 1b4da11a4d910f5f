package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Gates (spec.gates) in fulcrumctl: the approve command, the gate lines of
// get and watch, and what --wait prints while a gate holds the rollout.

func newApproveCmd(o *options) *cobra.Command {
	var af actionFlags
	var gate string
	cmd := &cobra.Command{
		Use:   "approve NAME [--gate GATE] --reason TEXT",
		Short: "Approve the approval gate the rollout waits for (RBAC verb approve)",
		Long: `Approve passes the approval gate (spec.gates[].approval) a progressing
rollout waits for; the rollout goes on, and its history records who approved
and why. --gate names the gate (the server refuses an approval of another
gate than the one waiting); without it, the waiting gate is approved.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.act(cmd, args[0], "approve", client.ActionRequest{Gate: gate}, af)
		},
	}
	cmd.Flags().StringVar(&gate, "gate", "", "the approval gate to approve (spec.gates[].name); the waiting one when empty")
	af.add(cmd, true)
	return cmd
}

// gateLines describe a rollout's gates for get and the live view: the one
// holding it, those running after its end, and the latest results.
func gateLines(mr *v1alpha1.ModelRollout) []string {
	gs := mr.Status.Gates
	if gs == nil {
		return nil
	}
	var lines []string
	if p := gs.Pending; p != nil && mr.Status.Phase == v1alpha1.PhaseProgressing {
		l := fmt.Sprintf("  gate %s (%s at %s) holds the rollout since %s", p.Name, gateKind(p.Type), where(p), p.StartedAt.UTC().Format(time.RFC3339))
		if p.Deadline != nil {
			l += ", until " + p.Deadline.UTC().Format(time.RFC3339)
		}
		lines = append(lines, l)
		if p.Type == v1alpha1.GateTypeApproval {
			if g := specGate(mr, p.Name); g != nil && g.Approval != nil && g.Approval.Instructions != "" {
				lines = append(lines, "    before approving: "+g.Approval.Instructions)
			}
			lines = append(lines, "    "+approveCommand(mr, p.Name))
		} else if p.Message != "" {
			lines = append(lines, "    "+p.Message)
		}
	}
	for _, b := range gs.Background {
		l := fmt.Sprintf("  gate %s (%s at %s) runs after the rollout ended", b.Name, gateKind(b.Type), b.At)
		if b.Message != "" {
			l += ": " + b.Message
		}
		lines = append(lines, l)
	}
	if n := len(gs.Results); n > 0 {
		var parts []string
		for _, r := range gs.Results[max(0, n-5):] {
			p := fmt.Sprintf("%s %s", r.Name, r.Outcome)
			if r.Actor != "" {
				p += " by " + r.Actor
			}
			parts = append(parts, p)
		}
		lines = append(lines, "  gates: "+strings.Join(parts, ", "))
	}
	return lines
}

// gateNotice is what --wait prints, once, when a gate starts holding the
// rollout it follows: a line of its own, apart from the progress, so that a
// pipeline's log says plainly that it waits for a gate, and for an
// approval, who must do what. key changes with each run and state.
func gateNotice(mr *v1alpha1.ModelRollout) (key, line string, run *v1alpha1.GateRun) {
	gs := mr.Status.Gates
	if gs == nil || gs.Pending == nil || mr.Status.Phase != v1alpha1.PhaseProgressing {
		return "", "", nil
	}
	p := gs.Pending
	head := fmt.Sprintf("%s/%s waiting for gate %s (%s at %s)", mr.Namespace, mr.Name, p.Name, gateKind(p.Type), where(p))
	if p.Type == v1alpha1.GateTypeApproval {
		line = head + ": a person with the approve verb must approve it: " + approveCommand(mr, p.Name)
		if g := specGate(mr, p.Name); g != nil && g.Approval != nil && g.Approval.Instructions != "" {
			line += " (" + g.Approval.Instructions + ")"
		}
	} else {
		line = head + ": it runs"
		if p.Deadline != nil {
			line += " until " + p.Deadline.UTC().Format(time.RFC3339) + " at most"
		}
	}
	return p.ID + "/" + string(p.State), line, p
}

// gateWatch prints gateNotice lines for a --wait, and remembers the last
// one for the timeout's message.
type gateWatch struct {
	p    *printer
	seen string
	last string
}

func (g *gateWatch) look(mr *v1alpha1.ModelRollout) {
	key, line, run := gateNotice(mr)
	if key == "" {
		g.last = ""
		return
	}
	g.last = line
	if key == g.seen {
		return
	}
	g.seen = key
	if g.p.o.output == "json" {
		_ = json.NewEncoder(g.p.o.out).Encode(map[string]any{"type": "gate", "namespace": mr.Namespace, "name": mr.Name, "gate": run, "message": line})
		return
	}
	g.p.clear()
	fmt.Fprintf(g.p.o.out, "%s %s\n", stamp(), line)
}

func approveCommand(mr *v1alpha1.ModelRollout, gate string) string {
	return fmt.Sprintf("fulcrumctl approve %s -n %s --gate %s --reason '...'", mr.Name, mr.Namespace, gate)
}

func specGate(mr *v1alpha1.ModelRollout, name string) *v1alpha1.Gate {
	for i := range mr.Spec.Gates {
		if mr.Spec.Gates[i].Name == name {
			return &mr.Spec.Gates[i]
		}
	}
	return nil
}

func gateKind(t v1alpha1.GateType) string {
	if t == v1alpha1.GateTypeHTTP {
		return "HTTP"
	}
	return strings.ToLower(string(t))
}

func where(r *v1alpha1.GateRun) string {
	if r.At == v1alpha1.GateEachStep && r.Step != nil {
		return fmt.Sprintf("EachStep, before step %d at %d%%", *r.Step+1, r.Weight)
	}
	if r.At == v1alpha1.GatePrePromote {
		return "PrePromote, before 100%"
	}
	return string(r.At)
}
