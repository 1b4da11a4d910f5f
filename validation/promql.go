package validation

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// subsetList prints as a regular-expression alternation ("v1|v2") so that
// {{.Subsets}} fits in a =~ matcher, and ranges as a list of names.
type subsetList []string

func (s subsetList) String() string { return strings.Join(s, "|") }

// QueryData is what a query template is rendered with.
//
// KEEP IN STEP WITH package analysis: the field names and the functions in
// templateFuncs must match what analysis renders queries with, or a template
// that analysis accepts would be rejected here (or the reverse). When
// analysis exports its renderer, RenderQuery should call it.
type QueryData struct {
	Namespace    string
	Service      string
	Stable       string
	Candidate    string
	Subsets      subsetList
	Window       string
	VersionLabel string
}

// placeholder is the data templates are rendered with before parsing: values
// shaped like real ones, so that the rendered text is what PromQL would see.
var placeholder = QueryData{
	Namespace:    "fulcrum-validation",
	Service:      "model",
	Stable:       "v1",
	Candidate:    "v2",
	Subsets:      subsetList{"v1", "v2"},
	Window:       "5m",
	VersionLabel: "destination_version",
}

var templateFuncs = template.FuncMap{
	"join":  func(sep string, items []string) string { return strings.Join(items, sep) },
	"quote": func(s string) string { return fmt.Sprintf("%q", s) },
	"regex": func(items []string) string { return strings.Join(items, "|") },
}

// RenderQuery renders a query template with placeholder values.
func RenderQuery(tmpl string) (string, error) {
	t, err := template.New("query").Funcs(templateFuncs).Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, placeholder); err != nil {
		return "", fmt.Errorf("template: %w", err)
	}
	return buf.String(), nil
}

// ValidateQuery checks that a query template renders and that the result is
// valid PromQL. An empty query is not checked (CEL rules say which are
// required).
func ValidateQuery(path *field.Path, tmpl string) field.ErrorList {
	if strings.TrimSpace(tmpl) == "" {
		return nil
	}
	rendered, err := RenderQuery(tmpl)
	if err != nil {
		return field.ErrorList{field.Invalid(path, tmpl, fmt.Sprintf(
			"%v; a query is a Go text/template with .Namespace, .Service, .Stable, .Candidate, .Subsets, .Window and .VersionLabel", err))}
	}
	if _, err := parser.NewParser(parser.Options{}).ParseExpr(rendered); err != nil {
		return field.ErrorList{field.Invalid(path, tmpl, fmt.Sprintf(
			"not valid PromQL once rendered (%s): %v", oneLine(rendered), err))}
	}
	return nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
