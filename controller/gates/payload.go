// Package gates carries out the runs of spec.gates that the state machine
// (controller/rollout) starts: HTTP calls in the background, never in a
// reconcile (Runner), the Jobs of Job gates (BuildJob, Observe), and the
// payload both receive. docs/hooks.md describes every hook and payload.
package gates

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
)

// PayloadKind is the payload's kind.
const PayloadKind = "GatePayload"

// Payload is what a gate receives: an HTTP gate's body (or the data of its
// body template) and a Job's FULCRUM_PAYLOAD. Its JSON field names are
// part of the API (docs/hooks.md); the Go names are what a body template
// reads ({{.Rollout.Name}}, {{.Step.Weight}}).
type Payload struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// ID names the gate run: the same for every attempt of a run, new for
	// every run (a receiver can tell a retry from a new question).
	ID string `json:"id"`
	// Gate is the gate's name and At its hook.
	Gate string            `json:"gate"`
	At   v1alpha1.GateHook `json:"at"`
	// Type is HTTP or Job.
	Type v1alpha1.GateType `json:"type"`
	// Attempt is the HTTP attempt, from 1; 0 for a Job.
	Attempt int32 `json:"attempt"`
	// Rollout names the ModelRollout.
	Rollout RolloutRef `json:"rollout"`
	// Stable and Candidate are the versions (subsets, or Services with a
	// Gateway API route); after a promotion Stable is the promoted one.
	Stable    string `json:"stable"`
	Candidate string `json:"candidate"`
	// Service is the model's Service.
	Service string `json:"service,omitempty"`
	// Phase of the rollout when the run started.
	Phase v1alpha1.Phase `json:"phase"`
	// Step is where the rollout is: for EachStep, the step whose weight
	// waits.
	Step Step `json:"step"`
	// Weights are the weights on the mesh when the run started.
	Weights []v1alpha1.SubsetWeight `json:"weights"`
	// StartedAt is when the run started; RolloutStartedAt when the
	// rollout did.
	StartedAt        time.Time  `json:"startedAt"`
	RolloutStartedAt *time.Time `json:"rolloutStartedAt,omitempty"`
	// Actor and Reason, after a promotion or a rollback (PostPromote,
	// OnRollback): who ended the rollout, and why.
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// RolloutRef names a ModelRollout.
type RolloutRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// Step is a canary step.
type Step struct {
	// Index into spec.strategy.canary.steps, from 0; Number from 1; Of is
	// how many steps there are.
	Index  int32 `json:"index"`
	Number int32 `json:"number"`
	Of     int32 `json:"of"`
	// Weight is the candidate's weight the gate holds back (100 before the
	// promotion; 0 for PostPromote and OnRollback, which hold nothing).
	Weight int32 `json:"weight"`
}

// NewPayload describes run of rollout mr, whose status is the one the run
// was decided in; service is the model's Service.
func NewPayload(mr *v1alpha1.ModelRollout, run *v1alpha1.GateRun, service string) Payload {
	st := &mr.Status
	p := Payload{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: PayloadKind,
		ID: run.ID, Gate: run.Name, At: run.At, Type: run.Type,
		Rollout: RolloutRef{Namespace: mr.Namespace, Name: mr.Name, UID: string(mr.UID)},
		Stable:  mr.Spec.Stable, Candidate: st.Candidate, Service: service, Phase: st.Phase,
		Weights:   st.Weights,
		StartedAt: run.StartedAt.UTC(),
		Step:      Step{Weight: run.Weight, Of: int32(len(stepsOf(mr)))},
	}
	if p.Weights == nil {
		p.Weights = []v1alpha1.SubsetWeight{}
	}
	if run.Step != nil {
		p.Step.Index, p.Step.Number = *run.Step, *run.Step+1
	}
	if t := st.RolloutStartedAt; t != nil {
		u := t.UTC()
		p.RolloutStartedAt = &u
	}
	if !run.At.Holds() {
		// Who ended the rollout, and why: the latest promotion or rollback.
		want := v1alpha1.HistoryPromoted
		if run.At == v1alpha1.GateOnRollback {
			want = v1alpha1.HistoryRolledBack
		}
		for i := len(st.History) - 1; i >= 0; i-- {
			if h := st.History[i]; h.Type == want {
				p.Actor, p.Reason = h.Actor, h.Reason
				break
			}
		}
	}
	return p
}

func stepsOf(mr *v1alpha1.ModelRollout) []int32 {
	if c := mr.Spec.Strategy.Canary; c != nil && len(c.Steps) > 0 {
		return c.Steps
	}
	return rollout.DefaultSteps
}

// JSON is the payload as sent.
func (p Payload) JSON() []byte {
	b, err := json.Marshal(p)
	if err != nil {
		// A struct of strings, numbers and times always marshals.
		panic(fmt.Sprintf("gates: marshal payload: %v", err))
	}
	return b
}

// Body is an HTTP gate's request body for p: the payload as JSON, or tmpl
// rendered with it (functions: json).
func Body(tmpl string, p Payload) ([]byte, error) {
	if strings.TrimSpace(tmpl) == "" {
		return p.JSON(), nil
	}
	t, err := template.New("body").Option("missingkey=error").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}).Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("spec.gates[].http.body is not a valid template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		return nil, fmt.Errorf("spec.gates[].http.body cannot be rendered: %w", err)
	}
	return buf.Bytes(), nil
}
