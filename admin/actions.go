package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"

	"github.com/go-chi/chi/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/fulcrum-ml/fulcrum/admin/auth"
	"github.com/fulcrum-ml/fulcrum/admin/intent"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// IdempotencyKeyHeader makes a repeated action request a no-op: the key
// becomes the intent id (hashed with the rollout and the user).
const IdempotencyKeyHeader = "Idempotency-Key"

// conflictAttempts bounds read-plan-write rounds when another writer
// changed the rollout in between; each round re-reads and re-checks
// everything, so retrying is safe.
const conflictAttempts = 5

func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	key := pathKey(r)
	action, ok := intent.ParseAction(chi.URLParam(r, "action"))
	if !ok {
		s.problem(w, r, problem{Status: 404, Title: "Unknown action", Detail: "use start, split, promote, rollback, pause, resume or approve"})
		return
	}
	verb := intent.RBACVerb(action)
	user, ok := s.authorize(w, r, auth.Attributes{Verb: verb, Namespace: key.Namespace, Name: key.Name}, false)
	if !ok {
		return
	}
	if !requireJSON(r) {
		s.problem(w, r, problem{Status: http.StatusUnsupportedMediaType, Title: "Unsupported media type",
			Detail: fmt.Sprintf("Content-Type %q is not JSON: send application/json", r.Header.Get("Content-Type"))})
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.problem(w, r, problem{Status: http.StatusRequestEntityTooLarge, Title: "Request body too large",
				Detail: fmt.Sprintf("the body is over the limit of %d bytes: send only the fields the action takes", tooBig.Limit)})
			return
		}
		s.problem(w, r, problem{Status: 400, Title: "Malformed request", Detail: "the body could not be read: " + err.Error()})
		return
	}
	req, err := intent.DecodeBytes(action, body)
	if err != nil {
		s.refuse(w, r, action, err, nil)
		return
	}
	now := s.cfg.Clock.Now()
	id := intent.NewID(action, now)
	idemKey := r.Header.Get(IdempotencyKeyHeader)
	if idemKey != "" {
		if len(idemKey) > 255 || strings.ContainsFunc(idemKey, func(c rune) bool { return c > unicode.MaxASCII || !unicode.IsPrint(c) }) {
			s.problem(w, r, problem{Status: 400, Title: "Malformed request", Field: IdempotencyKeyHeader,
				Detail: "Idempotency-Key must be printable ASCII of at most 255 characters, e.g. a UUID or a CI job id"})
			return
		}
		id = intent.KeyedID(key.Namespace, key.Name, user.Name, idemKey)
	}

	var subsets []string
	subsetsRead := false
	for attempt := 1; ; attempt++ {
		var mr v1alpha1.ModelRollout
		if err := s.cfg.APIReader.Get(r.Context(), key, &mr); err != nil {
			s.kubeError(w, r, err, "read rollout "+key.String())
			return
		}
		if !subsetsRead && (action == v1alpha1.IntentStart || action == v1alpha1.IntentSplit) {
			subsets, err = s.cfg.Versions.Versions(r.Context(), &mr)
			if err != nil {
				if apierrors.IsNotFound(err) && mr.Spec.VirtualService != nil {
					s.problem(w, r, problem{Status: 409, Title: "DestinationRule missing", Phase: v1alpha1.StateOf(&mr).Phase, Current: present(&mr),
						Detail: fmt.Sprintf("DestinationRule %s/%s named by spec.destinationRule does not exist: create it with a subset per model version", key.Namespace, mr.Spec.DestinationRule)})
					return
				}
				s.kubeError(w, r, err, "read the versions of "+key.String())
				return
			}
			subsetsRead = true
		}
		meshOff := action == v1alpha1.IntentRollback && intent.Refusal(&mr, action) != "" && offStable(r.Context(), s.cfg.Routers, &mr)
		res, err := intent.Plan(&mr, req, intent.Inputs{OffStable: meshOff, Subsets: subsets, Actor: user.Name, ID: id, Key: idemKey, Now: now})
		if err != nil {
			s.refuse(w, r, action, err, &mr)
			return
		}
		if res.NoOp {
			s.metrics.actions.WithLabelValues(intent.Verb(action), "replayed").Inc()
			s.cfg.Logger.Info("action already requested; not repeating it", "rollout", key.String(), "action", action,
				"actor", user.Name, "intent", res.IntentID, "requestID", info(r.Context()).id)
			w.Header().Set("Idempotent-Replayed", "true")
			writeJSON(w, http.StatusAccepted, present(&mr))
			return
		}
		err = s.cfg.Client.Update(r.Context(), res.Updated)
		if apierrors.IsConflict(err) && attempt < conflictAttempts {
			continue
		}
		if apierrors.IsConflict(err) {
			s.problem(w, r, problem{Status: 409, Title: "Rollout keeps changing", Phase: v1alpha1.StateOf(&mr).Phase, Current: present(&mr),
				Detail: fmt.Sprintf("%s/%s changed %d times while this %s was being recorded: retry", key.Namespace, key.Name, attempt, intent.Verb(action))})
			return
		}
		if apierrors.IsInvalid(err) {
			// The CRD's CEL rules refused what intent.Plan let through; say
			// what the API server said.
			s.problem(w, r, problem{Status: 422, Title: "Invalid request", Detail: fmt.Sprintf("the Kubernetes API refused the change: %v", err)})
			return
		}
		if err != nil {
			s.kubeError(w, r, err, "record the intent on "+key.String())
			return
		}
		s.audit(r, user, res.Updated)
		s.metrics.actions.WithLabelValues(intent.Verb(action), "accepted").Inc()
		w.Header().Set("Location", fmt.Sprintf("%s/namespaces/%s/rollouts/%s", APIPrefix, key.Namespace, key.Name))
		writeJSON(w, http.StatusAccepted, present(res.Updated))
		return
	}
}

// refuse answers an *intent.Error (or anything else as 500).
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, action v1alpha1.IntentAction, err error, current *v1alpha1.ModelRollout) {
	s.metrics.actions.WithLabelValues(intent.Verb(action), "refused").Inc()
	var e *intent.Error
	if !errors.As(err, &e) {
		s.cfg.Logger.Error(err, "planning an action failed", "requestID", info(r.Context()).id)
		s.problem(w, r, problem{Status: 500, Title: "Internal error", Detail: err.Error()})
		return
	}
	p := problem{Status: e.Status, Title: e.Title, Detail: e.Detail, Field: e.Field, Phase: e.Phase, retryAfter: int(e.RetryAfter.Seconds())}
	if e.Status == http.StatusConflict && current != nil {
		p.Current = present(current)
	}
	s.problem(w, r, p)
}

// audit records an accepted action in the log and as an Event on the
// rollout; the intent itself carries actor and reason into the history.
func (s *Server) audit(r *http.Request, user auth.User, mr *v1alpha1.ModelRollout) {
	in := mr.Spec.Intent
	s.cfg.Logger.Info("action requested", "rollout", mr.Namespace+"/"+mr.Name, "action", in.Action,
		"actor", user.Name, "groups", user.Groups, "reason", in.Reason, "intent", in.ID,
		"candidate", mr.Spec.Candidate, "weights", in.Weights, "supersedes", in.Supersedes, "requestID", info(r.Context()).id)
	if s.cfg.Recorder == nil {
		return
	}
	note := fmt.Sprintf("%s requested %s (intent %s)", user.Name, strings.ToLower(string(in.Action)), in.ID)
	if in.Action == v1alpha1.IntentStart {
		note += " of candidate " + mr.Spec.Candidate
	}
	if in.Gate != "" {
		note += " of gate " + in.Gate
	}
	if len(in.Weights) > 0 {
		parts := make([]string, len(in.Weights))
		for i, w := range in.Weights {
			parts[i] = fmt.Sprintf("%s=%d", w.Subset, w.Weight)
		}
		note += " with weights " + strings.Join(parts, " ")
	}
	if old := in.Supersedes; old != nil {
		note += fmt.Sprintf(", superseding the pending %s by %s (intent %s)", strings.ToLower(string(old.Action)), old.Actor, old.ID)
	}
	if in.Reason != "" {
		note += ": " + in.Reason
	}
	// The note is a format string; keep user text out of the verbs.
	s.cfg.Recorder.Eventf(mr, nil, corev1.EventTypeNormal, EventReasonActionRequested, string(in.Action), "%s", truncateNote(note))
}

// truncateNote keeps an Event's note under the API server's 1 KiB limit.
func truncateNote(s string) string { return v1alpha1.CutText(s, 1000) }
