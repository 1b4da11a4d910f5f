package validation

import (
	"errors"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/analysis/templates"
)

// placeholder is the data templates are rendered with: values shaped like
// real ones, so that the rendered text is what Prometheus would see.
// Rendering is analysis' own (templates.Template.Render: the template
// checks of templates.Check, the output bound, PromQL parsing and the
// namespace rewrite), so a template is accepted here exactly when the
// controller can render it.
var placeholder = templates.NewData("fulcrum-validation", "model", "v1", "v2", 5*time.Minute)

// RenderQuery renders a query template with placeholder values.
func RenderQuery(tmpl string) (string, error) {
	r, err := templates.Template{Name: "inline", Query: tmpl, VersionLabel: templates.DefaultVersionLabel}.Render(placeholder)
	if err != nil {
		return "", err
	}
	return r.Query, nil
}

// ValidateQuery checks that a query template passes templates.Check,
// renders within templates.MaxRenderedBytes, is valid PromQL and can be
// confined to a namespace (every selector names its metric). An empty
// query is not checked (CEL rules say which are required).
func ValidateQuery(path *field.Path, tmpl string) field.ErrorList {
	if strings.TrimSpace(tmpl) == "" {
		return nil
	}
	if _, err := RenderQuery(tmpl); err != nil {
		var re *templates.RenderError
		if errors.As(err, &re) {
			err = re.Err
		}
		return field.ErrorList{field.Invalid(path, oneLine(tmpl), err.Error())}
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
