package notify

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Config configures a Dispatcher.
type Config struct {
	// Client reads Notifiers, ClusterNotifiers and Namespaces (the
	// manager's cached client) and writes the notifiers' status. Its
	// scheme must hold api/v1alpha1 and core/v1.
	Client client.Client
	// SecretReader reads the sinks' Secrets one at a time by name; default
	// Client. Give the manager's API reader (a direct GET) to keep Secrets
	// out of the cache and the controller's RBAC at get on secrets.
	SecretReader client.Reader

	// DashboardURL is the dashboard's external base address; events link
	// to DashboardURL/#/rollouts/NAMESPACE/NAME. Empty: no link.
	DashboardURL string

	// QueueSize bounds the events waiting for delivery, in all; default
	// 1024. When full, the oldest is dropped.
	QueueSize int
	// Workers deliver in parallel, each the events of its share of the
	// rollouts, in order; default 4.
	Workers int
	// Retry bounds the attempts per event and sink.
	Retry RetryPolicy
	// MaxAge drops events whose entry is older when published or picked
	// up (a controller that starts again and publishes old history); the
	// same entry is recognised as a duplicate for as long. Default 15m.
	MaxAge time.Duration
	// StatusInterval is how often the notifiers' status is written, at
	// most once per notifier; default 30s.
	StatusInterval time.Duration

	// Registerer takes the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Clock is time; default the real clock.
	Clock clock.WithTicker
	// HTTPClient sends to the sinks; default one that follows no redirects.
	HTTPClient *http.Client
	// OnChange, when set, is called from a worker when Failures of a
	// rollout change, so the controller can reconcile it; it must not
	// block (send to a buffered channel, or enqueue).
	OnChange func(namespace, name string)
}

// Dispatcher delivers events to the sinks of the Notifiers and
// ClusterNotifiers that want them. Publish never blocks; Start runs the
// workers until its context ends.
type Dispatcher struct {
	cfg      Config
	queues   []*queue
	seen     *seen
	status   statusBook
	failures failureBook
	metrics  *metrics
	rnd      func(int64) int64
	started  atomic.Bool
}

// New checks cfg and fills in its defaults.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Client == nil {
		return nil, errors.New("notify: Config.Client is required")
	}
	if cfg.SecretReader == nil {
		cfg.SecretReader = cfg.Client
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	cfg.Workers = min(cfg.Workers, cfg.QueueSize)
	cfg.Retry = cfg.Retry.withDefaults()
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 15 * time.Minute
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = newHTTPClient()
	}
	d := &Dispatcher{cfg: cfg, seen: newSeen(100_000), rnd: jitter}
	for i := 0; i < cfg.Workers; i++ {
		d.queues = append(d.queues, newQueue((cfg.QueueSize+cfg.Workers-1)/cfg.Workers))
	}
	d.metrics = newMetrics(func() float64 { return float64(d.queued()) })
	if cfg.Registerer != nil {
		if err := d.metrics.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("notify: register metrics: %w", err)
		}
	}
	return d, nil
}

// Publish queues ev for delivery and returns at once. An event older than
// MaxAge, or published before (same ID), is dropped; when the queue is
// full, the oldest waiting event is.
func (d *Dispatcher) Publish(ev Event) {
	now := d.cfg.Clock.Now()
	if now.Sub(ev.Time) > d.cfg.MaxAge {
		d.metrics.dropped.WithLabelValues(dropStale).Inc()
		return
	}
	if ev.ID != "" && !d.seen.add(ev.ID, ev.Time.Add(d.cfg.MaxAge), now) {
		d.metrics.dropped.WithLabelValues(dropDuplicate).Inc()
		return
	}
	if ev.DashboardURL == "" {
		ev.DashboardURL = DashboardLink(d.cfg.DashboardURL, ev.Namespace, ev.Rollout)
	}
	if old := d.queues[d.shard(&ev)].push(ev); old != nil {
		d.seen.remove(old.ID) // it may be published again
		d.metrics.dropped.WithLabelValues(dropQueueFull).Inc()
	}
}

// Failures are the sinks that the latest event sent to them from rollout
// namespace/name did not reach, by notifier and sink; nil when none.
func (d *Dispatcher) Failures(namespace, name string) []Failure {
	return d.failures.get(namespace + "/" + name)
}

// Forget drops what the dispatcher holds about a deleted rollout.
func (d *Dispatcher) Forget(namespace, name string) {
	d.failures.forget(namespace + "/" + name)
}

// Start delivers until ctx ends, then writes the notifiers' status a last
// time. It is a controller-runtime Runnable (mgr.Add), and like the
// controller runs on the leader only.
func (d *Dispatcher) Start(ctx context.Context) error {
	if !d.started.CompareAndSwap(false, true) {
		return errors.New("notify: dispatcher already started")
	}
	var wg sync.WaitGroup
	for _, q := range d.queues {
		wg.Go(func() { d.work(ctx, q) })
	}
	wg.Go(func() { d.statusLoop(ctx) })
	<-ctx.Done()
	wg.Wait()
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	d.flushStatus(final)
	return nil
}

func (d *Dispatcher) shard(ev *Event) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(ev.key()))
	return int(h.Sum32() % uint32(len(d.queues)))
}

func (d *Dispatcher) queued() int {
	n := 0
	for _, q := range d.queues {
		n += q.len()
	}
	return n
}

func (d *Dispatcher) work(ctx context.Context, q *queue) {
	for {
		ev, ok := q.pop(ctx)
		if !ok {
			return
		}
		d.process(ctx, &ev)
	}
}

// process delivers ev to every target at once, and returns when each has
// succeeded or failed: the next event of the rollout waits, so a sink sees
// a rollout's events in order.
func (d *Dispatcher) process(ctx context.Context, ev *Event) {
	log := logr.FromContextOrDiscard(ctx).WithValues("rollout", ev.key(), "event", ev.Type)
	if d.cfg.Clock.Since(ev.Time) > d.cfg.MaxAge {
		d.metrics.dropped.WithLabelValues(dropStale).Inc()
		return
	}
	targets, err := d.targets(ctx, ev)
	if err != nil {
		d.metrics.dropped.WithLabelValues(dropLookup).Inc()
		log.Error(err, "cannot find the notifiers of an event; it is dropped")
		return
	}
	var wg sync.WaitGroup
	for i := range targets {
		wg.Go(func() { d.deliver(ctx, log, ev, &targets[i]) })
	}
	wg.Wait()
}

// deliver sends ev to t, retrying what may succeed later.
func (d *Dispatcher) deliver(ctx context.Context, log logr.Logger, ev *Event, t *target) {
	kind := sinkKind(&t.sink)
	log = log.WithValues("notifier", t.notifier.String(), "sink", t.sink.Name, "kind", kind)
	contentType, b, err := body(ev, t)
	if err != nil {
		d.failed(log, ev, t, kind, fmt.Errorf("build the %s payload: %w", kind, err), 0)
		return
	}
	if b == nil {
		return
	}
	p := d.cfg.Retry
	for attempt := 1; ; attempt++ {
		err = d.attempt(ctx, t, kind, contentType, b)
		if err == nil {
			d.delivered(log, ev, t, kind, attempt)
			return
		}
		if ctx.Err() != nil {
			return // stopping: neither delivered nor failed
		}
		retryable, after := retryInfo(err)
		if !retryable || attempt >= p.Attempts {
			d.failed(log, ev, t, kind, err, attempt)
			return
		}
		if after > p.MaxRetryAfter {
			d.failed(log, ev, t, kind, fmt.Errorf("%w; the sink asked to retry after %s, longer than the %s Fulcrum waits", err, after, p.MaxRetryAfter), attempt)
			return
		}
		d.metrics.retries.WithLabelValues(kind).Inc()
		timer := d.cfg.Clock.NewTimer(p.backoff(attempt, after, d.rnd))
		select {
		case <-timer.C():
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

// attempt reads t's endpoint (Secrets may have changed since the last
// attempt) and posts once.
func (d *Dispatcher) attempt(ctx context.Context, t *target, kind, contentType string, b []byte) error {
	u, authorization, err := d.endpoint(ctx, t)
	if err != nil {
		return err
	}
	start := d.cfg.Clock.Now()
	err = post(ctx, d.cfg.HTTPClient, request{url: u, authorization: authorization, contentType: contentType, body: b},
		d.cfg.Retry.Timeout, start)
	d.metrics.latency.WithLabelValues(kind).Observe(d.cfg.Clock.Since(start).Seconds())
	return err
}

// retryInfo says whether an attempt's error may pass on retry, and after
// how long the sink asked to be called again. A missing Secret will not
// appear by itself within a retry; an error reading it might pass.
func retryInfo(err error) (bool, time.Duration) {
	var de *deliveryError
	if errors.As(err, &de) {
		return de.retryable, de.retryAfter
	}
	var se *secretError
	return !errors.As(err, &se), 0
}

func (d *Dispatcher) delivered(log logr.Logger, ev *Event, t *target, kind string, attempts int) {
	now := d.cfg.Clock.Now()
	d.metrics.deliveries.WithLabelValues(kind, resultDelivered).Inc()
	d.status.delivered(t.notifier, now)
	log.V(1).Info("event delivered", "attempts", attempts)
	if d.failures.clear(ev.key(), t.notifier.String(), t.sink.Name) {
		d.changed(ev)
	}
}

func (d *Dispatcher) failed(log logr.Logger, ev *Event, t *target, kind string, err error, attempts int) {
	now := d.cfg.Clock.Now()
	var se *secretError
	secretProblem := errors.As(err, &se)
	msg := fmt.Sprintf("sink %s (%s): %v", t.sink.Name, kind, err)
	d.metrics.deliveries.WithLabelValues(kind, resultFailed).Inc()
	d.status.failed(t.notifier, now, msg, secretProblem)
	d.failures.set(ev.key(), Failure{Notifier: t.notifier.String(), Sink: t.sink.Name, Kind: kind,
		EventType: ev.Type, Time: now, Error: err.Error()})
	log.Error(err, "event not delivered", "attempts", attempts)
	d.changed(ev)
}

func (d *Dispatcher) changed(ev *Event) {
	if d.cfg.OnChange != nil {
		d.cfg.OnChange(ev.Namespace, ev.Rollout)
	}
}
