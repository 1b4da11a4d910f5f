package intent

import (
	"fmt"
	"net/http"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Error is a refused request. The admin API renders it as an RFC 9457
// problem: Title and Status as they are, Detail naming the field and the fix.
type Error struct {
	Status int
	Title  string
	// Field is the request field at fault (JSON path), when one is.
	Field  string
	Detail string
	// Phase is the rollout's phase when the phase refused the action.
	Phase v1alpha1.Phase
	// RetryAfter is set when the same request may succeed later (a pending
	// intent).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Detail)
	}
	return e.Detail
}

func badRequest(field, detail string) *Error {
	return &Error{Status: http.StatusBadRequest, Title: "Malformed request", Field: field, Detail: detail}
}

func invalid(field, detail string) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Title: "Invalid request", Field: field, Detail: detail}
}

func conflict(title, detail string, phase v1alpha1.Phase) *Error {
	return &Error{Status: http.StatusConflict, Title: title, Detail: detail, Phase: phase}
}
