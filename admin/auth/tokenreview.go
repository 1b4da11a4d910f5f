package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
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
	// Audiences the token must be valid for; the API server's when empty.
	Audiences []string
	// SuccessTTL and FailureTTL bound how long answers are reused; 10s and
	// 2s when zero. A revoked token keeps working for at most SuccessTTL.
	SuccessTTL, FailureTTL time.Duration
	Clock                  clock.PassiveClock
}

// TokenReview authenticates bearer tokens with the API server's TokenReview.
type TokenReview struct {
	cfg   TokenReviewConfig
	cache *ttlCache[tokenAnswer]
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
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &TokenReview{cfg: cfg, cache: newTTLCache[tokenAnswer](cfg.Clock, 4096)}
}

// AuthenticateToken implements Authenticator.
func (t *TokenReview) AuthenticateToken(ctx context.Context, token string) (User, bool, error) {
	// Key by a hash so the cache never holds tokens.
	sum := sha256.Sum256([]byte(token))
	key := string(sum[:])
	if a, ok := t.cache.get(key); ok {
		return a.user, a.ok, nil
	}
	res, err := t.cfg.Reviewer.Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: t.cfg.Audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return User{}, false, fmt.Errorf("token review: %w", err)
	}
	st := res.Status
	a := tokenAnswer{ok: st.Authenticated && st.Error == ""}
	if a.ok {
		a.user = User{Name: st.User.Username, UID: st.User.UID, Groups: st.User.Groups}
		if len(st.User.Extra) > 0 {
			a.user.Extra = map[string][]string{}
			for k, v := range st.User.Extra {
				a.user.Extra[k] = v
			}
		}
		t.cache.put(key, a, t.cfg.SuccessTTL)
	} else {
		t.cache.put(key, a, t.cfg.FailureTTL)
	}
	return a.user, a.ok, nil
}
