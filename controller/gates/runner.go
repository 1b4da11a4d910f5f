package gates

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
)

// Defaults of an HTTP gate and of the Runner.
const (
	DefaultRetries        = 2
	DefaultRetryBackoff   = time.Second
	DefaultAttemptTimeout = 10 * time.Second
	DefaultMethod         = http.MethodPost
	// maxBackoff caps the doubled wait between retries.
	maxBackoff = time.Minute
	// DefaultMaxInFlight bounds the HTTP calls open at once, over every
	// rollout: a slow hook must not pile up connections.
	DefaultMaxInFlight = 16
)

// Call is one HTTP gate run to carry out.
type Call struct {
	// Key is the run's id (status.gates' GateRun.ID).
	Key string
	// Rollout whose gate this is.
	Rollout types.NamespacedName
	// Spec of the gate's HTTP call; Headers are resolved (Secrets read).
	Spec    v1alpha1.HTTPGate
	Headers http.Header
	// Payload is sent (or rendered by Spec.Body) with its Attempt set.
	Payload Payload
	// Deadline after which no attempt starts (the gate's timeout; the
	// state machine times the run out then).
	Deadline time.Time
}

// Config configures a Runner.
type Config struct {
	// HTTP makes the calls; nil: a client with no proxy that follows no
	// redirect (a redirect could leave the allowed hosts).
	HTTP *http.Client
	// MaxInFlight bounds the requests open at once; DefaultMaxInFlight
	// when 0.
	MaxInFlight int
	// Hosts says which URLs a gate may call (--gate-allowed-hosts).
	Hosts Hosts
}

// Runner makes the HTTP calls of gates in the background, one goroutine
// per run, and keeps each run's latest result until the reconciler forgets
// it. It runs with the manager on the leader (the only replica whose
// decisions count). Results are in memory: a controller that restarts
// calls a running gate again (the payload's id is unchanged), so a hook
// must take a repeated call.
type Runner struct {
	cfg   Config
	slots chan struct{}

	mu   sync.Mutex
	base context.Context
	runs map[string]*run
}

type run struct {
	rollout types.NamespacedName
	cancel  context.CancelFunc
	res     rollout.GateObservation
	// forgotten is when the reconciler forgot the run; it is kept a while
	// so that a reconcile that read an older copy of the rollout (the
	// cache lags the status just written) does not call it again.
	forgotten time.Time
}

// forgetAfter is how long a forgotten run is kept.
const forgetAfter = 2 * time.Minute

// NewRunner returns a Runner; it calls nothing until Start.
func NewRunner(cfg Config) *Runner {
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{
			Transport:     &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	return &Runner{cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight), runs: map[string]*run{}}
}

// Hosts are the hosts gates may call.
func (r *Runner) Hosts() Hosts { return r.cfg.Hosts }

// Start runs until ctx ends, then stops every call.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	r.base = ctx
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.base = nil
	for k, x := range r.runs {
		x.cancel()
		delete(r.runs, k)
	}
	return nil
}

// Ensure starts c unless a run with its key runs or has its final
// result; it replaces a note that was not final. The call itself happens
// in the background.
func (r *Runner) Ensure(c Call) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if x, ok := r.runs[c.Key]; ok && (x.cancel != nil || x.res.Done || !x.forgotten.IsZero()) {
		return nil
	}
	if r.base == nil || r.base.Err() != nil {
		return errors.New("the gate runner is not running (the controller is starting or stopping)")
	}
	ctx, cancel := context.WithDeadline(r.base, c.Deadline)
	x := &run{rollout: c.Rollout, cancel: cancel, res: rollout.GateObservation{Message: "calling " + c.Spec.URL}}
	r.runs[c.Key] = x
	go func() {
		defer cancel()
		r.call(ctx, c)
	}()
	return nil
}

// Note records a result for key without a call: why a run cannot start
// (not final: it may start later), or a final failure (a URL the
// controller may not call). A running call is not replaced.
func (r *Runner) Note(key string, rollout types.NamespacedName, res rollout.GateObservation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if x, ok := r.runs[key]; ok && (x.cancel != nil || !x.forgotten.IsZero()) {
		return
	}
	r.runs[key] = &run{rollout: rollout, res: res}
}

// Clear drops a note that was not final, so that Ensure may start the run.
func (r *Runner) Clear(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if x, ok := r.runs[key]; ok && x.cancel == nil && !x.res.Done && x.forgotten.IsZero() {
		delete(r.runs, key)
	}
}

// Started reports whether run key calls, has its final result, or was
// forgotten lately.
func (r *Runner) Started(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	x, ok := r.runs[key]
	return ok && (x.cancel != nil || x.res.Done || !x.forgotten.IsZero())
}

// Result is the latest result of run key, and whether one is known.
func (r *Runner) Result(key string) (rollout.GateObservation, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	x, ok := r.runs[key]
	if !ok {
		return rollout.GateObservation{}, false
	}
	return x.res, true
}

// Forget stops run key if it still calls. Its result stays for
// forgetAfter, and the run is not started again meanwhile.
func (r *Runner) Forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for k, x := range r.runs {
		if !x.forgotten.IsZero() && now.Sub(x.forgotten) > forgetAfter {
			delete(r.runs, k)
		}
	}
	if x, ok := r.runs[key]; ok && x.forgotten.IsZero() {
		if x.cancel != nil {
			x.cancel()
		}
		x.forgotten = now
	}
}

// ForgetRollout forgets every run of a rollout (it was deleted).
func (r *Runner) ForgetRollout(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, x := range r.runs {
		if x.rollout == key {
			if x.cancel != nil {
				x.cancel()
			}
			delete(r.runs, k)
		}
	}
}

func (r *Runner) set(key string, res rollout.GateObservation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if x, ok := r.runs[key]; ok {
		x.res = res
	}
}

// call makes attempts until one passes or fails for good, the retries run
// out, or ctx ends (the deadline, a Forget, the controller stopping).
func (r *Runner) call(ctx context.Context, c Call) {
	retries := DefaultRetries
	if c.Spec.Retries != nil {
		retries = int(*c.Spec.Retries)
	}
	backoff := DefaultRetryBackoff
	if d := c.Spec.RetryBackoff.Duration; d > 0 {
		backoff = d
	}
	for attempt := int32(1); ; attempt++ {
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			r.set(c.Key, rollout.GateObservation{Attempts: attempt - 1, Message: stopped(ctx, attempt-1)})
			return
		}
		r.set(c.Key, rollout.GateObservation{Attempts: attempt, Message: fmt.Sprintf("attempt %d of %d: calling %s", attempt, retries+1, c.Spec.URL)})
		a := r.attempt(ctx, c, attempt)
		<-r.slots
		res := rollout.GateObservation{Attempts: attempt, Message: fmt.Sprintf("attempt %d of %d: %s", attempt, retries+1, a.message)}
		switch {
		case ctx.Err() != nil:
			res.Message = stopped(ctx, attempt) + "; last: " + a.message
			r.set(c.Key, res)
			return
		case !a.retry:
			res.Done, res.Passed = true, a.passed
			r.set(c.Key, res)
			return
		case int(attempt) > retries:
			res.Done = true
			res.Message = fmt.Sprintf("%d attempt(s) failed; last: %s", attempt, a.message)
			r.set(c.Key, res)
			return
		}
		res.Message += fmt.Sprintf("; retrying in %s", backoff)
		r.set(c.Key, res)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			r.set(c.Key, rollout.GateObservation{Attempts: attempt, Message: stopped(ctx, attempt) + "; last: " + a.message})
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func stopped(ctx context.Context, attempts int32) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("the gate's timeout passed after %d attempt(s)", attempts)
	}
	return fmt.Sprintf("stopped after %d attempt(s)", attempts)
}
