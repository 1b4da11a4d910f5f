package validation

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/analysis/templates"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// checkMetrics checks every metric's template or inline query.
func checkMetrics(ctx context.Context, l Lookups, mr *v1alpha1.ModelRollout, opts Options) field.ErrorList {
	if mr.Spec.Analysis == nil {
		return nil
	}
	var errs field.ErrorList
	for i := range mr.Spec.Analysis.Metrics {
		m := &mr.Spec.Analysis.Metrics[i]
		p := metricsP.Index(i)
		if m.Query != "" {
			if !opts.AllowInlineQueries {
				errs = append(errs, field.Forbidden(p.Child("query"), templates.ErrInlineQueriesOff.Error()))
				continue
			}
			errs = append(errs, ValidateQuery(p.Child("query"), m.Query)...)
			continue
		}
		if m.Template == "" {
			continue
		}
		if b, ok := templates.Builtin(m.Template); ok {
			if need, missing := judgeNeeds(m, b); missing != "" {
				errs = append(errs, field.Invalid(p.Child("template"), m.Template, fmt.Sprintf(
					"the %s judge needs a template with %s, and built-in template %s has none; choose another judge or template",
					need, missing, m.Template)))
			}
			continue
		}
		mt, err := l.MetricTemplate(ctx, mr.Namespace, m.Template)
		if apierrors.IsNotFound(err) {
			errs = append(errs, field.Invalid(p.Child("template"), m.Template, fmt.Sprintf(
				"no MetricTemplate %s/%s and no built-in template of that name; create the MetricTemplate, or use a built-in one (%s)",
				mr.Namespace, m.Template, listOrNone(BuiltinTemplates()))))
			continue
		}
		if err != nil {
			errs = append(errs, field.InternalError(p.Child("template"), fmt.Errorf("read MetricTemplate %s/%s: %w", mr.Namespace, m.Template, err)))
			continue
		}
		for _, e := range ValidateMetricTemplate(mt) {
			errs = append(errs, field.Invalid(p.Child("template"), m.Template, fmt.Sprintf(
				"MetricTemplate %s/%s is broken: %s", mt.Namespace, mt.Name, e.Error())))
		}
		if need, missing := judgeNeeds(m, templates.FromMetricTemplate(mt)); missing != "" {
			errs = append(errs, field.Invalid(p.Child("template"), m.Template, fmt.Sprintf(
				"the %s judge needs MetricTemplate %s/%s to set %s; add it to the template or choose another judge",
				need, mt.Namespace, mt.Name, missing)))
		}
	}
	return errs
}

// judgeNeeds names the metric's judge and the template queries it needs
// that the template lacks ("" when it has them all).
func judgeNeeds(m *v1alpha1.Metric, s templates.Template) (judge, missing string) {
	switch {
	case m.Threshold != nil || m.Relative != nil:
		judge = "threshold"
		if m.Relative != nil {
			judge = "relative"
		}
		if s.Query == "" && !s.ValueFromHistogram {
			return judge, "spec.query"
		}
	case m.Sequential != nil:
		// Bad events come from badQuery, or from a latency histogram cut at
		// sequential.sloMilliseconds.
		hasBad := s.BadQuery != "" || (m.Sequential.SLOMilliseconds != nil && s.HistogramQuery != "")
		switch {
		case !hasBad && s.SampleQuery == "":
			return "sequential", "spec.badQuery and spec.sampleQuery"
		case !hasBad:
			return "sequential", "spec.badQuery"
		case s.SampleQuery == "":
			return "sequential", "spec.sampleQuery"
		}
	case m.Drift != nil:
		if s.HistogramQuery == "" {
			return "drift", "spec.histogramQuery"
		}
	case m.SampleRatio != nil:
		if s.SampleQuery == "" {
			return "sampleRatio", "spec.sampleQuery"
		}
	}
	return judge, ""
}

// ValidateMetricTemplate checks that each query of a MetricTemplate renders
// and parses as PromQL and can be confined to a namespace, its namespace
// label, and the shape of its provider.
func ValidateMetricTemplate(mt *v1alpha1.MetricTemplate) field.ErrorList {
	p := field.NewPath("spec")
	errs := ValidateProvider(p.Child("provider"), mt.Spec.Provider)
	if l := mt.Spec.NamespaceLabel; l != "" {
		if err := templates.ValidNamespaceLabel(l); err != nil {
			errs = append(errs, field.Invalid(p.Child("namespaceLabel"), l, err.Error()))
		}
	}
	errs = append(errs, ValidateQuery(p.Child("query"), mt.Spec.Query)...)
	errs = append(errs, ValidateQuery(p.Child("sampleQuery"), mt.Spec.SampleQuery)...)
	errs = append(errs, ValidateQuery(p.Child("badQuery"), mt.Spec.BadQuery)...)
	errs = append(errs, ValidateQuery(p.Child("histogramQuery"), mt.Spec.HistogramQuery)...)
	errs = append(errs, ValidateQuery(p.Child("successQuery"), mt.Spec.SuccessQuery)...)
	errs = append(errs, ValidateQuery(p.Child("sumQuery"), mt.Spec.SumQuery)...)
	return errs
}
