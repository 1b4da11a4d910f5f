package analysis

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
)

// DefaultBatchQuantum is EngineConfig.BatchQuantum when zero.
const DefaultBatchQuantum = 5 * time.Second

// sharedCache holds the results of batched (cross-rollout) queries so that
// every rollout analysed in the same quantum with a window in the same
// bucket reads one query's answer. Concurrent callers of the same key wait
// for the one query in flight (singleflight); entries older than two
// quanta are dropped as newer ones arrive.
type sharedCache struct {
	quantum time.Duration

	mu      sync.Mutex
	entries map[sharedKey]*sharedEntry
}

type sharedKey struct {
	p     provider.Provider
	query string // the rendered batched query; the window is part of it
	at    int64  // evaluation time, quantized, in Unix nanoseconds
}

type sharedEntry struct {
	done    chan struct{}
	samples []provider.Sample // read-only once done is closed
	err     error
}

func newSharedCache(quantum time.Duration) *sharedCache {
	return &sharedCache{quantum: quantum, entries: map[sharedKey]*sharedEntry{}}
}

// startSlack is how far past a quantum boundary a step may start and still
// have its evidence begin at that boundary.
const startSlack = time.Second

// EvidenceStart is where the evidence window of a step that started at
// start begins, for a quantum q: the quantum boundary just before the start
// when the start is at most a second past it, else the next boundary. Every
// look of the step, batched or not, reads from there, so consecutive looks
// see nested windows (one growing set of requests, which the sequential
// tests need) and a batched window is a whole number of quanta. Looks of an
// evidence-driven rollout run just after boundaries (LookPeriod), so a step
// they advance starts within a second of one and loses nothing; the second
// it may reach back is the mesh converging to the new weights, whose
// requests the tests judge by their observed split. Another start loses
// less than a quantum.
func EvidenceStart(start time.Time, q time.Duration) time.Time {
	if q <= 0 {
		return start
	}
	b := start.Truncate(q)
	if start.Sub(b) <= startSlack {
		return b
	}
	return b.Add(q)
}

// batchWindow quantizes a round for the shared cache: the evaluation time
// rounds down to the quantum and the window, measured from the step's
// evidence start (EvidenceStart, a quantum boundary) to that time, is a
// whole number of quanta. ok is false while the window is shorter than one
// quantum; the round then runs per rollout.
func batchWindow(start, now time.Time, quantum time.Duration) (at time.Time, window time.Duration, ok bool) {
	at = now.Truncate(quantum)
	if start.IsZero() {
		return at, 0, false
	}
	window = at.Sub(start).Truncate(quantum)
	return at, window, window >= quantum
}

// query returns the shared answer of (p, q, at), running the query if no
// caller has. The query runs detached from the caller's cancellation
// (bounded by the provider's own timeout) because other rollouts may be
// waiting on it; each waiter still honours its own ctx. Failures other
// than no-data are not kept, so the next round retries.
func (c *sharedCache) query(ctx context.Context, p provider.Provider, q string, at time.Time) ([]provider.Sample, error) {
	k := sharedKey{p: p, query: q, at: at.UnixNano()}
	c.mu.Lock()
	horizon := at.Add(-2 * c.quantum).UnixNano()
	for old := range c.entries {
		if old.at < horizon {
			delete(c.entries, old)
		}
	}
	e, ok := c.entries[k]
	if !ok {
		e = &sharedEntry{done: make(chan struct{})}
		c.entries[k] = e
		c.mu.Unlock()
		e.samples, e.err = p.Query(context.WithoutCancel(ctx), q, at)
		if e.err != nil && !errors.Is(e.err, provider.ErrNoData) {
			c.mu.Lock()
			if c.entries[k] == e {
				delete(c.entries, k)
			}
			c.mu.Unlock()
		}
		close(e.done)
		return e.samples, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.samples, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// rows picks one rollout's rows from a batched answer: its namespace and
// service by the template's identity labels, and its subsets by the
// version label. No rows is ErrNoData, as the per-rollout query would say.
type rows struct {
	at                 time.Time
	nsLabel, svcLabel  string
	namespace, service string
	versionLabel       string
	subsets            []string
}

func (r *rows) pick(q string, all []provider.Sample) ([]provider.Sample, error) {
	var out []provider.Sample
	for _, s := range all {
		if s.Labels[r.nsLabel] != r.namespace || s.Labels[r.svcLabel] != r.service {
			continue
		}
		v, ok := s.Labels[r.versionLabel]
		if !ok {
			continue
		}
		for _, sub := range r.subsets {
			if v == sub {
				out = append(out, s)
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, &provider.QueryError{Kind: provider.ErrNoData, Provider: "shared", Query: q}
	}
	return out, nil
}
