package alerts_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
)

// exporter serves, in Prometheus's text format, every series the dashboard
// and the rules read, with counters that grow on each scrape so that rate(),
// increase() and histogram_quantile() have something to work on. The label
// names match the controller's and Istio's, so a query with a misspelt label
// finds nothing and the test says so.
type exporter struct{ scrapes atomic.Int64 }

func (e *exporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	n := e.scrapes.Add(1)
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# TYPE fulcrum_rollout_weight gauge")
	p(`fulcrum_rollout_weight{namespace="ml",rollout="fraud",subset="v1"} 75`)
	p(`fulcrum_rollout_weight{namespace="ml",rollout="fraud",subset="v2"} 25`)
	p("# TYPE fulcrum_rollout_phase gauge")
	for _, r := range []struct{ ns, name, phase string }{{"ml", "fraud", "Progressing"}, {"ml", "search", "RolledBack"}, {"team-c", "ocr", "Failed"}, {"team-b", "pricing", "Paused"}} {
		for _, ph := range []string{"Stable", "Progressing", "Paused", "ManualSplit", "Promoted", "RolledBack", "Failed"} {
			v := 0
			if ph == r.phase {
				v = 1
			}
			p(`fulcrum_rollout_phase{namespace=%q,rollout=%q,phase=%q} %d`, r.ns, r.name, ph, v)
		}
	}
	p("# TYPE fulcrum_rollout_ready_pods gauge")
	p(`fulcrum_rollout_ready_pods{namespace="ml",rollout="fraud",subset="v1",role="stable"} 0`)
	p(`fulcrum_rollout_ready_pods{namespace="ml",rollout="fraud",subset="v2",role="candidate"} 2`)
	p("# TYPE fulcrum_analysis_verdicts_total counter")
	p(`fulcrum_analysis_verdicts_total{namespace="ml",rollout="fraud",metric="error-rate",verdict="Inconclusive"} %d`, 2*n)
	p(`fulcrum_analysis_verdicts_total{namespace="ml",rollout="fraud",metric="error-rate",verdict="Pass"} %d`, n/2)
	p(`fulcrum_analysis_verdicts_total{namespace="ml",rollout="fraud",metric="latency-p99",verdict="Pass"} %d`, 3*n)
	p(`fulcrum_analysis_verdicts_total{namespace="ml",rollout="search",metric="error-rate",verdict="Fail"} %d`, n)
	p("# TYPE fulcrum_provider_queries_total counter")
	p(`fulcrum_provider_queries_total{provider="prometheus",result="ok"} %d`, 10*n)
	p(`fulcrum_provider_queries_total{provider="prometheus",result="unreachable"} %d`, n)
	p("# TYPE fulcrum_rollout_duration_seconds histogram")
	for _, o := range []struct {
		outcome string
		secs    float64
	}{{"promoted", 900}, {"rolled_back", 240}} {
		for _, le := range []float64{60, 300, 600, 1800, 3600} {
			c := int64(0)
			if o.secs <= le {
				c = n
			}
			p(`fulcrum_rollout_duration_seconds_bucket{outcome=%q,le="%g"} %d`, o.outcome, le, c)
		}
		p(`fulcrum_rollout_duration_seconds_bucket{outcome=%q,le="+Inf"} %d`, o.outcome, n)
		p(`fulcrum_rollout_duration_seconds_sum{outcome=%q} %g`, o.outcome, o.secs*float64(n))
		p(`fulcrum_rollout_duration_seconds_count{outcome=%q} %d`, o.outcome, n)
	}
	p("# TYPE istio_requests_total counter")
	p("# TYPE istio_request_duration_milliseconds histogram")
	for _, v := range []struct {
		version string
		ok, bad int64
		ms      float64
	}{{"v1", 300, 1, 40}, {"v2", 100, 2, 120}} {
		lbl := fmt.Sprintf(`reporter="destination",destination_service_namespace="ml",destination_service_name="fraud",destination_version=%q`, v.version)
		p(`istio_requests_total{%s,response_code="200"} %d`, lbl, v.ok*n)
		p(`istio_requests_total{%s,response_code="503"} %d`, lbl, v.bad*n)
		total := (v.ok + v.bad) * n
		for _, le := range []float64{25, 50, 100, 250, 500} {
			c := int64(0)
			if v.ms <= le {
				c = total
			}
			p(`istio_request_duration_milliseconds_bucket{%s,le="%g"} %d`, lbl, le, c)
		}
		p(`istio_request_duration_milliseconds_bucket{%s,le="+Inf"} %d`, lbl, total)
		p(`istio_request_duration_milliseconds_sum{%s} %g`, lbl, v.ms*float64(total))
		p(`istio_request_duration_milliseconds_count{%s} %d`, lbl, total)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}
