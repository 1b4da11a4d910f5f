package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
)

// TrafficReader reads how much traffic a model serves, for capacity checks
// (spec.readiness.requestsPerPod), and how fast one version answers it, for
// the warm-up gate (spec.readiness.warmup).
type TrafficReader interface {
	// TrafficRate is the requests per second the model's Service answers,
	// all versions together, at now (see TrafficQuery).
	TrafficRate(ctx context.Context, namespace, service string, now time.Time) (float64, error)
	// Warmth is one version's p99 latency in milliseconds (NaN with no
	// requests) and the requests it answered, over window before now (see
	// WarmthQueries).
	Warmth(ctx context.Context, namespace, service, subset string, window time.Duration, now time.Time) (p99, requests float64, err error)
}

// TrafficRate implements TrafficReader with Istio's standard metric, as the
// destinations report it, from the controller's Prometheus. No series is
// no traffic (0); a query that fails is an error, never a guess.
func (e *Engine) TrafficRate(ctx context.Context, namespace, service string, now time.Time) (float64, error) {
	p, err := e.providerFor(ctx, namespace, nil)
	if err != nil {
		return 0, err
	}
	q := TrafficQuery(namespace, service)
	samples, err := p.Query(ctx, q, now)
	if errors.Is(err, provider.ErrNoData) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("traffic rate of %s/%s: %w", namespace, service, err)
	}
	total := 0.0
	for _, s := range samples {
		total += s.Value
	}
	return total, nil
}

// Warmth implements TrafficReader with Istio's standard metrics as the
// destination reports them, so mirrored copies and warm-up requests count
// like users' requests. No series is no requests (p99 NaN, 0 requests).
func (e *Engine) Warmth(ctx context.Context, namespace, service, subset string, window time.Duration, now time.Time) (float64, float64, error) {
	p, err := e.providerFor(ctx, namespace, nil)
	if err != nil {
		return 0, 0, err
	}
	latency, count := WarmthQueries(namespace, service, subset, window)
	scalar := func(q string) (float64, error) {
		samples, err := p.Query(ctx, q, now)
		if errors.Is(err, provider.ErrNoData) || err == nil && len(samples) == 0 {
			return math.NaN(), nil
		}
		if err != nil {
			return 0, fmt.Errorf("warmth of %s/%s subset %s: %w", namespace, service, subset, err)
		}
		return samples[0].Value, nil
	}
	n, err := scalar(count)
	if err != nil {
		return 0, 0, err
	}
	if math.IsNaN(n) || n <= 0 {
		return math.NaN(), 0, nil
	}
	p99, err := scalar(latency)
	if err != nil {
		return 0, 0, err
	}
	return p99, n, nil
}

// WarmthQueries are the PromQL Warmth runs: the p99 of
// istio_request_duration_milliseconds over window, and the requests counted
// in it. The window is written in whole seconds.
func WarmthQueries(namespace, service, subset string, window time.Duration) (latency, count string) {
	sel := fmt.Sprintf(`{reporter!="source",destination_service_namespace="%s",destination_service_name="%s",destination_version="%s"}[%ds]`,
		promEscape(namespace), promEscape(service), promEscape(subset), int64(math.Ceil(window.Seconds())))
	latency = "histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket" + sel + ")))"
	count = "sum(increase(istio_request_duration_milliseconds_count" + sel + "))"
	return latency, count
}

func promEscape(s string) string { return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) }

// TrafficQuery is the PromQL TrafficRate runs: the larger of the average
// rate over TrafficWindow and the rate between the last two scrapes (irate).
// rate() divides by the whole window, so traffic younger than the window
// reads low, and an average hides a burst; a capacity check must not
// underestimate, so it takes the larger.
func TrafficQuery(namespace, service string) string {
	esc := promEscape
	sel := fmt.Sprintf(`istio_requests_total{reporter!="source",destination_service_namespace="%s",destination_service_name="%s"}[1m]`,
		esc(namespace), esc(service))
	avg, last := "sum(rate("+sel+"))", "sum(irate("+sel+"))"
	return avg + " > " + last + " or " + last
}
