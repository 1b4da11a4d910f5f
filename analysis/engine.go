package analysis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fulcrum-ml/fulcrum/analysis/connections"
	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/analysis/templates"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// EngineConfig configures NewEngine.
type EngineConfig struct {
	// Prometheus is the default provider: the controller's Prometheus
	// address, auth, TLS and timeout. A MetricTemplate may name its own
	// address and a Secret with its own settings; the controller's
	// settings never go to another address (package connections).
	Prometheus provider.PrometheusConfig
	// Secrets reads the Secrets of MetricTemplates'
	// spec.provider.httpClientConfigSecretRef: pass mgr.GetAPIReader(),
	// which GETs one Secret, not the cache, which would list and watch
	// every Secret in the cluster. Nil: such templates get Error rounds.
	Secrets client.Reader
	// Provider, when set, runs every query instead of Prometheus (tests,
	// or a caller that wraps the provider).
	Provider provider.Provider
	// Templates reads MetricTemplates: pass the manager's cache
	// (mgr.GetClient() or mgr.GetCache()). Nil allows built-in templates
	// and inline queries only.
	Templates templates.Getter
	// AllowInlineQueries accepts metrics with their own PromQL
	// (spec.analysis.metrics[].query; cmd/fulcrum --allow-inline-queries).
	// False: such a metric's verdict is Error, naming the flag, and only
	// built-in templates and MetricTemplates run.
	AllowInlineQueries bool
	// NamespaceLabel confines inline queries and MetricTemplates without
	// spec.namespaceLabel to the rollout's namespace (cmd/fulcrum
	// --query-namespace-label); templates.DefaultNamespaceLabel when empty.
	NamespaceLabel string
	// AllowedPrometheusAddresses are the addresses a MetricTemplate's
	// spec.provider.address may name besides Prometheus.Address (cmd/fulcrum
	// --prometheus-allowed-addresses; connections.Allowlist says how they
	// match). Empty: none; a template naming another gets Error rounds.
	AllowedPrometheusAddresses []string
	// Registerer receives fulcrum_provider_queries_total and
	// fulcrum_provider_query_duration_seconds: pass controller-runtime's
	// metrics.Registry. Nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Clock stamps rounds whose request has no Now; the real clock when nil.
	Clock clock.PassiveClock
	// MaxConcurrentQueries bounds queries in flight per round; 4 when zero.
	MaxConcurrentQueries int
	// DisableBatching runs built-in templates per rollout, as MetricTemplates
	// and inline queries always run. By default (false) built-in templates
	// run in their batched form: one query per (template query, evaluation
	// time bucket, window bucket) serves every rollout in the mesh.
	DisableBatching bool
	// BatchQuantum buckets the evaluation time and the window of batched
	// queries (both round down), so rollouts analysed within one quantum
	// share a query. A window loses less than one quantum of the newest
	// data and less than one of the oldest, and never reaches before the
	// step's start. A whole number of seconds; DefaultBatchQuantum when zero.
	BatchQuantum time.Duration
}

// Engine implements Analyzer with metric templates, a provider and judges.
type Engine struct {
	cfg     EngineConfig
	metrics *provider.Metrics
	clock   clock.PassiveClock

	shared *sharedCache // nil when batching is off

	// connections hands out providers by template; nil when cfg.Provider
	// runs every query.
	connections *connections.Pool
}

var _ Analyzer = (*Engine)(nil)

// NewEngine checks cfg and builds an engine. It contacts nothing.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	m, err := provider.NewMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register provider metrics: %w", err)
	}
	if cfg.NamespaceLabel == "" {
		cfg.NamespaceLabel = templates.DefaultNamespaceLabel
	}
	if err := templates.ValidNamespaceLabel(cfg.NamespaceLabel); err != nil {
		return nil, fmt.Errorf("engine: namespace label: %w", err)
	}
	e := &Engine{cfg: cfg, metrics: m, clock: cfg.Clock}
	if e.clock == nil {
		e.clock = clock.RealClock{}
	}
	if e.cfg.MaxConcurrentQueries <= 0 {
		e.cfg.MaxConcurrentQueries = 4
	}
	if e.cfg.BatchQuantum == 0 {
		e.cfg.BatchQuantum = DefaultBatchQuantum
	}
	if e.cfg.BatchQuantum < time.Second || e.cfg.BatchQuantum%time.Second != 0 {
		return nil, fmt.Errorf("engine: BatchQuantum %s: want a whole number of seconds, at least 1s (e.g. 5s)", e.cfg.BatchQuantum)
	}
	if !e.cfg.DisableBatching {
		e.shared = newSharedCache(e.cfg.BatchQuantum)
	}
	if cfg.Provider == nil {
		if cfg.Prometheus.Address == "" {
			return nil, errors.New("engine: set Prometheus.Address (the controller's Prometheus, e.g. http://prometheus.monitoring:9090) or Provider")
		}
		e.cfg.Prometheus.Metrics = m
		pool, err := connections.New(connections.Config{Global: e.cfg.Prometheus, Secrets: cfg.Secrets, Clock: e.clock,
			AllowedAddresses: cfg.AllowedPrometheusAddresses})
		if err != nil {
			return nil, err
		}
		e.connections = pool
	}
	return e, nil
}

// providerFor returns the provider that a template of namespace asks for.
func (e *Engine) providerFor(ctx context.Context, namespace string, spec *v1alpha1.Provider) (provider.Provider, error) {
	if e.cfg.Provider != nil {
		if spec != nil && spec.Type != "" && spec.Type != v1alpha1.ProviderPrometheus {
			return nil, fmt.Errorf("provider.type %q: %w", spec.Type, provider.ErrUnknownProvider)
		}
		return e.cfg.Provider, nil
	}
	return e.connections.For(ctx, connections.Template{Namespace: namespace, Provider: spec})
}

// Analyze implements Analyzer: one round for one rollout.
func (e *Engine) Analyze(ctx context.Context, req Request) (v1alpha1.AnalysisRound, error) {
	if req.Spec == nil {
		return v1alpha1.AnalysisRound{}, errors.New("analysis request has no spec")
	}
	if req.Stable == "" || req.Candidate == "" {
		return v1alpha1.AnalysisRound{}, fmt.Errorf("analysis request for %s/%s needs both stable and candidate subsets", req.Namespace, req.Name)
	}
	now := req.Now
	if now.IsZero() {
		now = e.clock.Now()
	}
	// Every look of a step reads a window from the same start (whole
	// seconds, so a look's window never reaches before it), so the step's
	// looks see one growing set of requests (see EvidenceStart).
	q := e.batchQuantum(req.Spec)
	start := req.WindowStart
	if !start.IsZero() {
		start = EvidenceStart(start, q)
	}
	window := now.Sub(start).Truncate(time.Second)
	if start.IsZero() || window < time.Second {
		window = time.Second
	}
	data := templates.NewData(req.Namespace, req.Service, req.Stable, req.Candidate, window)
	var sh *sharedRound
	if e.shared != nil {
		if at, w, ok := batchWindow(start, now, q); ok {
			sh = &sharedRound{at: at, window: w, data: templates.NewBatchData(w)}
		}
	}
	plans := make([]*plan, len(req.Spec.Metrics))
	batch := newBatch()
	for i, m := range req.Spec.Metrics {
		plans[i] = e.plan(ctx, req, m, data, window, sh, batch)
	}
	batch.run(ctx, now, e.cfg.MaxConcurrentQueries, e.shared)
	log.FromContext(ctx).V(1).Info("analysis queries", "rollout", req.Namespace+"/"+req.Name, "queries", len(batch.queries), "metrics", len(plans), "batched", sh != nil)

	round := v1alpha1.AnalysisRound{Time: metav1.NewTime(now), Step: req.Step, Metrics: make([]v1alpha1.MetricResult, len(plans))}
	prev := map[string]*v1alpha1.MetricResult{}
	for i := range req.Previous {
		prev[req.Previous[i].Name] = &req.Previous[i]
	}
	for i, p := range plans {
		r := p.judge(req, batch, prev[p.metric.Name])
		r.Name = p.metric.Name
		round.Metrics[i] = r
	}
	round.Verdict = RoundVerdict(round.Metrics)
	return round, nil
}

// RoundVerdict combines metric verdicts: Fail if any failed, Error if any
// could not be read, Inconclusive if any lacked evidence, else Pass. A round
// without metrics is Inconclusive: nothing was judged.
func RoundVerdict(results []v1alpha1.MetricResult) v1alpha1.Verdict {
	if len(results) == 0 {
		return v1alpha1.VerdictInconclusive
	}
	seen := map[v1alpha1.Verdict]bool{}
	for _, r := range results {
		seen[r.Verdict] = true
	}
	for _, v := range []v1alpha1.Verdict{v1alpha1.VerdictFail, v1alpha1.VerdictError, v1alpha1.VerdictInconclusive} {
		if seen[v] {
			return v
		}
	}
	return v1alpha1.VerdictPass
}

// batch runs each distinct (provider, query) once per round, so metrics that
// share a query (an error rate and a request count, say) cost one query, and
// every query serves all subsets.
type batch struct {
	queries map[queryKey]*queryResult
}

type queryKey struct {
	p     provider.Provider
	query string
}

type queryResult struct {
	samples []provider.Sample
	err     error
	// shared, when set, marks a batched query: it runs through the
	// engine's shared cache and this rollout's rows are picked from it.
	shared *rows
}

// sharedRound is a round's batched evaluation time and window data.
type sharedRound struct {
	at     time.Time
	window time.Duration
	data   templates.Data
}

func newBatch() *batch { return &batch{queries: map[queryKey]*queryResult{}} }

func (b *batch) add(p provider.Provider, q string, shared *rows) queryKey {
	k := queryKey{p, q}
	if _, ok := b.queries[k]; !ok {
		b.queries[k] = &queryResult{shared: shared}
	}
	return k
}

func (b *batch) run(ctx context.Context, at time.Time, limit int, cache *sharedCache) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for k, r := range b.queries {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if r.shared == nil {
				r.samples, r.err = k.p.Query(ctx, k.query, at)
				return
			}
			all, err := cache.query(ctx, k.p, k.query, r.shared.at)
			if err != nil {
				r.err = err
				return
			}
			r.samples, r.err = r.shared.pick(k.query, all)
		}()
	}
	wg.Wait()
}

// batchQuantum is the engine's quantum, but at most the rollout's look
// period (LookPeriod): rounds of one rollout are at least a look period
// apart, so two of them never read the same bucket, and one observation is
// never judged twice (nor counted twice toward failureLimit).
func (e *Engine) batchQuantum(spec *v1alpha1.Analysis) time.Duration {
	q := e.cfg.BatchQuantum
	if l := LookPeriod(spec).Truncate(time.Second); l < q {
		q = max(l, time.Second)
	}
	return q
}
