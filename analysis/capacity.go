package analysis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/analysis/templates"
)

// CapacityReader measures what one pod of a model serves, for capacity
// checks with spec.readiness.requestsPerPodQuery.
type CapacityReader interface {
	// PodCapacity runs query (a Go template with {{.Namespace}} and
	// {{.Service}}) and returns one pod's capacity in requests per second.
	PodCapacity(ctx context.Context, namespace, service, query string, now time.Time) (float64, error)
}

// PodCapacity implements CapacityReader. The query is a user's PromQL, so
// it gets what inline metric queries get: it runs only with
// AllowInlineQueries, passes Check, and every selector is confined to the
// rollout's namespace. A vector answers with its smallest value (a
// capacity check must not overestimate); no data, or a value that is not
// a positive number, is an error, never a guess.
func (e *Engine) PodCapacity(ctx context.Context, namespace, service, query string, now time.Time) (float64, error) {
	if !e.cfg.AllowInlineQueries {
		return 0, fmt.Errorf("spec.readiness.requestsPerPodQuery: %w", templates.ErrInlineQueriesOff)
	}
	q, err := CapacityQuery(query, namespace, service, e.cfg.NamespaceLabel)
	if err != nil {
		return 0, err
	}
	p, err := e.providerFor(ctx, namespace, nil)
	if err != nil {
		return 0, err
	}
	samples, err := p.Query(ctx, q, now)
	if errors.Is(err, provider.ErrNoData) || (err == nil && len(samples) == 0) {
		return 0, fmt.Errorf("spec.readiness.requestsPerPodQuery returned no data (%s)", q)
	}
	if err != nil {
		return 0, fmt.Errorf("spec.readiness.requestsPerPodQuery: %w", err)
	}
	least := math.Inf(1)
	for _, s := range samples {
		least = math.Min(least, s.Value)
	}
	if math.IsNaN(least) || math.IsInf(least, 0) || least <= 0 {
		return 0, fmt.Errorf("spec.readiness.requestsPerPodQuery returned %g, not a positive number of requests/s (%s)", least, q)
	}
	return least, nil
}

// CapacityQuery renders a requestsPerPodQuery for a rollout and confines
// it to the rollout's namespace with label (templates.DefaultNamespaceLabel
// when empty).
func CapacityQuery(query, namespace, service, label string) (string, error) {
	tpl, err := templates.Check("requestsPerPodQuery", query)
	if err != nil {
		return "", fmt.Errorf("spec.readiness.requestsPerPodQuery: %w", err)
	}
	var b bytes.Buffer
	if err := tpl.Execute(&b, templates.NewData(namespace, service, "", "", time.Minute)); err != nil {
		return "", fmt.Errorf("spec.readiness.requestsPerPodQuery: %w", err)
	}
	if label == "" {
		label = templates.DefaultNamespaceLabel
	}
	out, err := templates.EnforceNamespace(b.String(), label, namespace)
	if err != nil {
		return "", fmt.Errorf("spec.readiness.requestsPerPodQuery: %w", err)
	}
	return out, nil
}
