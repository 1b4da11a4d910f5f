package validation_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

func TestValidateQuery(t *testing.T) {
	p := field.NewPath("q")
	tests := []struct {
		name, query, wantMsg string
	}{
		{"valid ratio", `sum by ({{.VersionLabel}}) (rate(istio_requests_total{response_code=~"5..",destination_version=~"{{.Subsets}}"}[{{.Window}}])) / sum by ({{.VersionLabel}}) (rate(istio_requests_total[{{.Window}}]))`, ""},
		{"range over subsets", `sum by (v) (x{v=~"{{range $i, $s := .Subsets}}{{if $i}}|{{end}}{{$s}}{{end}}"})`, ""},
		{"empty is not checked", "  ", ""},
		{"unclosed paren", `sum(rate(x[5m])`, "not valid PromQL once rendered"},
		{"bad duration", `rate(x[{{.Service}}])`, "not valid PromQL once rendered (rate(x[model]))"},
		{"unknown function", `sumz(x)`, `unknown function with name "sumz"`},
		{"template syntax", `sum(x{{.Window)`, "template: query:1: "},
		{"unknown field", `x{{.Windows}}`, "can't evaluate field Windows"},
		{"unknown template function", `{{ sprig .Window }}`, `function "sprig" not defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := validation.ValidateQuery(p, tt.query)
			if tt.wantMsg == "" {
				assertErrors(t, errs, nil)
				return
			}
			assertErrors(t, errs, []wantErr{{"q", field.ErrorTypeInvalid, tt.wantMsg}})
		})
	}
}

func TestValidateMetricTemplate(t *testing.T) {
	mt := metricTemplate("m", v1alpha1.MetricTemplateSpec{
		Query:          `sum(x)`,
		SampleQuery:    `sum(rate(y[{{.Window}}])`,
		BadQuery:       `sum(z)`,
		HistogramQuery: `{{.Nope}}`,
	})
	assertErrors(t, validation.ValidateMetricTemplate(mt), []wantErr{
		{"spec.sampleQuery", field.ErrorTypeInvalid, "not valid PromQL"},
		{"spec.histogramQuery", field.ErrorTypeInvalid, "can't evaluate field Nope"},
	})
}
