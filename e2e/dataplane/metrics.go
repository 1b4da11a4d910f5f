package dataplane

import (
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Istio's standard metric names.
const (
	RequestsTotalMetric   = "istio_requests_total"
	RequestDurationMetric = "istio_request_duration_milliseconds"
)

// IstioDurationBuckets are Istio's default buckets for request durations in
// milliseconds.
var IstioDurationBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// istioLabels are the labels Istio's standard HTTP metrics carry, in the
// order observe fills them.
var istioLabels = []string{
	"reporter",
	"source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version",
	"source_canonical_service", "source_canonical_revision", "source_cluster",
	"destination_workload", "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
	"destination_service", "destination_service_name", "destination_service_namespace",
	"destination_canonical_service", "destination_canonical_revision", "destination_cluster",
	"request_protocol", "response_code", "grpc_response_status", "response_flags", "connection_security_policy",
}

// IstioLabels are the label names of Istio's standard HTTP metrics, for
// other stand-ins that report them (the real-Istio suite's gRPC servers).
func IstioLabels() []string { return slices.Clone(istioLabels) }

// Source describes the calling workload in source_* labels. Istio reports
// "unknown" for callers outside the mesh, which is the default here.
type Source struct {
	Workload, Namespace, App, Version   string
	CanonicalService, CanonicalRevision string
	Principal                           string
	// Labels are matched by sourceLabels in VirtualService matches.
	Labels map[string]string
}

// DefaultCluster is the cluster name Istio reports without multicluster
// configuration.
const DefaultCluster = "Kubernetes"

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	source   []string // source label values, fixed per proxy
}

func newMetrics(reg prometheus.Registerer, src Source) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: RequestsTotalMetric,
			Help: "Requests handled by the data-plane stand-in, labelled as Istio's standard metric.",
		}, istioLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    RequestDurationMetric,
			Help:    "Request durations in milliseconds, labelled as Istio's standard metric.",
			Buckets: IstioDurationBuckets,
		}, istioLabels),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	or := func(v string) string {
		if v == "" {
			return unknown
		}
		return v
	}
	m.source = []string{
		or(src.Workload), or(src.Namespace), or(src.Principal), or(src.App), or(src.Version),
		or(first(src.CanonicalService, src.Workload)), or(first(src.CanonicalRevision, src.Version, "latest")), DefaultCluster,
	}
	return m, nil
}

// observe records one request as the given reporter saw it. b is nil when
// the request never reached a backend; destination labels are then
// "unknown", as Envoy reports them. A gRPC call has request_protocol "grpc"
// and its status in grpc_response_status.
func (m *metrics) observe(reporter string, d *Decision, b *Backend, out outcome, grpc bool, elapsed time.Duration) {
	vals := make([]string, 0, len(istioLabels))
	vals = append(vals, reporter)
	vals = append(vals, m.source...)
	if b == nil {
		b = &Backend{Workload: unknown, WorkloadNamespace: unknown, App: unknown, Version: unknown, CanonicalService: unknown, CanonicalRevision: unknown}
	}
	svcName, svcNS, svcHost := d.Target.Service.Name, d.Target.Service.Namespace, d.Target.Host
	if svcHost == "" {
		svcHost = d.Host
	}
	if svcName == "" {
		svcName, svcNS = unknown, unknown
	}
	if svcHost == "" {
		svcHost = unknown
	}
	proto := "http"
	if grpc {
		proto = "grpc"
	}
	policy := "none"
	if reporter == "source" {
		policy = unknown
	}
	vals = append(vals,
		b.Workload, b.WorkloadNamespace, unknown, b.App, b.Version,
		svcHost, svcName, svcNS,
		b.CanonicalService, b.CanonicalRevision, DefaultCluster,
		proto, strconv.Itoa(out.code), out.grpcStatus, out.flag, policy,
	)
	m.requests.WithLabelValues(vals...).Inc()
	m.duration.WithLabelValues(vals...).Observe(float64(elapsed) / float64(time.Millisecond))
}
