// Package templates turns a metric's template (built-in, MetricTemplate or
// inline query) into PromQL for one round. Every query returns one series
// per version, labelled with the version label, so one query serves every
// subset of a rollout at once.
package templates

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Template is a resolved metric template.
type Template struct {
	// Name of the template (built-in or MetricTemplate), or "inline".
	Name string
	// Query returns the metric's value per version.
	Query string
	// SampleQuery returns requests per version in the window.
	SampleQuery string
	// BadQuery returns bad events per version in the window.
	BadQuery string
	// SuccessQuery and SumQuery return an experiment's reward per version
	// since its start: successes (Proportion) or the sum of values (Mean).
	SuccessQuery, SumQuery string
	// HistogramQuery returns cumulative bucket counts per version and le.
	HistogramQuery string
	// HistogramScale converts bucket bounds to milliseconds (1000 for a
	// histogram in seconds); 1 when zero.
	HistogramScale float64
	// ValueFromHistogram: the value is the PSI of the candidate's histogram
	// against stable's, computed from HistogramQuery; Query is unused.
	ValueFromHistogram bool
	// VersionLabel carries the subset name in results.
	VersionLabel string
	// NamespaceLabel carries a series' namespace: Render confines every
	// selector of every query to the rollout's namespace with it
	// (EnforceNamespace). DefaultNamespaceLabel when empty.
	NamespaceLabel string
	// Unit for display.
	Unit string
	// Provider runs the queries; nil means the controller's default.
	Provider *v1alpha1.Provider
	// Batched is the cross-rollout form of a built-in template: the same
	// PromQL without the namespace, service and subset matchers, grouped
	// additionally by the identity labels (IdentityLabels), so one query
	// serves every rollout in the mesh. Nil for MetricTemplates and inline
	// queries: their PromQL need not carry identity labels, so they run
	// per rollout.
	Batched *Template

	identity [2]string // namespace and service labels of a batched form
	// builtin: Fulcrum's own PromQL, grouped by the version label already
	// (and, batched, by the identity labels, which PoolRatio would drop).
	builtin bool
}

// IdentityLabels are the labels that name a rollout's namespace and
// service in a batched template's results (empty strings per rollout).
func (t Template) IdentityLabels() (namespace, service string) {
	return t.identity[0], t.identity[1]
}

// Data is what a template is rendered with.
type Data struct {
	Namespace, Service string
	// Subsets are the rollout's subsets (stable first, then candidate).
	Subsets []string
	// SubsetRegex matches exactly the subsets: "v1|v2", regex-quoted.
	SubsetRegex       string
	Stable, Candidate string
	// Window is the evidence window as a PromQL duration in whole seconds.
	Window string
	// VersionLabel is the template's version label.
	VersionLabel string
}

// NewData fills Data for a window; the window is rounded up to a second and
// is at least one second.
func NewData(namespace, service, stable, candidate string, window time.Duration) Data {
	subs := []string{stable}
	if candidate != "" && candidate != stable {
		subs = append(subs, candidate)
	}
	quoted := make([]string, len(subs))
	for i, s := range subs {
		quoted[i] = regexp.QuoteMeta(s)
	}
	secs := int64((window + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return Data{Namespace: namespace, Service: service, Subsets: subs, SubsetRegex: strings.Join(quoted, "|"),
		Stable: stable, Candidate: candidate, Window: fmt.Sprintf("%ds", secs)}
}

// NewBatchData fills Data for a batched template, which reads only the
// window (whole seconds; at least one second).
func NewBatchData(window time.Duration) Data {
	secs := max(int64(window/time.Second), 1)
	return Data{Window: fmt.Sprintf("%ds", secs)}
}

// Rendered holds a template's queries for one round; empty where the
// template has none.
type Rendered struct {
	Query, SampleQuery, BadQuery, HistogramQuery string
	SuccessQuery, SumQuery                       string
}

// Render renders every query of t with d (d.VersionLabel is set from t).
// Each query passes Check first, and its output is cut off with an error
// past MaxRenderedBytes. Then every selector of the query is confined to
// d.Namespace with t's namespace label (EnforceNamespace); only the
// batched form of a built-in, which Fulcrum wrote to read every rollout's
// rows at once and whose rows the engine picks per rollout, is not. The
// value query (Query) of a MetricTemplate or inline query has its ratio
// pooled by version (PoolRatio).
func (t Template) Render(d Data) (Rendered, error) {
	d.VersionLabel = t.VersionLabel
	var r Rendered
	for _, q := range []struct {
		field string
		src   string
		dst   *string
	}{{"query", t.Query, &r.Query}, {"sampleQuery", t.SampleQuery, &r.SampleQuery}, {"badQuery", t.BadQuery, &r.BadQuery}, {"histogramQuery", t.HistogramQuery, &r.HistogramQuery},
		{"successQuery", t.SuccessQuery, &r.SuccessQuery}, {"sumQuery", t.SumQuery, &r.SumQuery}} {
		if q.src == "" {
			continue
		}
		tpl, err := Check(q.field, q.src)
		if err != nil {
			return r, &RenderError{Template: t.Name, Err: err}
		}
		var b bytes.Buffer
		if err := tpl.Execute(&limitWriter{w: &b, n: MaxRenderedBytes}, d); err != nil {
			return r, &RenderError{Template: t.Name, Query: q.field, Err: err}
		}
		out := b.String()
		if t.identity[0] == "" { // not a batched built-in
			label := t.NamespaceLabel
			if label == "" {
				label = DefaultNamespaceLabel
			}
			expr, err := enforceNamespace(out, label, d.Namespace)
			if err != nil {
				return r, &RenderError{Template: t.Name, Query: q.field, Err: err}
			}
			if q.field == "query" && !t.builtin {
				PoolRatio(expr, t.VersionLabel)
			}
			out = expr.String()
			if len(out) > MaxRenderedBytes {
				return r, &RenderError{Template: t.Name, Query: q.field, Err: fmt.Errorf(
					"%w: with the namespace matcher on each of its selectors it is %d bytes, more than %d; use fewer selectors", ErrTooLong, len(out), MaxRenderedBytes)}
			}
		}
		*q.dst = out
	}
	return r, nil
}

// RenderError is a query of a template that did not render: refused by
// Check, failed while running, or not confinable to the namespace.
type RenderError struct {
	// Template is the template's name; Query the query field ("" when
	// Err, from Check, names it).
	Template, Query string
	Err             error
}

func (e *RenderError) Error() string {
	if e.Query == "" {
		return fmt.Sprintf("template %s: %v", e.Template, e.Err)
	}
	return fmt.Sprintf("template %s: %s: %v", e.Template, e.Query, e.Err)
}

func (e *RenderError) Unwrap() error { return e.Err }

// Builtin returns a built-in template by name.
func Builtin(name string) (Template, bool) {
	t, ok := builtins[name]
	return t, ok
}

// BuiltinNames lists the built-in templates, sorted.
func BuiltinNames() []string {
	out := make([]string, 0, len(builtins))
	for n := range builtins {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
