package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
)

// TokenReviewer creates TokenReviews; kubernetes.Interface's
// AuthenticationV1().TokenReviews() satisfies it.
type TokenReviewer interface {
	Create(ctx context.Context, tr *authnv1.TokenReview, opts metav1.CreateOptions) (*authnv1.TokenReview, error)
}

// TokenReviewConfig configures NewTokenReview.
type TokenReviewConfig struct {
	Reviewer TokenReviewer
	// Audiences the token must be valid for. Empty means the API server's
	// own, so that a token the caller uses against the API server works
	// here too, and one stolen here works there: set an audience of
	// Fulcrum's own (`kubectl create token NAME --audience fulcrum`).
	Audiences []string
	// SuccessTTL and FailureTTL bound how long answers are reused; 10s and
	// 2s when zero. A revoked token keeps working for at most SuccessTTL.
	SuccessTTL, FailureTTL time.Duration
	// CacheSize bounds the answers kept; 4096 when zero. When full, the
	// least recently used answer goes.
	CacheSize int
	Clock     clock.PassiveClock
}

// TokenReview authenticates bearer tokens with the API server's TokenReview.
// Answers are cached by a hash of the token, and concurrent requests with
// the same token share one review.
type TokenReview struct {
	cfg   TokenReviewConfig
	cache *reviewCache[tokenAnswer]
}

type tokenAnswer struct {
	user User
	ok   bool
}

// NewTokenReview returns a TokenReview authenticator.
func NewTokenReview(cfg TokenReviewConfig) *TokenReview {
	if cfg.SuccessTTL == 0 {
		cfg.SuccessTTL = 10 * time.Second
	}
	if cfg.FailureTTL == 0 {
		cfg.FailureTTL = 2 * time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 4096
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &TokenReview{cfg: cfg, cache: newReviewCache[tokenAnswer](cfg.Clock, cfg.CacheSize)}
}

// AuthenticateToken implements Authenticator.
func (t *TokenReview) AuthenticateToken(ctx context.Context, token string) (User, bool, error) {
	// Key by a hash so the cache never holds tokens.
	sum := sha256.Sum256([]byte(token))
	a, err := t.cache.get(ctx, string(sum[:]), func(ctx context.Context) (tokenAnswer, error) {
		return t.review(ctx, token)
	}, func(a tokenAnswer) time.Duration {
		if a.ok {
			return t.cfg.SuccessTTL
		}
		return t.cfg.FailureTTL
	})
	if err != nil {
		return User{}, false, err
	}
	return a.user, a.ok, nil
}

func (t *TokenReview) review(ctx context.Context, token string) (tokenAnswer, error) {
	res, err := t.cfg.Reviewer.Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: t.cfg.Audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return tokenAnswer{}, fmt.Errorf("token review: %w", err)
	}
	st := res.Status
	// A client that sets spec.audiences must check that the API server
	// answered for one of them (TokenReview's contract): an authenticator
	// that ignores audiences would otherwise vouch for any token.
	ok := st.Authenticated && st.Error == "" &&
		(len(t.cfg.Audiences) == 0 || slices.ContainsFunc(st.Audiences, func(a string) bool { return slices.Contains(t.cfg.Audiences, a) }))
	if !ok {
		return tokenAnswer{}, nil
	}
	u := User{Name: st.User.Username, UID: st.User.UID, Groups: st.User.Groups}
	if len(st.User.Extra) > 0 {
		u.Extra = map[string][]string{}
		for k, v := range st.User.Extra {
			u.Extra[k] = v
		}
	}
	return tokenAnswer{user: u, ok: true}, nil
}
