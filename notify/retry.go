package notify

import (
	"math/rand/v2"
	"time"
)

// RetryPolicy bounds the attempts to deliver one event to one sink.
type RetryPolicy struct {
	// Attempts in all, the first included; default 5.
	Attempts int
	// InitialBackoff is the wait before the first retry, doubled for each
	// later one up to MaxBackoff, with jitter; defaults 1s and 30s.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// Timeout bounds each request; default 10s.
	Timeout time.Duration
	// MaxRetryAfter is the longest Retry-After (429, 503) waited for;
	// a sink that asks for longer fails now. Default 2m.
	MaxRetryAfter time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 5
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = time.Second
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 30 * time.Second
	}
	p.MaxBackoff = max(p.MaxBackoff, p.InitialBackoff)
	if p.Timeout <= 0 {
		p.Timeout = 10 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 2 * time.Minute
	}
	return p
}

// backoff is the wait before retry n (1 for the first): exponential with
// "equal jitter" (half fixed, half random, so that sinks recovering from
// an outage are not hit by every worker at once), and at least the
// Retry-After the sink asked for.
func (p RetryPolicy) backoff(n int, retryAfter time.Duration, rnd func(int64) int64) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	half := d / 2
	wait := half + time.Duration(rnd(int64(half)+1))
	return max(wait, retryAfter)
}

// jitter is the random source of backoff.
func jitter(n int64) int64 { return rand.Int64N(n) }
