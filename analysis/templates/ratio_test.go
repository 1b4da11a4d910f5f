package templates

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

func TestPoolRatio(t *testing.T) {
	const v = "destination_version"
	for _, tc := range []struct{ name, in, want string }{
		{"per-pod ratio", `rate(errors_total[5m]) / rate(requests_total[5m])`,
			`sum by (destination_version) (rate(errors_total[5m])) / sum by (destination_version) (rate(requests_total[5m]))`},
		{"already pooled", `sum by (destination_version) (a) / sum by (destination_version) (b)`,
			`sum by (destination_version) (a) / sum by (destination_version) (b)`},
		{"grouped by more labels", `sum by (destination_version, pod) (a) / sum without (code) (b)`,
			`sum by (destination_version) (sum by (destination_version, pod) (a)) / sum by (destination_version) (sum without (code) (b))`},
		{"under a percentage", `100 * (a / b)`, `100 * (sum by (destination_version) (a) / sum by (destination_version) (b))`},
		{"divided by a number", `a / b / 1000`, `sum by (destination_version) (a) / sum by (destination_version) (b) / 1000`},
		{"own matching stays", `a / on (pod) group_left b`, `a / on (pod) group_left () b`},
		{"no ratio", `histogram_quantile(0.99, sum by (le, destination_version) (rate(h[5m])))`,
			`histogram_quantile(0.99, sum by (le, destination_version) (rate(h[5m])))`},
		{"a comparison is no ratio", `a / b > 0.5`, `a / b > 0.5`},
		{"a number over a vector", `1 / a`, `1 / a`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			PoolRatio(expr, v)
			if got := expr.String(); got != tc.want {
				t.Errorf("PoolRatio(%s)\n got %s\nwant %s", tc.in, got, tc.want)
			}
		})
	}
}

// A MetricTemplate's value query has its ratio pooled; its sample query,
// a count, and the built-ins are left as written.
func TestRenderPoolsTheValueRatioOfUserTemplates(t *testing.T) {
	d := NewData("ml", "fraud", "v1", "v2", time.Minute)
	r, err := Template{Name: "mine", VersionLabel: "version", NamespaceLabel: "namespace",
		Query: `rate(bad_total[{{.Window}}]) / rate(all_total[{{.Window}}])`, SampleQuery: `increase(all_total[{{.Window}}])`}.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := `sum by (version) (rate(bad_total{namespace="ml"}[1m])) / sum by (version) (rate(all_total{namespace="ml"}[1m]))`; r.Query != want {
		t.Errorf("query %s, want %s", r.Query, want)
	}
	if want := `increase(all_total{namespace="ml"}[1m])`; r.SampleQuery != want {
		t.Errorf("sample query %s, want %s", r.SampleQuery, want)
	}
}
