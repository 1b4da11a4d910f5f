package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Attributes are what a request asks to do, in RBAC terms on
// modelrollouts.fulcrum.dev.
type Attributes struct {
	// Verb: get, list, or a custom action verb (start, split, promote,
	// rollback, pause).
	Verb string
	// Namespace; empty for all namespaces.
	Namespace string
	// Name of one rollout, when the request is about one.
	Name string
}

// Decision is an authorization answer.
type Decision struct {
	Allowed bool
	// Reason from the authorizer (RBAC's names the binding that allowed).
	Reason string
}

// Authorizer decides whether a user may do something.
type Authorizer interface {
	Authorize(ctx context.Context, u User, a Attributes) (Decision, error)
}

// SubjectAccessReviewer creates SubjectAccessReviews; kubernetes.Interface's
// AuthorizationV1().SubjectAccessReviews() satisfies it.
type SubjectAccessReviewer interface {
	Create(ctx context.Context, sar *authzv1.SubjectAccessReview, opts metav1.CreateOptions) (*authzv1.SubjectAccessReview, error)
}

// SARConfig configures NewSubjectAccessReview.
type SARConfig struct {
	Reviewer SubjectAccessReviewer
	// AllowTTL and DenyTTL bound how long answers are reused; 10s and 5s when
	// zero. A removed binding keeps allowing for at most AllowTTL.
	AllowTTL, DenyTTL time.Duration
	// CacheSize bounds the answers kept; 8192 when zero. When full, the
	// least recently used answer goes.
	CacheSize int
	Clock     clock.PassiveClock
}

// SubjectAccessReview authorizes with the API server's RBAC. Answers are
// cached per user and question, and concurrent requests asking the same
// share one review.
type SubjectAccessReview struct {
	cfg   SARConfig
	cache *reviewCache[Decision]
}

// NewSubjectAccessReview returns a SubjectAccessReview authorizer.
func NewSubjectAccessReview(cfg SARConfig) *SubjectAccessReview {
	if cfg.AllowTTL == 0 {
		cfg.AllowTTL = 10 * time.Second
	}
	if cfg.DenyTTL == 0 {
		cfg.DenyTTL = 5 * time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 8192
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &SubjectAccessReview{cfg: cfg, cache: newReviewCache[Decision](cfg.Clock, cfg.CacheSize)}
}

// Authorize implements Authorizer.
func (s *SubjectAccessReview) Authorize(ctx context.Context, u User, a Attributes) (Decision, error) {
	return s.cache.get(ctx, cacheKey(u, a), func(ctx context.Context) (Decision, error) {
		return s.review(ctx, u, a)
	}, func(d Decision) time.Duration {
		if d.Allowed {
			return s.cfg.AllowTTL
		}
		return s.cfg.DenyTTL
	})
}

func (s *SubjectAccessReview) review(ctx context.Context, u User, a Attributes) (Decision, error) {
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User:   u.Name,
		UID:    u.UID,
		Groups: u.Groups,
		ResourceAttributes: &authzv1.ResourceAttributes{
			Group:     v1alpha1.GroupVersion.Group,
			Version:   v1alpha1.GroupVersion.Version,
			Resource:  v1alpha1.ResourceModelRollouts,
			Verb:      a.Verb,
			Namespace: a.Namespace,
			Name:      a.Name,
		},
	}}
	if len(u.Extra) > 0 {
		sar.Spec.Extra = map[string]authzv1.ExtraValue{}
		for k, v := range u.Extra {
			sar.Spec.Extra[k] = v
		}
	}
	res, err := s.cfg.Reviewer.Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return Decision{}, fmt.Errorf("subject access review: %w", err)
	}
	d := Decision{Allowed: res.Status.Allowed && !res.Status.Denied, Reason: res.Status.Reason}
	if res.Status.EvaluationError != "" && !d.Allowed {
		d.Reason = strings.TrimSpace(d.Reason + " " + res.Status.EvaluationError)
	}
	return d, nil
}

func cacheKey(u User, a Attributes) string {
	groups := slices.Clone(u.Groups)
	slices.Sort(groups)
	var b strings.Builder
	for _, p := range []string{u.Name, u.UID, strings.Join(groups, ","), a.Verb, a.Namespace, a.Name} {
		b.WriteString(p)
		b.WriteByte(0)
	}
	extraKeys := make([]string, 0, len(u.Extra))
	for k := range u.Extra {
		extraKeys = append(extraKeys, k)
	}
	slices.Sort(extraKeys)
	for _, k := range extraKeys {
		b.WriteString(k + "=" + strings.Join(u.Extra[k], ",") + "\x00")
	}
	return b.String()
}

// RoleHint names the role that grants a verb, for 403 messages.
func RoleHint(verb string) string {
	switch verb {
	case "get", "list", "watch":
		return "fulcrum-viewer"
	case "start", "split", "promote", "rollback", "pause", "approve":
		return "fulcrum-ml-engineer"
	}
	return "fulcrum-admin"
}
