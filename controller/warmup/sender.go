// Package warmup sends a candidate its warm-up requests while the warm-up
// gate (spec.readiness.warmup.requests) holds its weight.
//
// The requests go through the mesh: each carries HeaderName naming the
// candidate's subset, and a route Fulcrum writes in front of the managed
// routes (router/istio.SetWarmupRoute) sends those requests, and only
// those, to the candidate. One sender runs per held rollout, at the rate the
// spec asks, until the reconciler stops it (the gate passed, the rollout
// ended), the gate's timeout passes, or the controller stops: a sender never
// outlives the reason it was started for.
package warmup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// HeaderName is the header that the warm-up route matches.
const HeaderName = "x-fulcrum-warmup"

// Defaults of spec.readiness.warmup.requests.
const (
	DefaultRate        = 10
	DefaultMethod      = http.MethodPost
	DefaultContentType = "application/json"
	// maxInFlight bounds the requests one sender has open: a slow (cold)
	// model must not pile up connections; ticks beyond it send nothing and
	// count as failed.
	maxInFlight = 16
	// requestTimeout bounds one warm-up request; a cold first answer may
	// take seconds, a hung one must not hold a slot forever.
	requestTimeout = 30 * time.Second
	// maxBody bounds one request body read from the ConfigMap.
	maxBody = 1 << 20
)

// Job is what one sender sends.
type Job struct {
	// Rollout whose gate holds.
	Rollout types.NamespacedName
	// Subset warmed, the value of HeaderName.
	Subset string
	// Spec of the requests.
	Spec v1alpha1.WarmupRequests
	// Deadline after which the sender stops by itself (the gate's timeout).
	Deadline time.Time
}

// Counts are what a sender did since it started.
type Counts struct {
	Sent, Failed int64
	// LastError is the latest failure, for the rollout's status.
	LastError string
}

// Config holds a Sender's collaborators and limits.
type Config struct {
	// Reader reads the ConfigMaps holding the bodies.
	Reader client.Reader
	// HTTP sends the requests; nil: a client with no proxy.
	HTTP *http.Client
	// AllowedHosts are URL hosts (host or host:port) a warm-up URL may
	// name besides the model's own host: the mesh gateways the admin allows
	// (--warmup-gateways). Anything else is refused, so that a ModelRollout
	// cannot make the controller call arbitrary addresses.
	AllowedHosts []string
}

// Sender runs the warm-up senders of all rollouts. Start it with the
// manager (it needs the leader: only the leader's gate decisions count).
type Sender struct {
	cfg  Config
	mu   sync.Mutex
	base context.Context
	runs map[types.NamespacedName]*run
}

type run struct {
	job    Job
	cancel context.CancelFunc
	sent   atomic.Int64
	failed atomic.Int64
	last   atomic.Value // string
}

// NewSender returns a Sender; it sends nothing until Start.
func NewSender(cfg Config) *Sender {
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: maxInFlight, IdleConnTimeout: 30 * time.Second}}
	}
	return &Sender{cfg: cfg, runs: map[types.NamespacedName]*run{}}
}

// Start runs until ctx ends, then stops every sender; Ensure refuses from
// then on.
func (s *Sender) Start(ctx context.Context) error {
	s.mu.Lock()
	s.base = ctx
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base = nil
	for k, r := range s.runs {
		r.cancel()
		delete(s.runs, k)
	}
	return nil
}

// CheckURL returns why a warm-up URL may not be used, or nil: its scheme
// must be http or https, and its host the model's (any spelling Istio
// resolves: short, namespaced or the cluster domain's) or an allowed
// gateway.
func (s *Sender) CheckURL(raw string, modelHosts []string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("spec.readiness.warmup.requests.url %q must be an http or https URL", raw)
	}
	if slices.Contains(modelHosts, u.Hostname()) || slices.Contains(s.cfg.AllowedHosts, u.Host) || slices.Contains(s.cfg.AllowedHosts, u.Hostname()) {
		return nil
	}
	return fmt.Errorf("spec.readiness.warmup.requests.url %q names host %q, which is neither the model's (%s) nor a gateway the controller allows (--warmup-gateways): send warm-up requests to the model's host",
		raw, u.Hostname(), strings.Join(modelHosts, ", "))
}

// Ensure keeps a sender running for job, starting one (or restarting it
// when the subset or spec changed). It reads the bodies first: a missing
// ConfigMap or an empty one is an error naming it, and nothing is sent.
func (s *Sender) Ensure(ctx context.Context, job Job) error {
	if r := s.current(job.Rollout); r != nil && r.job.Subset == job.Subset && r.job.Spec == job.Spec {
		return nil
	}
	bodies, err := s.bodies(ctx, job)
	if err != nil {
		return err
	}
	// Check and replace under one lock: two calls for one rollout must
	// never leave a run that Stop cannot reach.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.base == nil || s.base.Err() != nil {
		return errors.New("the warm-up sender is not running (the controller is starting or stopping)")
	}
	if cur := s.runs[job.Rollout]; cur != nil {
		if cur.job.Subset == job.Subset && cur.job.Spec == job.Spec {
			return nil
		}
		cur.cancel()
	}
	rctx, cancel := context.WithDeadline(s.base, job.Deadline)
	r := &run{job: job, cancel: cancel}
	r.last.Store("")
	s.runs[job.Rollout] = r
	go func() {
		s.send(rctx, r, bodies)
		s.forget(job.Rollout, r)
	}()
	return nil
}

func (s *Sender) current(key types.NamespacedName) *run {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[key]
}

// forget drops a run that ended by itself (its deadline), unless another
// replaced it, so that a later Ensure starts afresh.
func (s *Sender) forget(key types.NamespacedName, r *run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runs[key] == r {
		r.cancel()
		delete(s.runs, key)
	}
}

// Stop ends the sender of a rollout, if one runs.
func (s *Sender) Stop(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.runs[key]; r != nil {
		r.cancel()
		delete(s.runs, key)
	}
}

// Counts returns what the rollout's sender did, and false when none runs.
func (s *Sender) Counts(key types.NamespacedName) (Counts, bool) {
	s.mu.Lock()
	r := s.runs[key]
	s.mu.Unlock()
	if r == nil {
		return Counts{}, false
	}
	return Counts{Sent: r.sent.Load(), Failed: r.failed.Load(), LastError: r.last.Load().(string)}, true
}

// bodies reads the request bodies: every key of data and binaryData, in key
// order.
func (s *Sender) bodies(ctx context.Context, job Job) ([][]byte, error) {
	cm := &corev1.ConfigMap{}
	key := types.NamespacedName{Namespace: job.Rollout.Namespace, Name: job.Spec.ConfigMap}
	if err := s.cfg.Reader.Get(ctx, key, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("ConfigMap %s (spec.readiness.warmup.requests.configMap) not found: create it with one request body per key", key)
		}
		return nil, fmt.Errorf("read ConfigMap %s (spec.readiness.warmup.requests.configMap): %w", key, err)
	}
	all := map[string][]byte{}
	for k, v := range cm.Data {
		all[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		all[k] = v
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out [][]byte
	for _, k := range keys {
		if len(all[k]) > maxBody {
			return nil, fmt.Errorf("ConfigMap %s key %q is %d bytes, more than a warm-up request body may be (%d)", key, k, len(all[k]), maxBody)
		}
		out = append(out, all[k])
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ConfigMap %s (spec.readiness.warmup.requests.configMap) has no keys: add one request body per key", key)
	}
	return out, nil
}

// send paces requests at the spec's rate until ctx ends.
func (s *Sender) send(ctx context.Context, r *run, bodies [][]byte) {
	spec := r.job.Spec
	rate := spec.RatePerSecond
	if rate <= 0 {
		rate = DefaultRate
	}
	method, ctype := spec.Method, spec.ContentType
	if method == "" {
		method = DefaultMethod
	}
	if ctype == "" {
		ctype = DefaultContentType
	}
	slots := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			r.fail(fmt.Sprintf("%d warm-up requests still unanswered: the candidate is slower than %d requests/s", maxInFlight, rate))
			continue
		}
		body := bodies[i%len(bodies)]
		i++ // only requests sent take a body: the order stays exact under load
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			r.sent.Add(1)
			if err := s.one(ctx, method, ctype, spec, r.job.Subset, body); err != nil && ctx.Err() == nil {
				r.fail(err.Error())
			}
		}()
	}
}

func (r *run) fail(msg string) {
	r.failed.Add(1)
	r.last.Store(msg)
}

// one sends one warm-up request; an answer below 500 is a success (a 4xx
// is the payload's problem, but the model still ran it warm).
func (s *Sender) one(ctx context.Context, method, ctype string, spec v1alpha1.WarmupRequests, subset string, body []byte) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var rd io.Reader
	if method != http.MethodGet {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, spec.URL, rd)
	if err != nil {
		return fmt.Errorf("warm-up request to %s: %w", spec.URL, err)
	}
	req.Header.Set(HeaderName, subset)
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if spec.Host != "" {
		req.Host = spec.Host
	}
	resp, err := s.cfg.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("warm-up request to %s: %w", spec.URL, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("warm-up request to %s: %s", spec.URL, resp.Status)
	}
	return nil
}
