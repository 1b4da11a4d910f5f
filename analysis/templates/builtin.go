package templates

import "fmt"

// Istio's standard metrics, as reported by the destination's sidecar.
// reporter!="source" also matches series without a reporter label, and
// keeps client- and server-side reports from being counted twice.
const istioSel = `reporter!="source",destination_service_namespace="{{.Namespace}}",destination_service_name="{{.Service}}",destination_version=~"{{.SubsetRegex}}"`

// Triton, KServe and model-score series carry the subset in a "version"
// label, which the scrape configuration copies from the pod's version label
// (Triton's own model-version label then becomes exported_version).
const (
	tritonSel = `namespace="{{.Namespace}}",model="{{.Service}}",version=~"{{.SubsetRegex}}"`
	kserveSel = `namespace="{{.Namespace}}",model_name="{{.Service}}",version=~"{{.SubsetRegex}}"`
	scoreSel  = `namespace="{{.Namespace}}",model="{{.Service}}",version=~"{{.SubsetRegex}}"`
)

// PredictionScoreMetric is the histogram of model scores that the drift
// templates expect each model server to export.
const PredictionScoreMetric = "model_prediction_score"

// KServeLatencyMetric is the KServe model server's prediction latency
// histogram (seconds), labelled model_name.
const KServeLatencyMetric = "request_predict_seconds"

func sumBy(label, expr string) string {
	return fmt.Sprintf("sum by (%s) (%s)", label, expr)
}

func increase(metric, sel string) string {
	return fmt.Sprintf("increase(%s{%s}[{{.Window}}])", metric, sel)
}

// orZero makes a missing series for a version read as 0 where another
// expression proves the version served requests.
func orZero(expr, base string) string {
	return fmt.Sprintf("(%s or (%s * 0))", expr, base)
}

var builtins = func() map[string]Template {
	const v = "destination_version"
	reqs := sumBy(v, increase("istio_requests_total", istioSel))
	errs := sumBy(v, increase("istio_requests_total", istioSel+`,response_code=~"5.."`))
	latBuckets := sumBy(v+", le", increase("istio_request_duration_milliseconds_bucket", istioSel))
	latCount := sumBy(v, increase("istio_request_duration_milliseconds_count", istioSel))
	m := map[string]Template{
		"istio-request-count": {Query: reqs, SampleQuery: reqs, VersionLabel: v, Unit: "requests"},
		"istio-error-rate": {
			Query:        orZero(errs, reqs) + " / " + reqs,
			SampleQuery:  reqs,
			BadQuery:     errs,
			VersionLabel: v, Unit: "ratio",
		},
	}
	for _, q := range []struct {
		name string
		q    string
	}{{"istio-latency-p50", "0.5"}, {"istio-latency-p90", "0.9"}, {"istio-latency-p99", "0.99"}} {
		m[q.name] = Template{
			Query: fmt.Sprintf("histogram_quantile(%s, %s)", q.q,
				sumBy(v+", le", fmt.Sprintf("rate(istio_request_duration_milliseconds_bucket{%s}[{{.Window}}])", istioSel))),
			SampleQuery:    latCount,
			HistogramQuery: latBuckets,
			VersionLabel:   v, Unit: "ms",
		}
	}
	const tv = "version"
	tOK := sumBy(tv, increase("nv_inference_request_success", tritonSel))
	tFail := orZero(sumBy(tv, increase("nv_inference_request_failure", tritonSel)), tOK)
	tAll := fmt.Sprintf("(%s + %s)", tOK, tFail)
	m["triton-error-rate"] = Template{Query: tFail + " / " + tAll, SampleQuery: tAll, BadQuery: tFail, VersionLabel: tv, Unit: "ratio"}
	m["triton-latency-mean"] = Template{
		Query:       fmt.Sprintf("%s / %s / 1000", sumBy(tv, increase("nv_inference_request_duration_us", tritonSel)), tOK),
		SampleQuery: tOK, VersionLabel: tv, Unit: "ms",
	}
	m["kserve-latency"] = Template{
		Query: fmt.Sprintf("1000 * histogram_quantile(0.99, %s)",
			sumBy(tv+", le", fmt.Sprintf("rate(%s_bucket{%s}[{{.Window}}])", KServeLatencyMetric, kserveSel))),
		SampleQuery:    sumBy(tv, increase(KServeLatencyMetric+"_count", kserveSel)),
		HistogramQuery: sumBy(tv+", le", increase(KServeLatencyMetric+"_bucket", kserveSel)),
		HistogramScale: 1000,
		VersionLabel:   tv, Unit: "ms",
	}
	score := Template{
		SampleQuery:        sumBy(tv, increase(PredictionScoreMetric+"_count", scoreSel)),
		HistogramQuery:     sumBy(tv+", le", increase(PredictionScoreMetric+"_bucket", scoreSel)),
		ValueFromHistogram: true,
		VersionLabel:       tv, Unit: "psi",
	}
	m["prediction-psi"] = score
	m["prediction-drift"] = score
	for name, t := range m {
		t.Name = name
		m[name] = t
	}
	return m
}()
