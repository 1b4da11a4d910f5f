package intent

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// PendingRetryAfter is what a 409 for a pending intent tells the client to
// wait: the controller applies an intent within one reconcile.
const PendingRetryAfter = 2 * time.Second

// Inputs is what Plan needs besides the request and the rollout.
type Inputs struct {
	// Subsets of the rollout's DestinationRule; needed for start and split.
	Subsets []string
	// Actor is the authenticated user.
	Actor string
	// ID of the new intent, from NewID or KeyedID.
	ID string
	// Keyed is true when ID came from an Idempotency-Key: an intent with the
	// same id already requested or applied makes the request a no-op.
	Keyed bool
	Now   time.Time
}

// Result of Plan: either Updated (a modified copy to write) or NoOp (the same
// request was already made; answer with the current object).
type Result struct {
	Updated *v1alpha1.ModelRollout
	NoOp    bool
}

// Allowed lists the phases in which each action may be requested. A rollout
// the controller has not seen yet (no phase) counts as Stable.
var Allowed = map[v1alpha1.IntentAction][]v1alpha1.Phase{
	v1alpha1.IntentStart:    {v1alpha1.PhaseStable, v1alpha1.PhasePromoted, v1alpha1.PhaseRolledBack, v1alpha1.PhaseFailed},
	v1alpha1.IntentSplit:    {v1alpha1.PhaseStable, v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseManualSplit, v1alpha1.PhasePromoted, v1alpha1.PhaseRolledBack},
	v1alpha1.IntentPromote:  {v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseManualSplit},
	v1alpha1.IntentRollback: {v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseManualSplit},
	v1alpha1.IntentPause:    {v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseManualSplit},
	v1alpha1.IntentResume:   {v1alpha1.PhasePaused, v1alpha1.PhaseManualSplit},
}

// Phase is the rollout's phase, Stable when the controller has not set one.
func Phase(mr *v1alpha1.ModelRollout) v1alpha1.Phase {
	if mr.Status.Phase == "" {
		return v1alpha1.PhaseStable
	}
	return mr.Status.Phase
}

// Pending reports whether the rollout carries an intent the controller has
// not applied yet.
func Pending(mr *v1alpha1.ModelRollout) bool {
	return mr.Spec.Intent != nil && mr.Spec.Intent.ID != mr.Status.ObservedIntent
}

// Plan decides what req does to mr. It never mutates mr.
func Plan(mr *v1alpha1.ModelRollout, req Request, in Inputs) (Result, error) {
	cur := mr.Spec.Intent
	if in.Keyed && cur != nil && cur.ID == in.ID {
		if samePayload(cur, req) {
			return Result{NoOp: true}, nil
		}
		return Result{}, &Error{Status: 422, Title: "Idempotency-Key reused", Field: "Idempotency-Key",
			Detail: fmt.Sprintf("this Idempotency-Key was already used for a different %s request on %s/%s: use a new key for a new request", Verb(cur.Action), mr.Namespace, mr.Name)}
	}
	if in.Keyed && appliedBefore(mr, in.ID) {
		return Result{NoOp: true}, nil
	}
	if Pending(mr) {
		if samePayload(cur, req) {
			return Result{NoOp: true}, nil
		}
		e := conflict("Previous action pending",
			fmt.Sprintf("%s requested by %s (intent %s) on %s/%s has not been applied by the controller yet: retry in a few seconds",
				Verb(cur.Action), orUnknown(cur.Actor), cur.ID, mr.Namespace, mr.Name), Phase(mr))
		e.RetryAfter = PendingRetryAfter
		return Result{}, e
	}
	phase := Phase(mr)
	if !slices.Contains(Allowed[req.Action], phase) {
		return Result{}, conflict("Action not allowed in this phase", phaseDetail(mr, req.Action, phase), phase)
	}
	switch req.Action {
	case v1alpha1.IntentStart:
		if req.Candidate == mr.Spec.Stable {
			return Result{}, invalid("candidate", fmt.Sprintf("candidate %q is already the stable version of %s/%s: name a different subset", req.Candidate, mr.Namespace, mr.Name))
		}
		if !slices.Contains(in.Subsets, req.Candidate) {
			return Result{}, invalid("candidate", fmt.Sprintf("candidate %q is not a subset of DestinationRule %s/%s (subsets: %s): add the subset or name an existing one",
				req.Candidate, mr.Namespace, mr.Spec.DestinationRule, list(in.Subsets)))
		}
	case v1alpha1.IntentSplit:
		for i, w := range req.Weights {
			if !slices.Contains(in.Subsets, w.Subset) {
				return Result{}, invalid(fmt.Sprintf("weights[%d].subset", i), fmt.Sprintf("subset %q is not in DestinationRule %s/%s (subsets: %s): add the subset or name an existing one",
					w.Subset, mr.Namespace, mr.Spec.DestinationRule, list(in.Subsets)))
			}
		}
	}
	out := mr.DeepCopy()
	now := metav1.NewTime(in.Now)
	out.Spec.Intent = &v1alpha1.Intent{
		ID:          in.ID,
		Action:      req.Action,
		Weights:     slices.Clone(req.Weights),
		Actor:       truncate(in.Actor, 253),
		Reason:      req.Reason,
		RequestedAt: &now,
	}
	if req.Action == v1alpha1.IntentStart {
		out.Spec.Candidate = req.Candidate
	}
	return Result{Updated: out}, nil
}

func phaseDetail(mr *v1alpha1.ModelRollout, a v1alpha1.IntentAction, p v1alpha1.Phase) string {
	allowed := make([]string, 0, len(Allowed[a]))
	for _, ph := range Allowed[a] {
		allowed = append(allowed, string(ph))
	}
	hint := ""
	switch a {
	case v1alpha1.IntentStart:
		hint = ": promote or roll back the current rollout first"
		if c := mr.Spec.Candidate; c != "" {
			hint = fmt.Sprintf(": candidate %q is still rolling out; promote or roll it back first", c)
		}
	case v1alpha1.IntentResume:
		hint = ": only a paused or manually split rollout can resume"
	default:
		hint = ": start a rollout first"
	}
	return fmt.Sprintf("%s/%s is %s; %s is allowed only while %s%s", mr.Namespace, mr.Name, p, Verb(a), strings.Join(allowed, ", "), hint)
}

// samePayload reports whether req asks for exactly what cur asked for
// (reason aside: retrying with a reworded reason is still the same action).
func samePayload(cur *v1alpha1.Intent, req Request) bool {
	if cur == nil || cur.Action != req.Action {
		return false
	}
	if req.Action == v1alpha1.IntentSplit {
		return slices.Equal(cur.Weights, req.Weights)
	}
	return true
}

func appliedBefore(mr *v1alpha1.ModelRollout, id string) bool {
	if mr.Status.ObservedIntent == id {
		return true
	}
	for _, h := range mr.Status.History {
		if h.IntentID == id {
			return true
		}
	}
	return false
}

// KeyedID derives an intent id from a client's Idempotency-Key, scoped to
// the rollout and the user so two users' keys never collide.
func KeyedID(namespace, name, user, key string) string {
	sum := sha256.Sum256([]byte(namespace + "\x00" + name + "\x00" + user + "\x00" + key))
	return "idem-" + hex.EncodeToString(sum[:20])
}

// NewID is a fresh intent id: the action, the time and randomness, so ids
// sort roughly by time and say what they were.
func NewID(a v1alpha1.IntentAction, now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return Verb(a) + "-" + strconv.FormatInt(now.UnixMilli(), 36) + "-" + hex.EncodeToString(b[:])
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown actor"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
