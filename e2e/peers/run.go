package peers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/loadgen"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// Config is one benchmark: every system on every profile, Repeat times.
type Config struct {
	Env      *rig.Env
	Systems  []System
	Profiles []Profile
	// Repeat is how many runs of each system on each profile (1 when 0).
	Repeat int
	// Limit bounds one run from the start of the rollout; a system without
	// an outcome by then is Undecided (10 min when 0).
	Limit time.Duration
	// Warmup is how long the stable version serves the load before the
	// rollout starts, so that Prometheus has its history (20 s when 0).
	Warmup time.Duration
	// Seed of the model servers and proxy; each run adds its index.
	Seed uint64
	// Logf reports progress, one line per run.
	Logf func(format string, args ...any)
	// OnResult is called after each run (to print or save as it goes).
	OnResult func(Result)
}

// Run runs every system on every profile, Repeat times, one run at a time,
// in the order repeat → profile → system so that a slow machine affects
// every system alike. A run that fails records its error in Result.Err and
// the benchmark goes on; only ctx ending stops it.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Repeat <= 0 {
		cfg.Repeat = 1
	}
	if cfg.Limit <= 0 {
		cfg.Limit = 10 * time.Minute
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 20 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	var out []Result
	n := 0
	for rep := 0; rep < cfg.Repeat; rep++ {
		for _, p := range cfg.Profiles {
			for _, s := range cfg.Systems {
				n++
				if err := ctx.Err(); err != nil {
					return out, err
				}
				start := time.Now()
				cfg.Logf("run %d/%d: %s, %s (repeat %d)", n, cfg.Repeat*len(cfg.Profiles)*len(cfg.Systems), s.Name(), p.Name, rep+1)
				r := runOne(ctx, cfg, s, p, cfg.Seed+uint64(n)*1000)
				cfg.Logf("  %s (run took %s)", r, time.Since(start).Round(time.Second))
				out = append(out, r)
				if cfg.OnResult != nil {
					cfg.OnResult(r)
				}
			}
		}
	}
	return out, nil
}

// runOne sets the system up in a fresh namespace, sends the profile's load,
// starts the rollout after the warm-up and follows it to its outcome,
// counting the candidate's answers in between.
func runOne(ctx context.Context, cfg Config, s System, p Profile, seed uint64) (res Result) {
	res = Result{System: s.Name(), Profile: p.Name}
	var stack rig.Stack
	defer stack.Run()
	fail := func(err error) Result {
		res.Err = err.Error()
		return res
	}
	m, err := newModel(ctx, &stack, cfg.Env, p, seed)
	if err != nil {
		return fail(err)
	}
	ro, err := s.Setup(ctx, &stack, m, p)
	if err != nil {
		return fail(fmt.Errorf("setup: %w", err))
	}
	total := cfg.Warmup + cfg.Limit + time.Minute
	g, err := loadgen.Start(ctx, loadgen.Config{URL: m.URL(), Rate: p.Rate, Duration: total,
		MaxRequests: int(p.Rate*total.Seconds()) + 1, Seed: seed})
	if err != nil {
		return fail(err)
	}
	stack.Cleanup(func() { g.Stop() })
	select {
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-time.After(cfg.Warmup):
	}
	if w := g.Snapshot(); w.ByVersion[StableVersion] == 0 {
		return fail(fmt.Errorf("no answer from %s during the warm-up: %s", StableVersion, w))
	}

	before, t0 := g.Snapshot(), time.Now()
	if err := ro.Start(ctx); err != nil {
		return fail(fmt.Errorf("start the rollout: %w", err))
	}
	var last Observation
	for {
		o, err := ro.Observe(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			// A transient API error is retried; a dead controller is not.
			if errors.Is(err, errControllerExited) || time.Since(t0) > cfg.Limit {
				return fail(err)
			}
			cfg.Logf("  observe: %v", err)
		} else {
			last = o
			res.MaxWeight = max(res.MaxWeight, o.Weight)
		}
		res.Seconds = time.Since(t0).Seconds()
		if last.Outcome != "" || time.Since(t0) > cfg.Limit {
			break
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	d := g.Snapshot().Sub(before)
	res.Phase, res.Outcome = last.Phase, last.Outcome
	if res.Outcome == "" {
		res.Outcome = Undecided
	}
	res.CandidateRequests, res.CandidateErrors = d.ByVersion[CandidateVersion], d.Errors(CandidateVersion)
	return res
}
