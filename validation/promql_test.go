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
		{"range over subsets", `sum by (v) (x{v=~"{{range $i, $s := .Subsets}}{{if $i}}|{{end}}{{$s}}{{end}}"})`, "{{range}} is not allowed in a query template"},
		{"range bomb", `{{range 2000000000}}{{$.Namespace}}{{end}}`, "{{range}} is not allowed in a query template"},
		{"printf", `x{a="{{printf "%0999999999d" 1}}"}`, `function "printf" is not allowed in a query template`},
		{"subset by position", `sum by ({{.VersionLabel}}) (x{v="{{index .Subsets 1}}"})`, ""},
		{"every metric name", `sum by (destination_version) ({__name__=~".+"})`, `selector {__name__=~".+"} matches every metric name`},
		{"no metric name", `sum by (destination_version) (rate({destination_service_namespace="other"}[5m]))`, "matches every metric name"},
		{"another namespace is allowed (and rewritten)", `sum by (destination_version) (x{destination_service_namespace="other"})`, ""},
		{"empty is not checked", "  ", ""},
		{"unclosed paren", `sum(rate(x[5m])`, "not valid PromQL once rendered"},
		{"bad duration", `rate(x[{{.Service}}])`, "not valid PromQL once rendered (rate(x[model]))"},
		{"unknown function", `sumz(x)`, `unknown function with name "sumz"`},
		{"template syntax", `sum(x{{.Window)`, "template: query:1: "},
		{"unknown field", `x{{.Windows}}`, "field .Windows is not allowed"},
		{"unknown template function", `{{ sprig .Window }}`, `function "sprig" is not allowed`},
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
		{"spec.histogramQuery", field.ErrorTypeInvalid, "field .Nope is not allowed"},
	})
}

func TestValidateMetricTemplateNamespaceLabel(t *testing.T) {
	for label, want := range map[string]string{"": "", "namespace": "", "__name__": "reserved by Prometheus", "kube-namespace": "not a label name"} {
		mt := metricTemplate("m", v1alpha1.MetricTemplateSpec{Query: `sum(x)`, NamespaceLabel: label})
		var w []wantErr
		if want != "" {
			w = []wantErr{{"spec.namespaceLabel", field.ErrorTypeInvalid, want}}
		}
		assertErrors(t, validation.ValidateMetricTemplate(mt), w)
	}
}

func TestValidateProvider(t *testing.T) {
	p := field.NewPath("spec", "provider")
	ref := func(name, key string) *v1alpha1.SecretKeyRef { return &v1alpha1.SecretKeyRef{Name: name, Key: key} }
	tests := []struct {
		name string
		spec v1alpha1.Provider
		want []wantErr
	}{
		{"default", v1alpha1.Provider{Type: v1alpha1.ProviderPrometheus}, nil},
		{"address and secret", v1alpha1.Provider{Address: "https://mimir.team-a:8080/prometheus", HTTPClientConfigSecretRef: ref("mimir-auth", "config.yaml")}, nil},
		{"secret alone", v1alpha1.Provider{HTTPClientConfigSecretRef: ref("tenant", "http_config")}, nil},
		{"no host", v1alpha1.Provider{Address: "https://"}, []wantErr{{"spec.provider.address", field.ErrorTypeInvalid, "with a host"}}},
		{"credentials in address", v1alpha1.Provider{Address: "https://u:pw@p:9090"}, []wantErr{{"spec.provider.address", field.ErrorTypeInvalid, "httpClientConfigSecretRef"}}},
		{"bad names", v1alpha1.Provider{HTTPClientConfigSecretRef: ref("Mimir_Auth", "a/b")}, []wantErr{
			{"spec.provider.httpClientConfigSecretRef.name", field.ErrorTypeInvalid, "not a Secret name"},
			{"spec.provider.httpClientConfigSecretRef.key", field.ErrorTypeInvalid, "not a Secret key"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertErrors(t, validation.ValidateProvider(p, tt.spec), tt.want)
		})
	}
}
