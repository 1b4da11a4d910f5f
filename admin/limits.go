package admin

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"
)

// maxLimitedKeys bounds the token buckets kept per kind of key (client
// addresses, users). When full, the least recently seen key's bucket goes:
// that client starts again with a full bucket, and memory stays bounded
// whatever a flood of addresses does.
const maxLimitedKeys = 10000

// rateLimit bounds requests per client address, before authentication,
// with a token bucket each. The address is the peer's, or, when the peer is
// a trusted proxy, the one the proxy reports (clientIP).
func (s *Server) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.clients.allow(s.clientIP(r)) {
			w.Header().Set("Retry-After", "1")
			s.problem(w, r, problem{Status: http.StatusTooManyRequests, Title: "Too many requests",
				Detail: fmt.Sprintf("this client address sent more than %g requests per second: slow down and retry after a second, or use the event stream instead of polling", float64(s.cfg.ClientRateLimit))})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitUser bounds an authenticated user's requests, wherever they come
// from: behind an ingress every user has the proxy's address, so the
// address alone would make one noisy user everyone's problem. It answers
// 429 itself when it returns false.
func (s *Server) limitUser(w http.ResponseWriter, r *http.Request, user string) bool {
	if s.users.allow(user) {
		return true
	}
	w.Header().Set("Retry-After", "1")
	s.problem(w, r, problem{Status: http.StatusTooManyRequests, Title: "Too many requests",
		Detail: fmt.Sprintf("user %s sent more than %g requests per second: slow down and retry after a second, or use the event stream instead of polling", user, float64(s.cfg.RateLimit))})
	return false
}

// clientIP is the address a request comes from. The peer's address, unless
// the peer is in Config.TrustedProxies: then the right-most address of
// X-Forwarded-For that is not itself a trusted proxy (the left part of the
// header is whatever the client sent), or X-Real-IP. A header from a peer
// that is not trusted is ignored, so no client can pick its own bucket.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(peer) {
		return host
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			// A hop that is no address: trust stops here.
			return peer.Unmap().String()
		}
		if !s.trusted(a) {
			return a.Unmap().String()
		}
	}
	if a, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); err == nil && len(hops) == 0 {
		return a.Unmap().String()
	}
	return peer.Unmap().String()
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// keyLimiter keeps a token bucket per key in a bounded LRU.
type keyLimiter struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	clock clock.PassiveClock
	keys  *lru.Cache
}

func newKeyLimiter(l rate.Limit, burst int, c clock.PassiveClock) *keyLimiter {
	return &keyLimiter{limit: l, burst: burst, clock: c, keys: lru.New(maxLimitedKeys)}
}

func (k *keyLimiter) allow(key string) bool {
	if k.limit == rate.Inf {
		return true
	}
	k.mu.Lock()
	v, ok := k.keys.Get(key)
	if !ok {
		v = rate.NewLimiter(k.limit, k.burst)
		k.keys.Add(key, v)
	}
	k.mu.Unlock()
	return v.(*rate.Limiter).AllowN(k.clock.Now(), 1)
}

// streamSlots counts each user's open event streams.
type streamSlots struct {
	mu   sync.Mutex
	max  int
	open map[string]int
}

func newStreamSlots(max int) *streamSlots {
	return &streamSlots{max: max, open: map[string]int{}}
}

// acquire takes a slot for user, or reports false when all are taken.
// The map holds only users with a stream open.
func (s *streamSlots) acquire(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[user] >= s.max {
		return false
	}
	s.open[user]++
	return true
}

func (s *streamSlots) release(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[user] <= 1 {
		delete(s.open, user)
		return
	}
	s.open[user]--
}
