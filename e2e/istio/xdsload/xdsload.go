// Package xdsload sends requests to a model through gRPC's proxyless xDS
// client, bootstrapped against istiod: the client learns listeners, routes
// (with the VirtualService's weights), clusters and endpoints from istiod and
// picks the version of each request itself, as an Envoy sidecar would. No
// stand-in decides where a request goes.
//
// Every connection the client opens to a model goes through a dialer that
// accepts loopback addresses only; any other address (a kwok pod's 10.x
// address, say) is refused and recorded, and Refused reports it.
package xdsload

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"

	"github.com/fulcrum-ml/fulcrum/e2e/dataplane"
	"github.com/fulcrum-ml/fulcrum/e2e/istio/grpcmodel"
)

// Config is one load generator.
type Config struct {
	// XDSAddr is istiod's plaintext xDS server (host:port).
	XDSAddr string
	// Namespace the client runs in (istiod scopes its config by it).
	Namespace string
	// Host and Port of the model's Service: the client dials
	// xds:///HOST:PORT.
	Host string
	Port int
	// Model and ModelNamespace label the source-reported metrics.
	Model, ModelNamespace string
	// Rate in requests per second; Duration bounds the run (it stops on
	// its own).
	Rate     float64
	Duration time.Duration
	// Registry receives istio_requests_total and
	// istio_request_duration_milliseconds with reporter="source"; none when
	// nil.
	Registry prometheus.Registerer
}

// Answer is one request's outcome.
type Answer struct {
	At      time.Time
	Version string // "" when no version answered
	Code    codes.Code
}

// Generator is a running load generator.
type Generator struct {
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	answers []Answer
	refused []string
	dialed  map[string]bool
	m       *sourceMetrics
}

// maxAnswers bounds the kept answers (about an hour at 200 rps).
const maxAnswers = 1 << 20

// payload is one KServe v2 inference request with one row.
var payload = []byte(`{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[0.1,0.2,0.3,0.4]}]}`)

// Bootstrap is the gRPC xDS bootstrap for a proxyless client in namespace
// that talks to istiod at xdsAddr over plaintext, the way istio-agent writes
// it for a pod with the grpc-agent template (GENERATOR=grpc makes istiod
// send gRPC-shaped resources).
func Bootstrap(xdsAddr, namespace string) ([]byte, error) {
	return json.Marshal(map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      xdsAddr,
			"channel_creds":   []any{map[string]any{"type": "insecure"}},
			"server_features": []any{"xds_v3"},
		}},
		"node": map[string]any{
			"id": "sidecar~127.0.0.1~loadgen." + namespace + "~" + namespace + ".svc.cluster.local",
			"metadata": map[string]any{
				"GENERATOR":     "grpc",
				"NAMESPACE":     namespace,
				"CLUSTER_ID":    "Kubernetes",
				"ISTIO_VERSION": "1.31.0",
				"LABELS":        map[string]any{"app": "loadgen"},
			},
		},
	})
}

// Start dials the model through xDS and sends Rate requests per second
// until Duration passes, ctx ends or Stop is called.
func Start(ctx context.Context, cfg Config) (*Generator, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return nil, fmt.Errorf("xdsload: Rate and Duration must be positive")
	}
	boot, err := Bootstrap(cfg.XDSAddr, cfg.Namespace)
	if err != nil {
		return nil, err
	}
	res, err := xds.NewXDSResolverWithConfigForTesting(boot)
	if err != nil {
		return nil, fmt.Errorf("xds resolver: %w", err)
	}
	g := &Generator{done: make(chan struct{}), dialed: map[string]bool{}}
	if cfg.Registry != nil {
		if g.m, err = newSourceMetrics(cfg.Registry, cfg); err != nil {
			return nil, err
		}
	}
	target := fmt.Sprintf("xds:///%s:%d", cfg.Host, cfg.Port)
	g.conn, err = grpc.NewClient(target,
		grpc.WithResolvers(res),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(g.dialLoopback),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(grpcmodel.Codec{})),
	)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	ctx, g.cancel = context.WithTimeout(ctx, cfg.Duration)
	go g.run(ctx, cfg.Rate)
	return g, nil
}

// dialLoopback opens model connections on loopback addresses only.
func (g *Generator) dialLoopback(ctx context.Context, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	g.mu.Lock()
	if err != nil || ip == nil || !ip.IsLoopback() {
		g.refused = append(g.refused, addr)
		g.mu.Unlock()
		return nil, fmt.Errorf("xdsload dials loopback only; refused %s", addr)
	}
	g.dialed[addr] = true
	g.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

func (g *Generator) run(ctx context.Context, rate float64) {
	defer close(g.done)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	sem := make(chan struct{}, 64) // bounded in flight; a tick with none free is skipped
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			g.one(ctx)
		}()
	}
}

func (g *Generator) one(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	var header metadata.MD
	var out []byte
	in := payload
	err := g.conn.Invoke(ctx, grpcmodel.Method, &in, &out, grpc.Header(&header))
	if ctx.Err() != nil && status.Code(err) == codes.Canceled {
		return // the run ended; not an answer
	}
	a := Answer{At: time.Now(), Code: status.Code(err)}
	if v := header.Get(grpcmodel.VersionKey); len(v) > 0 {
		a.Version = v[0]
	}
	g.mu.Lock()
	if len(g.answers) < maxAnswers {
		g.answers = append(g.answers, a)
	}
	g.mu.Unlock()
	if g.m != nil {
		g.m.observe(a, time.Since(start))
	}
}

// Answers are the answers received at or after since.
func (g *Generator) Answers(since time.Time) []Answer {
	g.mu.Lock()
	defer g.mu.Unlock()
	i, _ := slices.BinarySearchFunc(g.answers, since, func(a Answer, t time.Time) int { return a.At.Compare(t) })
	return slices.Clone(g.answers[i:])
}

// Refused are the non-loopback addresses the client tried to dial.
func (g *Generator) Refused() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.refused)
}

// Dialed are the addresses the client connected to.
func (g *Generator) Dialed() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for a := range g.dialed {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Stop ends the run and waits for requests in flight.
func (g *Generator) Stop() {
	g.cancel()
	<-g.done
	g.conn.Close()
}

type sourceMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	base     prometheus.Labels
}

func newSourceMetrics(reg prometheus.Registerer, cfg Config) (*sourceMetrics, error) {
	names := dataplane.IstioLabels()
	m := &sourceMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: dataplane.RequestsTotalMetric,
			Help: "Requests sent by the proxyless gRPC load generator, as Istio's source sidecar reports them."}, names),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: dataplane.RequestDurationMetric,
			Help: "Request durations in milliseconds, as Istio's source sidecar reports them.", Buckets: dataplane.IstioDurationBuckets}, names),
		base: prometheus.Labels{},
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, n := range names {
		m.base[n] = "unknown"
	}
	for k, v := range map[string]string{
		"reporter": "source", "source_workload": "loadgen", "source_workload_namespace": cfg.Namespace,
		"source_app": "loadgen", "source_canonical_service": "loadgen", "source_canonical_revision": "latest",
		"source_cluster": dataplane.DefaultCluster, "destination_service": cfg.Host,
		"destination_service_name": cfg.Model, "destination_service_namespace": cfg.ModelNamespace,
		"destination_cluster": dataplane.DefaultCluster, "request_protocol": "grpc", "response_code": "200",
		"response_flags": "-",
	} {
		m.base[k] = v
	}
	return m, nil
}

func (m *sourceMetrics) observe(a Answer, elapsed time.Duration) {
	l := prometheus.Labels{}
	for k, v := range m.base {
		l[k] = v
	}
	if a.Version != "" {
		l["destination_version"] = a.Version
		l["destination_workload"] = l["destination_service_name"] + "-" + a.Version
		l["destination_canonical_revision"] = a.Version
	}
	if a.Code == codes.Unavailable && a.Version == "" {
		l["response_code"] = "0" // no upstream answered, as Envoy reports it
	}
	l["grpc_response_status"] = fmt.Sprint(int(a.Code))
	m.requests.With(l).Inc()
	m.duration.With(l).Observe(float64(elapsed) / float64(time.Millisecond))
}
