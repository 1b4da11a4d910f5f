// Package grpcmodel serves one model version over gRPC on loopback, for
// clients that route by istiod's xDS (gRPC's proxyless client). Each request
// is answered by the version's e2e model server in process, so errors,
// latency and prediction scores follow the same Behavior as on the HTTP
// path, and the model server's own metrics (the drift template's scores)
// stay where Prometheus scrapes them.
//
// There is no sidecar to report Istio's standard metrics on the server side,
// so the front records istio_requests_total and
// istio_request_duration_milliseconds itself, as the destination's sidecar
// would (reporter="destination", Istio's labels, request_protocol="grpc",
// response_code="200" with the gRPC status in grpc_response_status, as
// Envoy reports a gRPC failure), on the model server's registry.
package grpcmodel

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/fulcrum-ml/fulcrum/e2e/dataplane"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
)

// Method is the one RPC a model serves: a KServe v2 inference request,
// JSON-encoded, answered with the inference response.
const Method = "/fulcrum.e2e.Model/Infer"

// VersionKey is the response header that names the version that answered.
const VersionKey = "x-model-version"

// Codec passes messages through as bytes ([]byte or *[]byte): the request and
// response are the model server's JSON, so no generated code is needed.
type Codec struct{}

func (Codec) Name() string { return "raw" }

func (Codec) Marshal(v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case *[]byte:
		return *b, nil
	}
	return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
}

func (Codec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

// Config is one version's gRPC front.
type Config struct {
	// Model is the model (and Service) name, Namespace its namespace.
	Model, Namespace string
	// Server answers the requests; its Version names the version.
	Server *modelserver.Running
	// Version of the model server.
	Version string
	// Addr to listen on, a loopback host:port ("127.0.0.1:0" when empty).
	Addr string
}

// Running is a started front.
type Running struct {
	// Addr is the bound host:port.
	Addr string
	srv  *grpc.Server
}

// Start serves cfg until Stop or ctx ends.
func Start(ctx context.Context, cfg Config) (*Running, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	m, err := newMetrics(cfg.Server.Registry(), cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("grpc model %s listen %s: %w", cfg.Version, cfg.Addr, err)
	}
	r := &Running{Addr: ln.Addr().String()}
	handler := cfg.Server.Handler()
	path := "/v2/models/" + cfg.Model + "/infer"
	r.srv = grpc.NewServer(grpc.ForceServerCodec(Codec{}), grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		start := time.Now()
		method, _ := grpc.MethodFromServerStream(stream)
		code := codes.OK
		defer func() { m.observe(code, time.Since(start)) }()
		if method != Method {
			code = codes.Unimplemented
			return status.Errorf(code, "unknown method %s: this model serves %s", method, Method)
		}
		var in []byte
		if err := stream.RecvMsg(&in); err != nil {
			code = status.Code(err)
			return err
		}
		req := httptest.NewRequestWithContext(stream.Context(), http.MethodPost, path, bytes.NewReader(in))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		_ = stream.SetHeader(metadata.Pairs(VersionKey, cfg.Version))
		if code = codeOf(rec.Code); code != codes.OK {
			return status.Errorf(code, "model answered HTTP %d: %s", rec.Code, bytes.TrimSpace(rec.Body.Bytes()))
		}
		out := rec.Body.Bytes()
		return stream.SendMsg(&out)
	}))
	go func() { _ = r.srv.Serve(ln) }()
	context.AfterFunc(ctx, r.Stop)
	return r, nil
}

// Stop ends the server at once (requests in flight fail, as when a pod
// dies).
func (r *Running) Stop() { r.srv.Stop() }

// codeOf maps the model server's HTTP status to the gRPC status a gRPC model
// server would return.
func codeOf(httpCode int) codes.Code {
	switch {
	case httpCode == http.StatusOK:
		return codes.OK
	case httpCode == http.StatusBadRequest:
		return codes.InvalidArgument
	case httpCode == http.StatusNotFound:
		return codes.NotFound
	case httpCode == 499:
		return codes.Canceled
	default:
		return codes.Internal
	}
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	labels   prometheus.Labels
}

func newMetrics(reg prometheus.Registerer, cfg Config) (*metrics, error) {
	names := dataplane.IstioLabels()
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: dataplane.RequestsTotalMetric,
			Help: "Requests answered by this gRPC model version, as Istio's destination sidecar reports them."}, names),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: dataplane.RequestDurationMetric,
			Help: "Request durations in milliseconds, as Istio's destination sidecar reports them.", Buckets: dataplane.IstioDurationBuckets}, names),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	workload := cfg.Model + "-" + cfg.Version
	m.labels = prometheus.Labels{}
	for _, n := range names {
		m.labels[n] = "unknown"
	}
	for k, v := range map[string]string{
		"reporter": "destination", "source_cluster": dataplane.DefaultCluster,
		"destination_workload": workload, "destination_workload_namespace": cfg.Namespace,
		"destination_app": cfg.Model, "destination_version": cfg.Version,
		"destination_service":           cfg.Model + "." + cfg.Namespace + ".svc.cluster.local",
		"destination_service_name":      cfg.Model,
		"destination_service_namespace": cfg.Namespace,
		"destination_canonical_service": cfg.Model, "destination_canonical_revision": cfg.Version,
		"destination_cluster": dataplane.DefaultCluster, "request_protocol": "grpc",
		"response_flags": "-", "connection_security_policy": "none",
	} {
		m.labels[k] = v
	}
	return m, nil
}

// observe counts one request. Envoy reports a gRPC call's HTTP status (200
// for any answered call) in response_code and its gRPC status in
// grpc_response_status.
func (m *metrics) observe(code codes.Code, elapsed time.Duration) {
	l := prometheus.Labels{}
	for k, v := range m.labels {
		l[k] = v
	}
	l["response_code"] = "200"
	l["grpc_response_status"] = strconv.Itoa(int(code))
	m.requests.With(l).Inc()
	m.duration.With(l).Observe(float64(elapsed) / float64(time.Millisecond))
}
