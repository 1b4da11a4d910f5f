package dataplane

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/utils/clock"
)

// Config tunes a Proxy. The zero value works.
type Config struct {
	// Namespace expands short request hosts ("fraud" → fraud.NS.svc.cluster.local);
	// "default" when empty.
	Namespace string
	// Seed makes weighted and mirror draws reproducible; 0 seeds from crypto/rand.
	Seed uint64
	// Source fills the source_* labels and sourceLabels matches.
	Source Source
	// Reporters lists the reporter label values each request is recorded
	// under: "destination" (the default, what Fulcrum's templates select),
	// "source", or both as with sidecars on both ends.
	Reporters []string
	// Registry receives the Istio metrics; a fresh one when nil.
	Registry *prometheus.Registry
	// Transport forwards requests; a pooled loopback transport when nil.
	Transport http.RoundTripper
	// GRPCTransport forwards gRPC calls; HTTP/2 without TLS (h2c) when nil.
	GRPCTransport http.RoundTripper
	// Clock measures durations; the real clock when nil.
	Clock clock.PassiveClock
	// MaxMirrorsInFlight bounds fire-and-forget mirror requests; more are
	// dropped (64 when zero). MirrorTimeout bounds each (10s when zero).
	MaxMirrorsInFlight int
	MirrorTimeout      time.Duration
	// MaxBodyBytes is the largest request body copied for mirrors (8 MiB
	// when zero); larger requests are forwarded but not mirrored.
	MaxBodyBytes int64
}

// Proxy routes requests by the current Table and forwards them.
type Proxy struct {
	cfg       Config
	table     atomic.Pointer[Table]
	metrics   *metrics
	registry  *prometheus.Registry
	transport http.RoundTripper
	grpc      http.RoundTripper
	clock     clock.PassiveClock

	rmu sync.Mutex
	rnd *rand.Rand

	mirrorSem chan struct{}
	mirrors   sync.WaitGroup
	dropped   atomic.Int64
}

// New returns a Proxy with an empty Table (every request answers 404 NR)
// until SetTable or Watch gives it one.
func New(cfg Config) (*Proxy, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if len(cfg.Reporters) == 0 {
		cfg.Reporters = []string{"destination"}
	}
	for _, r := range cfg.Reporters {
		if r != "destination" && r != "source" {
			return nil, fmt.Errorf("dataplane config: Reporters has %q; use \"destination\" and/or \"source\"", r)
		}
	}
	if cfg.MaxMirrorsInFlight <= 0 {
		cfg.MaxMirrorsInFlight = 64
	}
	if cfg.MirrorTimeout <= 0 {
		cfg.MirrorTimeout = 10 * time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 8 << 20
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		if _, err := crand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("seed proxy random source: %w", err)
		}
		seed = binary.LittleEndian.Uint64(b[:])
	}
	p := &Proxy{
		cfg:       cfg,
		registry:  cfg.Registry,
		transport: cfg.Transport,
		grpc:      cfg.GRPCTransport,
		clock:     cfg.Clock,
		rnd:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		mirrorSem: make(chan struct{}, cfg.MaxMirrorsInFlight),
	}
	if p.registry == nil {
		p.registry = prometheus.NewRegistry()
	}
	if p.transport == nil {
		p.transport = &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	if p.grpc == nil {
		p.grpc = newH2CTransport()
	}
	if p.clock == nil {
		p.clock = clock.RealClock{}
	}
	m, err := newMetrics(p.registry, cfg.Source)
	if err != nil {
		return nil, fmt.Errorf("register dataplane metrics: %w", err)
	}
	p.metrics = m
	p.table.Store(Build(Snapshot{}))
	return p, nil
}

// SetTable replaces the routing table; requests already routed finish on
// the old one.
func (p *Proxy) SetTable(t *Table) { p.table.Store(t) }

// Table is the routing table in force.
func (p *Proxy) Table() *Table { return p.table.Load() }

// MetricsHandler serves the Istio metrics for Prometheus.
func (p *Proxy) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{})
}

// MirrorsDropped counts mirror copies dropped because too many were in flight.
func (p *Proxy) MirrorsDropped() int64 { return p.dropped.Load() }

// Wait blocks until in-flight mirror requests have finished.
func (p *Proxy) Wait() { p.mirrors.Wait() }

// lockedRand serialises draws from the proxy's one seeded source.
type lockedRand struct{ p *Proxy }

func (l lockedRand) IntN(n int) int {
	l.p.rmu.Lock()
	defer l.p.rmu.Unlock()
	return l.p.rnd.IntN(n)
}

func (l lockedRand) Float64() float64 {
	l.p.rmu.Lock()
	defer l.p.rmu.Unlock()
	return l.p.rnd.Float64()
}

// Handler serves requests for host (expanded with FQDN relative to the
// proxy's namespace), or for each request's Host header when host is empty.
// port is matched by VirtualService port matches (0 when unknown).
func (p *Proxy) Handler(host string, port uint32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := p.clock.Now()
		req := p.request(r, host, port)
		d := p.Table().Route(req, lockedRand{p})
		// Envoy finalises the request headers before it copies them to
		// mirrors, so shadows see the rewritten headers too.
		d.Headers.ApplyRequest(r.Header)
		var body []byte
		if len(d.Mirrors) > 0 && r.Body != nil && r.Body != http.NoBody {
			b, err := io.ReadAll(io.LimitReader(r.Body, p.cfg.MaxBodyBytes+1))
			if err != nil {
				http.Error(w, "read request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			if int64(len(b)) > p.cfg.MaxBodyBytes {
				d.Mirrors = nil // too big to copy; forward the rest as a stream
				r.Body = struct {
					io.Reader
					io.Closer
				}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
			} else {
				body = b
				r.Body = io.NopCloser(bytes.NewReader(b))
			}
		}
		for _, m := range d.Mirrors {
			p.mirror(logr.FromContextOrDiscard(r.Context()), r, req.GRPC, body, &d, m)
		}
		out := p.forward(w, r, req.GRPC, &d)
		for _, rep := range p.cfg.Reporters {
			if rep == "destination" && d.Backend == nil {
				continue // no destination sidecar saw it
			}
			p.metrics.observe(rep, &d, d.Backend, out, req.GRPC, p.clock.Since(start))
		}
	})
}

func (p *Proxy) request(r *http.Request, host string, port uint32) *Request {
	h := host
	if h == "" {
		h = r.Host
	}
	return &Request{
		Host:            FQDN(h, p.cfg.Namespace),
		Authority:       r.Host,
		Method:          r.Method,
		Scheme:          "http",
		Path:            r.URL.Path,
		Query:           r.URL.Query(),
		Header:          r.Header,
		Port:            port,
		SourceNamespace: p.cfg.Source.Namespace,
		SourceLabels:    p.cfg.Source.Labels,
		GRPC:            isGRPC(r),
	}
}

// outcome is how one request ended, for the metrics.
type outcome struct {
	code       int    // HTTP status the client saw
	flag       string // Envoy response flag
	grpcStatus string // gRPC calls only
}

// forward sends r to the decided backend and copies the answer back (a gRPC
// call over h2c, streamed; see grpc.go). It returns how the request ended.
//
// The route's response header operations apply to the proxy's own replies
// as well as to upstream answers: Envoy's router finalises the response
// headers of its local replies (503 UH, 504 UT, ...) whenever a route was
// chosen, so a user drawn to an arm whose pods are gone still gets the
// arm's Set-Cookie.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, grpc bool, d *Decision) outcome {
	reply := func(code int, flag, msg string) outcome {
		d.Headers.ApplyResponse(w.Header())
		if grpc {
			return grpcLocalReply(w, code, flag, msg)
		}
		return localReply(w, code, flag, msg)
	}
	if d.DirectStatus != 0 {
		return reply(d.DirectStatus, FlagNone, "route "+d.HTTPRoute+d.GRPCRoute+" cannot route this request (see the proxy's routing problems)")
	}
	switch d.Flag {
	case FlagNoRoute:
		return reply(http.StatusNotFound, d.Flag, "no route for host "+d.Host)
	case FlagNoCluster:
		return reply(http.StatusServiceUnavailable, d.Flag, "no cluster for "+d.Target.Host+" subset "+d.Target.Subset)
	case FlagNoHealthyUpstream:
		return reply(http.StatusServiceUnavailable, d.Flag, "no healthy upstream")
	}
	ctx := r.Context()
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	out := r.Clone(ctx)
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = "http", d.Backend.Addr
	out.Host = r.Host
	removeHopHeaders(out.Header)
	transport := p.transport
	if grpc {
		transport = p.grpc
		out.Header.Set("Te", "trailers") // gRPC's one allowed hop header
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	resp, err := transport.RoundTrip(out)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return reply(http.StatusGatewayTimeout, FlagUpstreamTimeout, "upstream request timeout")
		}
		return reply(http.StatusServiceUnavailable, FlagUpstreamFailure, "upstream connect error: "+err.Error())
	}
	defer resp.Body.Close()
	removeHopHeaders(resp.Header)
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	d.Headers.ApplyResponse(w.Header())
	w.WriteHeader(resp.StatusCode)
	if grpc {
		err = copyFlushing(w, resp.Body)
	} else {
		_, err = io.Copy(w, resp.Body)
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return outcome{code: http.StatusGatewayTimeout, flag: FlagUpstreamTimeout}
	}
	for k, vs := range resp.Trailer {
		w.Header()[http.TrailerPrefix+k] = vs
	}
	res := outcome{code: resp.StatusCode, flag: FlagNone}
	if grpc {
		res.grpcStatus = grpcStatusOf(resp)
	}
	return res
}

func localReply(w http.ResponseWriter, code int, flag, msg string) outcome {
	w.Header().Set("x-envoy-response-flags", flag)
	http.Error(w, msg, code)
	return outcome{code: code, flag: flag}
}

// mirror sends a copy of r to m without waiting, as Envoy's shadowing does
// (Host gets a "-shadow" suffix). The destination reporter records it;
// the client never sees its answer.
func (p *Proxy) mirror(log logr.Logger, r *http.Request, grpc bool, body []byte, d *Decision, m MirrorDecision) {
	select {
	case p.mirrorSem <- struct{}{}:
	default:
		p.dropped.Add(1)
		return
	}
	out := r.Clone(context.Background())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = "http", m.Backend.Addr
	out.Host = stripPort(r.Host) + "-shadow"
	removeHopHeaders(out.Header)
	transport := p.transport
	if grpc {
		transport = p.grpc
		out.Header.Set("Te", "trailers")
	}
	out.Body, out.ContentLength = nil, int64(len(body))
	if len(body) > 0 {
		out.Body = io.NopCloser(bytes.NewReader(body))
	}
	md := Decision{Host: d.Host, VirtualService: d.VirtualService, HTTPRoute: d.HTTPRoute, GRPCRoute: d.GRPCRoute, Route: d.Route, Target: m.Target, Backend: &m.Backend}
	p.mirrors.Add(1)
	go func() {
		defer func() { <-p.mirrorSem; p.mirrors.Done() }()
		start := p.clock.Now()
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.MirrorTimeout)
		defer cancel()
		res := outcome{flag: FlagNone}
		resp, err := transport.RoundTrip(out.WithContext(ctx))
		if err != nil {
			res = outcome{code: http.StatusServiceUnavailable, flag: FlagUpstreamFailure}
			log.V(1).Info("mirror failed", "backend", m.Backend.Addr, "err", err)
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			res.code = resp.StatusCode
			if grpc {
				res.grpcStatus = grpcStatusOf(resp)
			}
		}
		for _, rep := range p.cfg.Reporters {
			if rep == "destination" {
				p.metrics.observe(rep, &md, md.Backend, res, grpc, p.clock.Since(start))
			}
		}
	}()
}

var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// portOf returns the numeric port of a listener address.
func portOf(addr net.Addr) uint32 {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return uint32(ta.Port)
	}
	_, p, err := net.SplitHostPort(addr.String())
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return uint32(n)
}
