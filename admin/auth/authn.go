// Package auth authenticates bearer tokens and authorizes admin API requests
// against Kubernetes RBAC. Authentication uses TokenReview (so service
// account and OIDC tokens the API server accepts work here too) or, for local
// use, a static token file in kube-apiserver's CSV format. Authorization uses
// SubjectAccessReview on modelrollouts.fulcrum.dev, so roles are ordinary
// Kubernetes RBAC. Both answers are cached briefly: a dashboard polls and
// streams, and every request must not cost two API server round trips.
package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// User is an authenticated caller.
type User struct {
	Name   string
	UID    string
	Groups []string
	// Extra carries TokenReview's extra fields; SubjectAccessReview needs
	// them back to judge the same identity.
	Extra map[string][]string
}

// Authenticator resolves a bearer token to a user. ok is false for a token
// that is not valid; err is for failures to decide (API server down).
type Authenticator interface {
	AuthenticateToken(ctx context.Context, token string) (user User, ok bool, err error)
}

// Union tries each authenticator in turn; the first that accepts wins. A
// failure to decide is returned only when none accepted.
type Union []Authenticator

// AuthenticateToken implements Authenticator.
func (u Union) AuthenticateToken(ctx context.Context, token string) (User, bool, error) {
	var errs []error
	for _, a := range u {
		user, ok, err := a.AuthenticateToken(ctx, token)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			return user, true, nil
		}
	}
	return User{}, false, errors.Join(errs...)
}

// BearerToken returns the token of an "Authorization: Bearer T" header or,
// when allowQuery is set (event streams: browsers' EventSource cannot set
// headers), of the access_token query parameter. ok is false when there is
// none.
func BearerToken(r *http.Request, allowQuery bool) (token string, ok bool) {
	h := r.Header.Get("Authorization")
	if h == "" && allowQuery {
		tok := r.URL.Query().Get("access_token")
		return tok, tok != ""
	}
	if h != "" {
		scheme, tok, found := strings.Cut(h, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") {
			return "", false
		}
		tok = strings.TrimSpace(tok)
		return tok, tok != ""
	}
	return "", false
}
