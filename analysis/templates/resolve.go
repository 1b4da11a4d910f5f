package templates

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// DefaultVersionLabel is the label inline queries and MetricTemplates
// without versionLabel group by.
const DefaultVersionLabel = "destination_version"

// Getter reads MetricTemplates. controller-runtime's client.Reader (the
// manager's cache) satisfies it.
type Getter interface {
	Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error
}

// ErrInlineQueriesOff: a metric has its own query, and Fulcrum runs
// without --allow-inline-queries.
var ErrInlineQueriesOff = errors.New("inline queries are turned off (fulcrum runs without --allow-inline-queries): put the query in a MetricTemplate and name it in template, or ask the cluster's admin for the flag")

// ErrNotFound: the metric names a template that is neither built in nor a
// MetricTemplate in the rollout's namespace.
var ErrNotFound = errors.New("metric template not found")

// Resolve finds the template of metric m of a rollout in namespace.
// Built-in names are reserved and never looked up; other names are
// MetricTemplates in the rollout's namespace; m.Query is an inline
// template grouped by destination_version.
func Resolve(ctx context.Context, g Getter, namespace string, m v1alpha1.Metric) (Template, error) {
	if m.Query != "" {
		return Template{Name: "inline", Query: m.Query, VersionLabel: DefaultVersionLabel}, nil
	}
	if m.Template == "" {
		return Template{}, fmt.Errorf("metric %s: set template (one of %s, or a MetricTemplate name) or query", m.Name, strings.Join(BuiltinNames(), ", "))
	}
	if t, ok := Builtin(m.Template); ok {
		return t, nil
	}
	if g == nil {
		return Template{}, fmt.Errorf("metric %s: template %q: %w (built-ins: %s; MetricTemplates cannot be read here)", m.Name, m.Template, ErrNotFound, strings.Join(BuiltinNames(), ", "))
	}
	var mt v1alpha1.MetricTemplate
	if err := g.Get(ctx, client.ObjectKey{Namespace: namespace, Name: m.Template}, &mt); err != nil {
		if apierrors.IsNotFound(err) {
			return Template{}, fmt.Errorf("metric %s: template %q: %w: create MetricTemplate %s/%s or use a built-in (%s)", m.Name, m.Template, ErrNotFound, namespace, m.Template, strings.Join(BuiltinNames(), ", "))
		}
		return Template{}, fmt.Errorf("metric %s: read MetricTemplate %s/%s: %w", m.Name, namespace, m.Template, err)
	}
	return FromMetricTemplate(&mt), nil
}

// FromMetricTemplate converts a MetricTemplate.
func FromMetricTemplate(mt *v1alpha1.MetricTemplate) Template {
	label := mt.Spec.VersionLabel
	if label == "" {
		label = DefaultVersionLabel
	}
	p := mt.Spec.Provider
	return Template{
		Name:           mt.Name,
		Query:          mt.Spec.Query,
		SampleQuery:    mt.Spec.SampleQuery,
		BadQuery:       mt.Spec.BadQuery,
		HistogramQuery: mt.Spec.HistogramQuery,
		SuccessQuery:   mt.Spec.SuccessQuery,
		SumQuery:       mt.Spec.SumQuery,
		VersionLabel:   label,
		NamespaceLabel: mt.Spec.NamespaceLabel,
		Unit:           mt.Spec.Unit,
		Provider:       &p,
	}
}
