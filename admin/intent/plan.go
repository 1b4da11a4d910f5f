package intent

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
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
	// Key is the client's Idempotency-Key when ID came from one (KeyedID):
	// an intent with the same id already requested or applied makes the
	// request a no-op (same payload) or a 422 (another payload).
	Key string
	Now time.Time
	// OffStable is true when the caller read the VirtualService and found a
	// managed route sending traffic to a subset other than stable: a
	// rollback is then accepted whatever status says (status.weights trails
	// the route write, and a new rollout's routes are not adopted yet).
	OffStable bool
}

// Result of Plan: either Updated (a modified copy to write) or NoOp (the same
// request was already made; answer with the current object).
type Result struct {
	Updated *v1alpha1.ModelRollout
	NoOp    bool
	// IntentID is the intent that already covers a NoOp request.
	IntentID string
}

// Pending reports whether the rollout carries an intent the controller has
// not applied yet.
func Pending(mr *v1alpha1.ModelRollout) bool {
	return mr.Spec.Intent != nil && mr.Spec.Intent.ID != mr.Status.ObservedIntent
}

// Refusal returns why action a may not be asked of mr in its current state,
// or "" when it may. It is the phase/action table (v1alpha1.ActionAllowed)
// with one addition: a rollback over a pending intent is accepted even when
// stable already serves 100%, because it cancels that intent (a start not
// yet applied, a split about to move traffic).
func Refusal(mr *v1alpha1.ModelRollout, a v1alpha1.IntentAction) string {
	if v1alpha1.SupersedesPending(a) && Pending(mr) {
		return ""
	}
	return v1alpha1.ActionAllowed(a, v1alpha1.StateOf(mr))
}

// Actions lists every action, in the order clients show them.
var Actions = []v1alpha1.IntentAction{
	v1alpha1.IntentStart, v1alpha1.IntentSplit, v1alpha1.IntentPromote,
	v1alpha1.IntentRollback, v1alpha1.IntentPause, v1alpha1.IntentResume,
	v1alpha1.IntentApprove,
}

// ActionStatus says whether an action may be asked of a rollout now and,
// when not, why: the reason Plan's 409 would give.
type ActionStatus struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"`
}

// ActionsFor answers Refusal for every action, keyed by its URL verb, so that
// clients (the dashboard) offer only what the API would accept, without
// rules of their own.
func ActionsFor(mr *v1alpha1.ModelRollout) map[string]ActionStatus {
	out := make(map[string]ActionStatus, len(Actions))
	for _, a := range Actions {
		why := Refusal(mr, a)
		out[Verb(a)] = ActionStatus{Allowed: why == "", Reason: why}
	}
	return out
}

// Plan decides what req does to mr. It never mutates mr.
func Plan(mr *v1alpha1.ModelRollout, req Request, in Inputs) (Result, error) {
	if in.Key != "" {
		if p, found := earlier(mr, in.ID); found {
			if p.covers(req) {
				return Result{NoOp: true, IntentID: in.ID}, nil
			}
			return Result{}, &Error{Status: http.StatusUnprocessableEntity, Title: "Idempotency-Key reused", Field: "Idempotency-Key",
				Detail: fmt.Sprintf("Idempotency-Key %q was already used on %s/%s for %s (intent %s), not %s: use a new key for a new request",
					in.Key, mr.Namespace, mr.Name, p.describe(), in.ID, Verb(req.Action))}
		}
	}
	var supersedes *v1alpha1.SupersededIntent
	if Pending(mr) {
		cur := mr.Spec.Intent
		switch {
		case current(mr).covers(req):
			return Result{NoOp: true, IntentID: cur.ID}, nil
		case v1alpha1.SupersedesPending(req.Action):
			supersedes = &v1alpha1.SupersededIntent{ID: cur.ID, Action: cur.Action, Actor: cur.Actor}
		default:
			return Result{}, pendingConflict(mr, req)
		}
	}
	if why := Refusal(mr, req.Action); why != "" && !(req.Action == v1alpha1.IntentRollback && in.OffStable) {
		return Result{}, conflict("Action not allowed in this phase", fmt.Sprintf("%s/%s: %s", mr.Namespace, mr.Name, why), v1alpha1.StateOf(mr).Phase)
	}
	if err := checkSubsets(mr, req, in.Subsets); err != nil {
		return Result{}, err
	}
	gate, err := approvedGate(mr, req)
	if err != nil {
		return Result{}, err
	}
	out := mr.DeepCopy()
	now := metav1.NewTime(in.Now)
	out.Spec.Intent = &v1alpha1.Intent{
		ID:          in.ID,
		Action:      req.Action,
		Weights:     slices.Clone(req.Weights),
		Actor:       v1alpha1.CutText(in.Actor, v1alpha1.MaxActorLength),
		Reason:      req.Reason,
		RequestedAt: &now,
		Supersedes:  supersedes,
		Gate:        gate,
	}
	switch {
	case req.Action == v1alpha1.IntentStart:
		out.Spec.Candidate = req.Candidate
	case supersedes != nil && supersedes.Action == v1alpha1.IntentStart:
		// The start had set spec.candidate; left there, the controller would
		// start that candidate from the spec. Put back what it knows.
		out.Spec.Candidate = knownCandidate(mr)
	}
	return Result{Updated: out}, nil
}

// pendingConflict is the 409 for a request that waits behind a pending
// intent. A start of another candidate would not succeed by retrying (the
// pending start makes the rollout progress), so it names what to do instead.
func pendingConflict(mr *v1alpha1.ModelRollout, req Request) *Error {
	cur := mr.Spec.Intent
	phase := v1alpha1.StateOf(mr).Phase
	if req.Action == v1alpha1.IntentStart && cur.Action == v1alpha1.IntentStart {
		return conflict("Previous action pending", fmt.Sprintf(
			"%s/%s: start of candidate %q requested by %s (intent %s) has not been applied by the controller yet: to start %q instead, roll back first (a rollback cancels the pending start), then start %q",
			mr.Namespace, mr.Name, mr.Spec.Candidate, orUnknown(cur.Actor), cur.ID, req.Candidate, req.Candidate), phase)
	}
	e := conflict("Previous action pending", fmt.Sprintf(
		"%s/%s: %s requested by %s (intent %s) has not been applied by the controller yet: retry in a few seconds",
		mr.Namespace, mr.Name, Verb(cur.Action), orUnknown(cur.Actor), cur.ID), phase)
	e.RetryAfter = PendingRetryAfter
	return e
}

// knownCandidate is the candidate the controller is rolling out, or "" when
// no rollout is active.
func knownCandidate(mr *v1alpha1.ModelRollout) string {
	switch mr.Status.Phase {
	case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseManualSplit:
		return mr.Status.Candidate
	}
	return ""
}

// checkSubsets refuses a start or split that names a subset the
// DestinationRule does not have (or a candidate that is already stable).
func checkSubsets(mr *v1alpha1.ModelRollout, req Request, subsets []string) error {
	switch req.Action {
	case v1alpha1.IntentStart:
		if req.Candidate == mr.Spec.Stable {
			return invalid("candidate", fmt.Sprintf("candidate %q is already the stable version of %s/%s: name a different subset", req.Candidate, mr.Namespace, mr.Name))
		}
		if !slices.Contains(subsets, req.Candidate) && mr.Spec.GatewayRouted() {
			return invalid("candidate", fmt.Sprintf("candidate %q has no Service in namespace %s (Services with a selector: %s): with a Gateway API route each version is a Service; create it or name an existing one",
				req.Candidate, mr.Namespace, list(subsets)))
		}
		if !slices.Contains(subsets, req.Candidate) {
			return invalid("candidate", fmt.Sprintf("candidate %q is not a subset of DestinationRule %s/%s (subsets: %s): add the subset or name an existing one",
				req.Candidate, mr.Namespace, mr.Spec.DestinationRule, list(subsets)))
		}
	case v1alpha1.IntentSplit:
		for i, w := range req.Weights {
			if !slices.Contains(subsets, w.Subset) && mr.Spec.GatewayRouted() {
				return invalid(fmt.Sprintf("weights[%d].subset", i), fmt.Sprintf("version %q has no Service in namespace %s (Services with a selector: %s): with a Gateway API route each version is a Service; create it or name an existing one",
					w.Subset, mr.Namespace, list(subsets)))
			}
			if !slices.Contains(subsets, w.Subset) {
				return invalid(fmt.Sprintf("weights[%d].subset", i), fmt.Sprintf("subset %q is not in DestinationRule %s/%s (subsets: %s): add the subset or name an existing one",
					w.Subset, mr.Namespace, mr.Spec.DestinationRule, list(subsets)))
			}
		}
	}
	return nil
}

// approvedGate is the gate an approve passes: the one waiting, which the
// request may name (a request naming another is refused, so an approval
// meant for one gate never passes the next). "" for other actions.
func approvedGate(mr *v1alpha1.ModelRollout, req Request) (string, error) {
	if req.Action != v1alpha1.IntentApprove {
		return "", nil
	}
	waiting := v1alpha1.PendingApproval(&mr.Status)
	if req.Gate != "" && req.Gate != waiting {
		return "", conflict("Another gate waits", fmt.Sprintf("%s/%s: gate %s is not waiting for approval; gate %s is: approve it by name, or leave gate out",
			mr.Namespace, mr.Name, req.Gate, waiting), v1alpha1.StateOf(mr).Phase)
	}
	return waiting, nil
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
