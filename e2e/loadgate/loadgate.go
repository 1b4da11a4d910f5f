// Package loadgate is a load-test hook for HTTP gates (spec.gates[].http):
// called with a gate's payload, it drives the candidate named in it with
// the e2e load generator for a while and answers a JSON verdict, which the
// gate reads with expect.verdict {field: verdict}. It is the example of a
// load-test gate: before each step's weight (at: EachStep), the candidate
// takes more load than the step will bring it, and a candidate that fails
// under it never gets the step's users.
//
// The load goes to the version directly (its model server's address), not
// through the mesh: at EachStep the candidate's weight has not risen yet.
// Like the generator, it targets loopback addresses only: it is a test
// fixture and the example of docs/hooks.md, not a load tester for a
// cluster.
package loadgate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/fulcrum-ml/fulcrum/controller/gates"
	"github.com/fulcrum-ml/fulcrum/e2e/loadgen"
)

// Config is one load test.
type Config struct {
	// Target is the URL that reaches version of the payload's model
	// directly, e.g. a model server's /v2/models/fraud/infer.
	Target func(p gates.Payload) (url string, err error)
	// Rate (requests per second) and Duration of the load.
	Rate     float64
	Duration time.Duration
	// MaxErrorRate is the share of 5xx answers and failed requests that
	// passes; MaxP99 the p99 latency that passes (0: not judged).
	MaxErrorRate float64
	MaxP99       time.Duration
}

// Answer is the hook's JSON answer.
type Answer struct {
	// Verdict is "pass" or "fail".
	Verdict string `json:"verdict"`
	// Reason says why, with the numbers.
	Reason    string  `json:"reason"`
	Version   string  `json:"version"`
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	ErrorRate float64 `json:"errorRate"`
	P99Ms     float64 `json:"p99Ms"`
}

// Hook serves the load test; Calls are the payloads it was called with.
type Hook struct {
	cfg   Config
	mu    sync.Mutex
	calls []Call
}

// Call is one load test the hook ran.
type Call struct {
	Payload gates.Payload
	Answer  Answer
}

// New returns a hook for cfg.
func New(cfg Config) *Hook { return &Hook{cfg: cfg} }

// Calls returns the load tests run so far.
func (h *Hook) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// ServeHTTP runs one load test per request. The answer comes when the load
// has run: the gate's attemptTimeout must exceed Duration.
func (h *Hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p gates.Payload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.Candidate == "" {
		http.Error(w, "want a gate payload (docs/hooks.md) naming the candidate", http.StatusBadRequest)
		return
	}
	a, err := h.run(r.Context(), p)
	if err != nil {
		// Not a verdict: the gate retries.
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	h.mu.Lock()
	h.calls = append(h.calls, Call{Payload: p, Answer: a})
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a)
}

func (h *Hook) run(ctx context.Context, p gates.Payload) (Answer, error) {
	url, err := h.cfg.Target(p)
	if err != nil {
		return Answer{}, err
	}
	g, err := loadgen.Start(ctx, loadgen.Config{URL: url, Rate: h.cfg.Rate, Duration: h.cfg.Duration,
		MaxRequests: int(h.cfg.Rate*h.cfg.Duration.Seconds()) + 1, Timeout: 5 * time.Second})
	if err != nil {
		return Answer{}, fmt.Errorf("start the load: %w", err)
	}
	var mu sync.Mutex
	var took []time.Duration
	stop := g.Watch(func(_ string, _ int, d time.Duration) {
		mu.Lock()
		took = append(took, d)
		mu.Unlock()
	})
	rep := g.Wait()
	stop()
	if ctx.Err() != nil {
		return Answer{}, ctx.Err()
	}
	a := Answer{Version: p.Candidate, Requests: rep.Completed, Errors: rep.Errors("")}
	if a.Requests == 0 {
		return Answer{}, fmt.Errorf("no request to %s completed", p.Candidate)
	}
	a.ErrorRate = float64(a.Errors) / float64(a.Requests)
	mu.Lock()
	slices.Sort(took)
	p99 := took[min(len(took)-1, len(took)*99/100)]
	mu.Unlock()
	a.P99Ms = float64(p99.Microseconds()) / 1000
	a.Verdict = "pass"
	a.Reason = fmt.Sprintf("%s answered %d requests at %.0f/s for %s: %.1f%% errors, p99 %.0f ms", p.Candidate, a.Requests, h.cfg.Rate, h.cfg.Duration, 100*a.ErrorRate, a.P99Ms)
	switch {
	case a.ErrorRate > h.cfg.MaxErrorRate:
		a.Verdict = "fail"
		a.Reason += fmt.Sprintf(", above %.1f%% errors", 100*h.cfg.MaxErrorRate)
	case h.cfg.MaxP99 > 0 && p99 > h.cfg.MaxP99:
		a.Verdict = "fail"
		a.Reason += fmt.Sprintf(", above a p99 of %s", h.cfg.MaxP99)
	}
	return a, nil
}
