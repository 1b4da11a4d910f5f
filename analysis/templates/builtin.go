package templates

import (
	"fmt"
	"strings"
)

// Istio's standard metrics, as reported by the destination's sidecar.
// reporter!="source" also matches series without a reporter label, and
// keeps client- and server-side reports from being counted twice.
const istioSel = `reporter!="source",destination_service_namespace="{{.Namespace}}",destination_service_name="{{.Service}}",destination_version=~"{{.SubsetRegex}}"`

// gatewaySel selects Istio's standard metrics for a model routed by a
// Gateway API route, where each version is its own Service: Istio's
// ambient waypoints (and sidecars) report destination_service_name as the
// backendRef's Service, so that label tells the versions apart and
// .SubsetRegex matches the version Services (fraud-v1|fraud-v2).
const gatewaySel = `reporter!="source",destination_service_namespace="{{.Namespace}}",destination_service_name=~"{{.SubsetRegex}}"`

// Triton, KServe and model-score series carry the subset in a "version"
// label, which the scrape configuration copies from the pod's version label
// (Triton's own model-version label then becomes exported_version).
const (
	tritonSel = `namespace="{{.Namespace}}",model="{{.Service}}",version=~"{{.SubsetRegex}}"`
	kserveSel = `namespace="{{.Namespace}}",model_name="{{.Service}}",version=~"{{.SubsetRegex}}"`
	scoreSel  = `namespace="{{.Namespace}}",model="{{.Service}}",version=~"{{.SubsetRegex}}"`
)

// Identity labels of the batched forms: the labels that name a rollout's
// namespace and service in each family's series.
var (
	istioIdentity  = [2]string{"destination_service_namespace", "destination_service_name"}
	tritonIdentity = [2]string{"namespace", "model"}
	kserveIdentity = [2]string{"namespace", "model_name"}
	scoreIdentity  = [2]string{"namespace", "model"}
)

// GRPCServerErrorCodes are the gRPC status codes the Istio error-rate
// template counts as errors, as a regular expression on
// grpc_response_status.
const GRPCServerErrorCodes = "2|4|12|13|14|15"

// PredictionScoreMetric is the histogram of model scores that the drift
// templates expect each model server to export.
const PredictionScoreMetric = "model_prediction_score"

// KServeLatencyMetric is the KServe model server's prediction latency
// histogram (seconds), labelled model_name.
const KServeLatencyMetric = "request_predict_seconds"

// family is one metric family's selector and grouping, per rollout or
// batched across rollouts.
type family struct {
	sel string
	// by prefixes every grouping: "" per rollout, the identity labels
	// ("namespace, model, ") batched.
	by       string
	identity [2]string
}

func (f family) sumBy(label, expr string) string {
	return fmt.Sprintf("sum by (%s%s) (%s)", f.by, label, expr)
}

func (f family) increase(metric string, extra ...string) string {
	return fmt.Sprintf("increase(%s{%s}[{{.Window}}])", metric, f.join(extra))
}

func (f family) rate(metric string) string {
	return fmt.Sprintf("rate(%s{%s}[{{.Window}}])", metric, f.sel)
}

func (f family) join(extra []string) string {
	parts := []string{}
	if f.sel != "" {
		parts = append(parts, f.sel)
	}
	return strings.Join(append(parts, extra...), ",")
}

// orZero makes a missing series for a version read as 0 where another
// expression proves the version served requests.
func orZero(expr, base string) string {
	return fmt.Sprintf("(%s or (%s * 0))", expr, base)
}

// families returns the per-rollout or the batched selectors. The batched
// ones drop the namespace, service and subset matchers and group by the
// identity labels instead, so one query returns every (namespace, service,
// version) in the mesh and the engine picks each rollout's rows.
func families(batched bool) (istio, triton, kserve, score family) {
	if !batched {
		return family{sel: istioSel}, family{sel: tritonSel}, family{sel: kserveSel}, family{sel: scoreSel}
	}
	by := func(id [2]string) string { return id[0] + ", " + id[1] + ", " }
	return family{sel: `reporter!="source"`, by: by(istioIdentity), identity: istioIdentity},
		family{by: by(tritonIdentity), identity: tritonIdentity},
		family{by: by(kserveIdentity), identity: kserveIdentity},
		family{by: by(scoreIdentity), identity: scoreIdentity}
}

// buildBuiltins builds every built-in template in one form. The PromQL is
// the same in both forms but for the selectors and groupings, so batched
// and per-rollout results agree row for row.
func buildBuiltins(batched bool) map[string]Template {
	istio, triton, kserve, score := families(batched)
	const v = "destination_version"
	reqs := istio.sumBy(v, istio.increase("istio_requests_total"))
	// A failed gRPC call is answered with HTTP 200: Istio reports its
	// status in grpc_response_status. The codes counted are those whose
	// HTTP mapping is a 5xx (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED,
	// INTERNAL, UNAVAILABLE, DATA_LOSS). `or` keeps a series matched by both
	// selectors once.
	errs := istio.sumBy(v, istio.increase("istio_requests_total", `response_code=~"5.."`)+
		" or "+istio.increase("istio_requests_total", `grpc_response_status=~"`+GRPCServerErrorCodes+`"`))
	latBuckets := istio.sumBy(v+", le", istio.increase("istio_request_duration_milliseconds_bucket"))
	latCount := istio.sumBy(v, istio.increase("istio_request_duration_milliseconds_count"))
	m := map[string]Template{
		"istio-request-count": {Query: reqs, SampleQuery: reqs, VersionLabel: v, Unit: "requests", identity: istio.identity},
		"istio-error-rate": {
			Query:        orZero(errs, reqs) + " / " + reqs,
			SampleQuery:  reqs,
			BadQuery:     errs,
			VersionLabel: v, Unit: "ratio", identity: istio.identity,
		},
	}
	for _, q := range []struct {
		name string
		q    string
	}{{"istio-latency-p50", "0.5"}, {"istio-latency-p90", "0.9"}, {"istio-latency-p99", "0.99"}} {
		m[q.name] = Template{
			Query: fmt.Sprintf("histogram_quantile(%s, %s)", q.q,
				istio.sumBy(v+", le", istio.rate("istio_request_duration_milliseconds_bucket"))),
			SampleQuery:    latCount,
			HistogramQuery: latBuckets,
			VersionLabel:   v, Unit: "ms", identity: istio.identity,
		}
	}
	const tv = "version"
	tOK := triton.sumBy(tv, triton.increase("nv_inference_request_success"))
	tFail := orZero(triton.sumBy(tv, triton.increase("nv_inference_request_failure")), tOK)
	tAll := fmt.Sprintf("(%s + %s)", tOK, tFail)
	m["triton-error-rate"] = Template{Query: tFail + " / " + tAll, SampleQuery: tAll, BadQuery: tFail, VersionLabel: tv, Unit: "ratio", identity: triton.identity}
	m["triton-latency-mean"] = Template{
		Query:       fmt.Sprintf("%s / %s / 1000", triton.sumBy(tv, triton.increase("nv_inference_request_duration_us")), tOK),
		SampleQuery: tOK, VersionLabel: tv, Unit: "ms", identity: triton.identity,
	}
	m["kserve-latency"] = Template{
		Query: fmt.Sprintf("1000 * histogram_quantile(0.99, %s)",
			kserve.sumBy(tv+", le", kserve.rate(KServeLatencyMetric+"_bucket"))),
		SampleQuery:    kserve.sumBy(tv, kserve.increase(KServeLatencyMetric+"_count")),
		HistogramQuery: kserve.sumBy(tv+", le", kserve.increase(KServeLatencyMetric+"_bucket")),
		HistogramScale: 1000,
		VersionLabel:   tv, Unit: "ms", identity: kserve.identity,
	}
	s := Template{
		SampleQuery:        score.sumBy(tv, score.increase(PredictionScoreMetric+"_count")),
		HistogramQuery:     score.sumBy(tv+", le", score.increase(PredictionScoreMetric+"_bucket")),
		ValueFromHistogram: true,
		VersionLabel:       tv, Unit: "psi", identity: score.identity,
	}
	m["prediction-psi"] = s
	m["prediction-drift"] = s
	if !batched {
		// Per rollout only: the batched form groups by a service label
		// apart from the version, and here the two are one label.
		addGatewayTemplates(m)
	}
	for name, t := range m {
		t.Name, t.builtin = name, true
		m[name] = t
	}
	return m
}

// addGatewayTemplates adds the gateway-* templates: Istio's standard
// metrics for Gateway API routes, versions told apart by
// destination_service_name (see gatewaySel).
func addGatewayTemplates(m map[string]Template) {
	g := family{sel: gatewaySel}
	const v = "destination_service_name"
	reqs := g.sumBy(v, g.increase("istio_requests_total"))
	errs := g.sumBy(v, g.increase("istio_requests_total", `response_code=~"5.."`)+
		" or "+g.increase("istio_requests_total", `grpc_response_status=~"`+GRPCServerErrorCodes+`"`))
	m["gateway-request-count"] = Template{Query: reqs, SampleQuery: reqs, VersionLabel: v, Unit: "requests"}
	m["gateway-error-rate"] = Template{Query: orZero(errs, reqs) + " / " + reqs, SampleQuery: reqs, BadQuery: errs, VersionLabel: v, Unit: "ratio"}
	latBuckets := g.sumBy(v+", le", g.increase("istio_request_duration_milliseconds_bucket"))
	latCount := g.sumBy(v, g.increase("istio_request_duration_milliseconds_count"))
	for _, q := range []struct{ name, q string }{{"gateway-latency-p50", "0.5"}, {"gateway-latency-p90", "0.9"}, {"gateway-latency-p99", "0.99"}} {
		m[q.name] = Template{
			Query:       fmt.Sprintf("histogram_quantile(%s, %s)", q.q, g.sumBy(v+", le", g.rate("istio_request_duration_milliseconds_bucket"))),
			SampleQuery: latCount, HistogramQuery: latBuckets, VersionLabel: v, Unit: "ms",
		}
	}
}

var builtins = func() map[string]Template {
	m := buildBuiltins(false)
	batched := buildBuiltins(true)
	for name, t := range m {
		b, ok := batched[name]
		if !ok {
			// Per rollout only (gateway-*): Istio's namespace label.
			t.NamespaceLabel = istioIdentity[0]
			m[name] = t
			continue
		}
		t.Batched = &b
		// The per-rollout form is confined to the rollout's namespace by
		// the label its family names namespaces with.
		t.NamespaceLabel = b.identity[0]
		m[name] = t
	}
	return m
}()
