package auth

import (
	"context"
	"time"

	"golang.org/x/sync/singleflight"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/utils/clock"
)

// reviewCache remembers review answers for a while and merges concurrent
// reviews of the same question into one call. Its entries expire after
// their TTL, and when it is full the least recently used entry goes, one at
// a time: a burst of new tokens or namespaces costs extra reviews for the
// answers it pushes out, never a cache emptied at once.
type reviewCache[V any] struct {
	lru      *utilcache.LRUExpireCache
	inflight singleflight.Group
}

func newReviewCache[V any](c clock.PassiveClock, size int) *reviewCache[V] {
	return &reviewCache[V]{lru: utilcache.NewLRUExpireCacheWithClock(size, c)}
}

// get returns the cached answer for key, or runs review once for all the
// callers asking at the same time and caches what it returns for ttl(v).
// A failed review is not cached. The review runs on a context that is not
// cancelled with the first caller's request, so that one caller going away
// does not fail the others.
func (c *reviewCache[V]) get(ctx context.Context, key string, review func(context.Context) (V, error), ttl func(V) time.Duration) (V, error) {
	if v, ok := c.lru.Get(key); ok {
		return v.(V), nil
	}
	ch := c.inflight.DoChan(key, func() (any, error) {
		if v, ok := c.lru.Get(key); ok {
			return v, nil
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reviewTimeout)
		defer cancel()
		v, err := review(rctx)
		if err != nil {
			return v, err
		}
		if d := ttl(v); d > 0 {
			c.lru.Add(key, v, d)
		}
		return v, nil
	})
	select {
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			var zero V
			return zero, r.Err
		}
		return r.Val.(V), nil
	}
}

// reviewTimeout bounds one TokenReview or SubjectAccessReview.
const reviewTimeout = 10 * time.Second
