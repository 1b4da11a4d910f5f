package admin

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/fulcrum-ml/fulcrum/admin/intent"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// ProblemContentType is RFC 9457's media type for error bodies.
const ProblemContentType = "application/problem+json"

// problem is an RFC 9457 problem detail with Fulcrum's extension members.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
	// RequestID matches the X-Request-Id header and the server's log.
	RequestID string `json:"requestId,omitempty"`
	// Field is the request field at fault.
	Field string `json:"field,omitempty"`
	// Phase is the rollout's phase when it refused the action.
	Phase v1alpha1.Phase `json:"phase,omitempty"`
	// Current is the rollout as it is now, on 409.
	Current *rolloutView `json:"current,omitempty"`

	retryAfter int
}

// problemTypes give each kind of problem a stable identifier clients can
// switch on; the title says the same for people.
var problemTypes = map[int]string{
	400: "urn:fulcrum:problem:malformed-request",
	401: "urn:fulcrum:problem:unauthenticated",
	403: "urn:fulcrum:problem:forbidden",
	404: "urn:fulcrum:problem:not-found",
	405: "urn:fulcrum:problem:method-not-allowed",
	409: "urn:fulcrum:problem:conflict",
	413: "urn:fulcrum:problem:body-too-large",
	415: "urn:fulcrum:problem:unsupported-media-type",
	422: "urn:fulcrum:problem:invalid-request",
	429: "urn:fulcrum:problem:rate-limited",
	500: "urn:fulcrum:problem:internal",
	503: "urn:fulcrum:problem:unavailable",
}

func (s *Server) problem(w http.ResponseWriter, r *http.Request, p problem) {
	if p.Type == "" {
		p.Type = problemTypes[p.Status]
		if p.Type == "" {
			p.Type = "about:blank"
		}
	}
	p.Instance = r.URL.Path
	p.RequestID = info(r.Context()).id
	h := w.Header()
	h.Set("Content-Type", ProblemContentType)
	h.Set("Cache-Control", "no-store")
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="fulcrum"`)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// rolloutView is a rollout as the API shows it: the object with kind and
// apiVersion set (the typed cache drops them) and managedFields left out as
// noise, plus the actions the phase/action table allows on it now, so that
// clients offer only what would be accepted without rules of their own.
type rolloutView struct {
	*v1alpha1.ModelRollout
	// Actions maps each action's verb to whether it may be asked for now
	// and, when not, the reason a request would get in its 409.
	Actions map[string]intent.ActionStatus `json:"actions"`
}

func present(mr *v1alpha1.ModelRollout) *rolloutView {
	out := mr.DeepCopy()
	out.APIVersion = v1alpha1.GroupVersion.String()
	out.Kind = "ModelRollout"
	out.ManagedFields = nil
	return &rolloutView{ModelRollout: out, Actions: intent.ActionsFor(out)}
}
