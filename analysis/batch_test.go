package analysis

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// mesh is a fake Prometheus holding Istio series for many rollouts. It
// answers per-rollout queries (namespace/service matchers, grouped by
// version) and batched ones (grouped by namespace, service and version)
// from the same numbers, and counts every query it runs.
type mesh struct {
	mu    sync.Mutex
	calls map[string]int
	// services are "namespace/service"; each has v1 (stable), v2
	// (candidate) and v0, a version no rollout asks about.
	services []string
}

var (
	nsMatcher  = regexp.MustCompile(`destination_service_namespace="([^"]*)"`)
	svcMatcher = regexp.MustCompile(`destination_service_name="([^"]*)"`)
)

func newMesh(n int) *mesh {
	m := &mesh{calls: map[string]int{}}
	for i := range n {
		m.services = append(m.services, fmt.Sprintf("ns-%d/svc-%d", i%7, i))
	}
	return m
}

func (m *mesh) total() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.calls {
		n += c
	}
	return n
}

// value is the series of one query kind for one (service, version): the
// odd services' candidates have ten times the errors.
func value(kind string, i int, version string) float64 {
	reqs := map[string]float64{"v0": 7, "v1": float64(9000 + 10*i), "v2": float64(1000 + i)}[version]
	errs := reqs * 0.005
	if version == "v2" && i%2 == 1 {
		errs = reqs * 0.05
	}
	switch kind {
	case "rate":
		return errs / reqs
	case "errors":
		return float64(int(errs))
	case "quantile":
		return 100 + float64(i)
	}
	return reqs // requests, latency count
}

func queryKind(q string) string {
	switch {
	case strings.HasPrefix(q, "(sum") && strings.Contains(q, "5.."):
		return "rate"
	case strings.Contains(q, `response_code=~"5.."`):
		return "errors"
	case strings.Contains(q, "istio_requests_total"):
		return "requests"
	case strings.Contains(q, "histogram_quantile"):
		return "quantile"
	case strings.Contains(q, "istio_request_duration_milliseconds_count"):
		return "count"
	}
	return ""
}

func (m *mesh) Query(_ context.Context, q string, _ time.Time) ([]provider.Sample, error) {
	m.mu.Lock()
	m.calls[q]++
	m.mu.Unlock()
	kind := queryKind(q)
	if kind == "" {
		return nil, &provider.QueryError{Kind: provider.ErrBadQuery, Query: q}
	}
	const l = "destination_version"
	batched := strings.Contains(q, "sum by (destination_service_namespace, destination_service_name, destination_version")
	var out []provider.Sample
	for i, s := range m.services {
		ns, svc, _ := strings.Cut(s, "/")
		if !batched {
			mn, ms := nsMatcher.FindStringSubmatch(q), svcMatcher.FindStringSubmatch(q)
			if mn == nil || ms == nil || mn[1] != ns || ms[1] != svc {
				continue
			}
		}
		for _, v := range []string{"v0", "v1", "v2"} {
			labels := map[string]string{l: v}
			if batched {
				labels["destination_service_namespace"], labels["destination_service_name"] = ns, svc
			} else if !strings.Contains(q, `destination_version=~"v1|v2"`) || v == "v0" {
				continue
			}
			out = append(out, provider.Sample{Labels: labels, Value: value(kind, i, v)})
		}
	}
	if len(out) == 0 {
		return nil, &provider.QueryError{Kind: provider.ErrNoData, Query: q}
	}
	return out, nil
}

var meshMetrics = []v1alpha1.Metric{
	{Name: "error-rate", Template: "istio-error-rate", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.99}},
	{Name: "error-rate-threshold", Template: "istio-error-rate", Threshold: &v1alpha1.ThresholdJudge{Max: f64(0.01)}},
	{Name: "split", Template: "istio-request-count", SampleRatio: &v1alpha1.SampleRatioJudge{}},
	{Name: "p99", Template: "istio-latency-p99", Threshold: &v1alpha1.ThresholdJudge{Max: f64(300)}},
}

// meshRequests are one round of every rollout of the mesh, all at now,
// each step started at start.
func meshRequests(m *mesh, start, now time.Time) []Request {
	out := make([]Request, len(m.services))
	for i, s := range m.services {
		ns, svc, _ := strings.Cut(s, "/")
		out[i] = Request{Namespace: ns, Name: svc, Service: svc, Stable: "v1", Candidate: "v2",
			Weights: map[string]int32{"v1": 90, "v2": 10}, Step: 1, WindowStart: start, Now: now,
			Spec: &v1alpha1.Analysis{MinSamples: 100, Metrics: meshMetrics}}
	}
	return out
}

// analyzeAll runs every request concurrently, as the controller's workers
// would, and returns the rounds in request order.
func analyzeAll(t testing.TB, e *Engine, reqs []Request) []v1alpha1.AnalysisRound {
	out := make([]v1alpha1.AnalysisRound, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			round, err := e.Analyze(context.Background(), r)
			if err != nil {
				t.Error(err)
			}
			out[i] = round
		})
	}
	wg.Wait()
	return out
}

const meshKinds = 5 // requests, errors, error rate, p99, latency count

func TestBatchingOneQueryPerKindForAllRollouts(t *testing.T) {
	now := time.Unix(100000, 0)
	start := now.Add(-5 * time.Minute)
	for _, n := range []int{1, 10, 100} {
		batched, perRollout := newMesh(n), newMesh(n)
		eb, err := NewEngine(EngineConfig{Provider: batched})
		if err != nil {
			t.Fatal(err)
		}
		ep, err := NewEngine(EngineConfig{Provider: perRollout, DisableBatching: true})
		if err != nil {
			t.Fatal(err)
		}
		rb := analyzeAll(t, eb, meshRequests(batched, start, now))
		rp := analyzeAll(t, ep, meshRequests(perRollout, start, now))
		if got := batched.total(); got != meshKinds {
			t.Errorf("%d rollouts batched: %d queries, want %d (one per template query kind): %v", n, got, meshKinds, batched.calls)
		}
		if got := perRollout.total(); got != meshKinds*n {
			t.Errorf("%d rollouts per rollout: %d queries, want %d", n, got, meshKinds*n)
		}
		// Same data, same verdicts, values and evidence, rollout by rollout.
		fails := 0
		for i := range rb {
			if !reflect.DeepEqual(rb[i], rp[i]) {
				t.Errorf("%d rollouts, rollout %d: batched %+v\nper rollout %+v", n, i, rb[i], rp[i])
			}
			if rb[i].Verdict == v1alpha1.VerdictFail {
				fails++
			}
		}
		if fails != n/2 {
			t.Errorf("%d rollouts: %d failed, want the %d with bad candidates", n, fails, n/2)
		}
		t.Logf("%3d rollouts: %d queries batched, %d per rollout", n, batched.total(), perRollout.total())
	}
}

func TestBatchingBuckets(t *testing.T) {
	m := newMesh(3)
	e, err := NewEngine(EngineConfig{Provider: m, BatchQuantum: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(100000, 0) // a multiple of 5s
	start := now.Add(-5 * time.Minute)
	analyzeAll(t, e, meshRequests(m, start, now))
	// Within the same quantum, with steps whose evidence starts at the same
	// boundary: the cache answers.
	analyzeAll(t, e, meshRequests(m, start.Add(-3*time.Second), now.Add(4*time.Second)))
	if got := m.total(); got != meshKinds {
		t.Errorf("same buckets: %d queries, want %d", got, meshKinds)
	}
	// Another window bucket (a step that started 20s earlier) is another
	// query; so is the next quantum.
	analyzeAll(t, e, meshRequests(m, start.Add(-20*time.Second), now))
	analyzeAll(t, e, meshRequests(m, start, now.Add(10*time.Second)))
	if got := m.total(); got != 3*meshKinds {
		t.Errorf("new buckets: %d queries, want %d", got, 3*meshKinds)
	}
	for q := range m.calls {
		if !strings.Contains(q, "[300s]") && !strings.Contains(q, "[320s]") && !strings.Contains(q, "[310s]") {
			t.Errorf("window not quantized to 5s: %s", q)
		}
	}
	// A step whose evidence window is younger than one quantum runs per
	// rollout (with the exact window from its evidence start), since a
	// batched window would be empty or reach into the previous step.
	before := m.total()
	r := meshRequests(m, now.Add(-3*time.Second), now.Add(4*time.Second))[:1]
	analyzeAll(t, e, r)
	if got := m.total() - before; got != meshKinds {
		t.Errorf("young step: %d queries, want %d per-rollout ones", got, meshKinds)
	}
	for q := range m.calls {
		if strings.Contains(q, "[4s]") && !strings.Contains(q, `destination_service_name="svc-0"`) {
			t.Errorf("young step's query is not per rollout: %s", q)
		}
	}
}

// Every look of a step reads a window from the same start, batched or not,
// so the looks see one growing set of requests.
func TestLooksOfAStepShareTheirStart(t *testing.T) {
	m := newMesh(1)
	e, err := NewEngine(EngineConfig{Provider: m, BatchQuantum: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b := time.Unix(100000, 0)
	start := b.Add(300 * time.Millisecond) // advanced by a look just after b
	for _, at := range []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second} {
		now := b.Add(at + 200*time.Millisecond)
		analyzeAll(t, e, meshRequests(m, start, now))
	}
	for q := range m.calls {
		ok := false
		for _, w := range []string{"[5s]", "[10s]", "[15s]"} {
			ok = ok || strings.Contains(q, w)
		}
		if !ok {
			t.Errorf("a look's window does not start at the step's boundary: %s", q)
		}
	}
}

func TestBatchWindow(t *testing.T) {
	q := 5 * time.Second
	base := time.Unix(1000, 0)
	for _, tc := range []struct {
		start, now time.Duration // from base
		at, window time.Duration
		ok         bool
	}{
		{0, 62 * time.Second, 60 * time.Second, 60 * time.Second, true},
		{3 * time.Second, 62 * time.Second, 60 * time.Second, 55 * time.Second, true}, // never before the step's start
		{0, 4 * time.Second, 0, 0, false},
		{1 * time.Second, 9 * time.Second, 5 * time.Second, 0, false},
	} {
		at, w, ok := batchWindow(base.Add(tc.start), base.Add(tc.now), q)
		if !at.Equal(base.Add(tc.at)) || w != tc.window || ok != tc.ok {
			t.Errorf("start %v now %v: at %v window %v ok %v; want %v %v %v", tc.start, tc.now, at.Sub(base), w, ok, tc.at, tc.window, tc.ok)
		}
		if ok && at.Add(-w).Before(base.Add(tc.start)) {
			t.Errorf("start %v now %v: window reaches before the step", tc.start, tc.now)
		}
	}
	if _, err := NewEngine(EngineConfig{Provider: newMesh(1), BatchQuantum: 1500 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "BatchQuantum") {
		t.Errorf("fractional quantum: %v", err)
	}
}

func TestBatchingErrorsAreShared(t *testing.T) {
	down := &fakeProvider{calls: map[string]int{}, answers: func(q string) ([]provider.Sample, error) {
		return nil, &provider.QueryError{Kind: provider.ErrUnreachable, Query: q}
	}}
	e, err := NewEngine(EngineConfig{Provider: down})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(100000, 0)
	rounds := analyzeAll(t, e, meshRequests(newMesh(4), now.Add(-time.Minute), now))
	for _, r := range rounds {
		if r.Verdict != v1alpha1.VerdictError {
			t.Errorf("provider down: %s, want Error", r.Verdict)
		}
	}
	// A failure is not cached: the next round asks again.
	n := len(down.calls)
	analyzeAll(t, e, meshRequests(newMesh(1), now.Add(-time.Minute), now))
	again := 0
	for _, c := range down.calls {
		again += c
	}
	if n == 0 || again <= n {
		t.Errorf("failed queries cached: %d distinct, %d calls after a retry", n, again)
	}
}

// BenchmarkQueriesPerRound reports queries per analysis round of every
// rollout in the mesh (4 metrics on 3 built-in templates each), batched
// and per rollout.
func BenchmarkQueriesPerRound(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		for _, batched := range []bool{true, false} {
			b.Run(fmt.Sprintf("rollouts=%d/batched=%v", n, batched), func(b *testing.B) {
				m := newMesh(n)
				e, err := NewEngine(EngineConfig{Provider: m, DisableBatching: !batched})
				if err != nil {
					b.Fatal(err)
				}
				now := time.Unix(100000, 0)
				rounds := 0
				for b.Loop() {
					now = now.Add(DefaultBatchQuantum) // a new round
					analyzeAll(b, e, meshRequests(m, now.Add(-5*time.Minute), now))
					rounds++
				}
				b.ReportMetric(float64(m.total())/float64(rounds), "queries/round")
			})
		}
	}
}

// TestConsecutiveRoundsNeverShareABucket: with rounds every 2s and a 5s
// quantum, a cached answer would let one observation count as two rounds
// (two "consecutive" failures from one look). The quantum shrinks to the
// look period (here the 2s interval), so each round issues its own queries.
func TestConsecutiveRoundsNeverShareABucket(t *testing.T) {
	m := newMesh(1)
	e, err := NewEngine(EngineConfig{Provider: m, BatchQuantum: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(100000, 0)
	start := now.Add(-time.Minute)
	round := func(at time.Time) {
		reqs := meshRequests(m, start, at)
		for i := range reqs {
			reqs[i].Spec.Interval = metav1.Duration{Duration: 2 * time.Second}
		}
		analyzeAll(t, e, reqs)
	}
	round(now)
	round(now.Add(2 * time.Second))
	if got := m.total(); got != 2*meshKinds {
		t.Fatalf("two rounds 2s apart: %d queries, want %d (no answer reused across rounds)", got, 2*meshKinds)
	}
}
