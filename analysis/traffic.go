package analysis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
)

// TrafficReader reads how much traffic a model serves, for capacity checks
// (spec.readiness.requestsPerPod).
type TrafficReader interface {
	// TrafficRate is the requests per second the model's Service answers,
	// all versions together, at now (see TrafficQuery).
	TrafficRate(ctx context.Context, namespace, service string, now time.Time) (float64, error)
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

// TrafficQuery is the PromQL TrafficRate runs: the larger of the average
// rate over TrafficWindow and the rate between the last two scrapes (irate).
// rate() divides by the whole window, so traffic younger than the window
// reads low, and an average hides a burst; a capacity check must not
// underestimate, so it takes the larger.
func TrafficQuery(namespace, service string) string {
	esc := func(s string) string { return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) }
	sel := fmt.Sprintf(`istio_requests_total{reporter!="source",destination_service_namespace="%s",destination_service_name="%s"}[1m]`,
		esc(namespace), esc(service))
	avg, last := "sum(rate("+sel+"))", "sum(irate("+sel+"))"
	return avg + " > " + last + " or " + last
}
