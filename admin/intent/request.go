// Package intent turns an admin API action request into an Intent on a
// ModelRollout. It is pure: decoding, validation, phase rules and idempotency
// are computed here from the request and the current object, and the caller
// does the I/O (reading the rollout and its DestinationRule, writing the
// result with optimistic concurrency).
package intent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Limits on request fields, matching the CRD's so that a request the API
// accepts is never refused by the API server afterwards.
const (
	MaxReasonLength = 1024
	MaxWeights      = 16
	MaxSubsetLength = 63
	MaxGateLength   = 40
)

var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Request is a decoded, validated action request.
type Request struct {
	Action    v1alpha1.IntentAction
	Candidate string
	Weights   []v1alpha1.SubsetWeight
	Reason    string
	// Gate is the approval gate an approve names; the one waiting when
	// empty.
	Gate string
}

// body is the wire shape of every action; which fields an action accepts is
// checked after decoding so the error can name the action.
type body struct {
	Candidate *string      `json:"candidate"`
	Weights   []wireWeight `json:"weights"`
	Reason    *string      `json:"reason"`
	Gate      *string      `json:"gate"`
}

type wireWeight struct {
	Subset string `json:"subset"`
	// Weight stays raw so that 70.5, -1 and "70" each get their own message
	// instead of Go's generic unmarshal error.
	Weight json.RawMessage `json:"weight"`
}

// ParseAction maps a URL verb (start, split, promote, rollback, pause,
// resume, approve) to its IntentAction.
func ParseAction(verb string) (v1alpha1.IntentAction, bool) {
	switch verb {
	case "start":
		return v1alpha1.IntentStart, true
	case "split":
		return v1alpha1.IntentSplit, true
	case "promote":
		return v1alpha1.IntentPromote, true
	case "rollback":
		return v1alpha1.IntentRollback, true
	case "pause":
		return v1alpha1.IntentPause, true
	case "resume":
		return v1alpha1.IntentResume, true
	case "approve":
		return v1alpha1.IntentApprove, true
	}
	return "", false
}

// Verb is the URL and RBAC spelling of an action. Resume is authorized with
// the pause verb, see RBACVerb.
func Verb(a v1alpha1.IntentAction) string { return strings.ToLower(string(a)) }

// RBACVerb is the custom verb a SubjectAccessReview checks for an action:
// resume uses "pause", since whoever may stop progression may restart it.
func RBACVerb(a v1alpha1.IntentAction) string {
	if a == v1alpha1.IntentResume {
		return "pause"
	}
	return Verb(a)
}

// Decode reads one JSON object for action from r and validates it on its own
// (no rollout needed). An empty body is an empty object. Errors are *Error
// with status 400 (malformed) or 422 (well-formed but invalid).
func Decode(action v1alpha1.IntentAction, r io.Reader) (Request, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return Request{}, err
	}
	return DecodeBytes(action, raw)
}

// DecodeBytes is Decode on a byte slice.
func DecodeBytes(action v1alpha1.IntentAction, raw []byte) (Request, error) {
	req := Request{Action: action}
	var b body
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			return req, decodeError(err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return req, badRequest("", "the body has trailing data after the JSON object: send exactly one object")
		}
	}
	if b.Reason != nil {
		req.Reason = *b.Reason
	}
	if len(req.Reason) > MaxReasonLength {
		return req, invalid("reason", fmt.Sprintf("reason is %d bytes long: keep it to at most %d", len(req.Reason), MaxReasonLength))
	}
	switch action {
	case v1alpha1.IntentStart:
		if b.Weights != nil {
			return req, invalid("weights", "start takes no weights: use split to pin weights, or give only candidate")
		}
		if b.Candidate == nil || *b.Candidate == "" {
			return req, invalid("candidate", `candidate is required: name the DestinationRule subset to roll out, e.g. {"candidate":"v2"}`)
		}
		req.Candidate = *b.Candidate
		if len(req.Candidate) > MaxSubsetLength || !dns1123Label.MatchString(req.Candidate) {
			return req, invalid("candidate", fmt.Sprintf("candidate %q is not a subset name: use lower-case letters, digits and '-' (at most %d characters)", req.Candidate, MaxSubsetLength))
		}
	case v1alpha1.IntentSplit:
		if b.Candidate != nil {
			return req, invalid("candidate", "split takes no candidate: give weights for every subset, e.g. v1=70 v2=30")
		}
		ws, err := decodeWeights(b.Weights)
		if err != nil {
			return req, err
		}
		req.Weights = ws
	case v1alpha1.IntentApprove:
		if b.Candidate != nil {
			return req, invalid("candidate", "approve takes no candidate: send reason, and gate to name the approval gate")
		}
		if b.Weights != nil {
			return req, invalid("weights", "approve takes no weights: send reason, and gate to name the approval gate")
		}
		if b.Gate != nil {
			req.Gate = *b.Gate
			if len(req.Gate) > MaxGateLength || !dns1123Label.MatchString(req.Gate) {
				return req, invalid("gate", fmt.Sprintf("gate %q is not a gate's name: use the name in spec.gates (lower-case letters, digits and '-', at most %d characters)", req.Gate, MaxGateLength))
			}
		}
		return req, nil
	case v1alpha1.IntentPromote, v1alpha1.IntentRollback, v1alpha1.IntentPause, v1alpha1.IntentResume:
		if b.Candidate != nil {
			return req, invalid("candidate", fmt.Sprintf("%s takes no candidate: send only reason", Verb(action)))
		}
		if b.Weights != nil {
			return req, invalid("weights", fmt.Sprintf("%s takes no weights: send only reason", Verb(action)))
		}
	default:
		return req, &Error{Status: 404, Title: "Unknown action", Detail: fmt.Sprintf("action %q does not exist: use start, split, promote, rollback, pause, resume or approve", action)}
	}
	if b.Gate != nil {
		return req, invalid("gate", fmt.Sprintf("%s takes no gate: only approve names one", Verb(action)))
	}
	return req, nil
}

var integerLiteral = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

func decodeWeights(in []wireWeight) ([]v1alpha1.SubsetWeight, error) {
	if len(in) < 2 {
		return nil, invalid("weights", `give at least two subset weights summing to 100, e.g. {"weights":[{"subset":"v1","weight":70},{"subset":"v2","weight":30}]}`)
	}
	if len(in) > MaxWeights {
		return nil, invalid("weights", fmt.Sprintf("%d weights given: at most %d subsets may share traffic", len(in), MaxWeights))
	}
	out := make([]v1alpha1.SubsetWeight, 0, len(in))
	seen := map[string]bool{}
	sum := 0
	for i, w := range in {
		field := fmt.Sprintf("weights[%d]", i)
		if w.Subset == "" {
			return nil, invalid(field+".subset", "subset is required: name a DestinationRule subset")
		}
		if len(w.Subset) > MaxSubsetLength || !dns1123Label.MatchString(w.Subset) {
			return nil, invalid(field+".subset", fmt.Sprintf("subset %q is not a subset name: use lower-case letters, digits and '-'", w.Subset))
		}
		if seen[w.Subset] {
			return nil, invalid(field+".subset", fmt.Sprintf("subset %q appears twice: give each subset once", w.Subset))
		}
		seen[w.Subset] = true
		n, err := parseWeight(field+".weight", w.Weight)
		if err != nil {
			return nil, err
		}
		sum += n
		out = append(out, v1alpha1.SubsetWeight{Subset: w.Subset, Weight: int32(n)})
	}
	if sum != 100 {
		return nil, invalid("weights", fmt.Sprintf("weights sum to %d: they must sum to 100, e.g. v1=70 v2=30", sum))
	}
	return out, nil
}

func parseWeight(field string, raw json.RawMessage) (int, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, invalid(field, "weight is required: an integer percent from 0 to 100")
	}
	if !integerLiteral.MatchString(s) {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			if f < 0 {
				return 0, invalid(field, fmt.Sprintf("weight %s is negative: use an integer percent from 0 to 100", s))
			}
			if f == float64(int64(f)) {
				return 0, invalid(field, fmt.Sprintf("weight %s must be written as a plain integer, e.g. 70", s))
			}
			return 0, invalid(field, fmt.Sprintf("weight %s is fractional: use an integer percent from 0 to 100", s))
		}
		return 0, invalid(field, fmt.Sprintf("weight %s is not a number: use an integer percent from 0 to 100", s))
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 100 {
		if strings.HasPrefix(s, "-") {
			return 0, invalid(field, fmt.Sprintf("weight %s is negative: use an integer percent from 0 to 100", s))
		}
		return 0, invalid(field, fmt.Sprintf("weight %s is over 100: use an integer percent from 0 to 100", s))
	}
	return n, nil
}

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest("", fmt.Sprintf("malformed JSON at byte %d: %v; send one JSON object", syn.Offset, syn))
	case errors.As(err, &typ):
		field := typ.Field
		return badRequest(field, fmt.Sprintf("field %q must be a %s, not a JSON %s", field, jsonKind(typ.Type.Kind().String()), typ.Value))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badRequest("", "the JSON body ends early: send one complete JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(name, fmt.Sprintf("unknown field %q: the accepted fields are candidate (start), weights (split), gate (approve) and reason", name))
	}
	return badRequest("", fmt.Sprintf("malformed JSON: %v; send one JSON object", err))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string", "ptr":
		return "string"
	case "slice":
		return "list"
	case "struct":
		return "object"
	}
	return goKind
}
