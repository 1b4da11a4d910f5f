package templates

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

func TestEnforceNamespace(t *testing.T) {
	const l = "destination_service_namespace"
	for _, tc := range []struct{ name, in, want string }{
		{"adds the matcher", `sum by (destination_version) (rate(istio_requests_total[5m]))`,
			`sum by (destination_version) (rate(istio_requests_total{destination_service_namespace="ml"}[5m]))`},
		{"overwrites another namespace", `x{destination_service_namespace="other",a="b"}`, `x{a="b",destination_service_namespace="ml"}`},
		{"overwrites a regex over namespaces", `x{destination_service_namespace=~".+"}`, `x{destination_service_namespace="ml"}`},
		{"overwrites a negative matcher", `x{destination_service_namespace!="ml"}`, `x{destination_service_namespace="ml"}`},
		{"keeps the rollout's own", `x{destination_service_namespace="ml"}`, `x{destination_service_namespace="ml"}`},
		{"every side of a binary operation", `a / on (v) group_left b or c`,
			`a{destination_service_namespace="ml"} / on (v) group_left () b{destination_service_namespace="ml"} or c{destination_service_namespace="ml"}`},
		{"subquery, offset and @", `max_over_time(rate(x[1m])[10m:1m] offset 5m) + y @ 100`,
			`max_over_time(rate(x{destination_service_namespace="ml"}[1m])[10m:1m] offset 5m) + y{destination_service_namespace="ml"} @ 100.000`},
		{"function arguments", `label_replace(absent(x), "destination_service_namespace", "other", "", "")`,
			`label_replace(absent(x{destination_service_namespace="ml"}), "destination_service_namespace", "other", "", "")`},
		{"a list of names", `{__name__=~"a_total|b_total"}`, `{__name__=~"a_total|b_total",destination_service_namespace="ml"}`},
		{"name by equality", `{__name__="a_total"}`, `{__name__="a_total",destination_service_namespace="ml"}`},
		{"no selector", `vector(1)`, `vector(1)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EnforceNamespace(tc.in, l, "ml")
			if err != nil || got != tc.want {
				t.Errorf("EnforceNamespace(%s) = %s, %v\nwant %s", tc.in, got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, in, label, ns, msg string }{
		{"every metric", `sum({__name__=~".+"})`, l, "ml", `selector {__name__=~".+"} matches every metric name`},
		{"no name", `rate({job="x"}[5m])`, l, "ml", `selector {job="x"} matches every metric name`},
		{"a name pattern", `{__name__=~"istio_.*"}`, l, "ml", "matches every metric name"},
		{"name inequality", `{__name__!="up",job="x"}`, l, "ml", "matches every metric name"},
		{"empty name in the list", `{__name__=~"a|",job="x"}`, l, "ml", "matches every metric name"},
		{"reserved label", `x`, "__name__", "ml", "reserved by Prometheus"},
		{"bad label", `x`, "kube-namespace", "ml", "not a label name"},
		{"no namespace", `x`, l, "", "no namespace"},
		{"not PromQL", `sum(`, l, "ml", "not valid PromQL once rendered (sum()"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EnforceNamespace(tc.in, tc.label, tc.ns)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("EnforceNamespace(%s) = %s, %v; want an error containing %q", tc.in, got, err, tc.msg)
			}
		})
	}
}

// Render confines MetricTemplates, inline queries and the per-rollout
// built-ins to the rollout's namespace with their own label; only the
// batched built-ins, which read every rollout's rows by design, are not.
func TestRenderConfinesEveryQueryToTheNamespace(t *testing.T) {
	d := NewData("ml", "fraud", "v1", "v2", 5*time.Minute)
	mine := Template{Name: "mine", VersionLabel: "version", NamespaceLabel: "namespace",
		Query:       `sum by (version) (rate(ok_total{namespace="other"}[{{.Window}}])) / sum by (version) (rate(all_total[{{.Window}}]))`,
		SampleQuery: `sum by (version) (increase(all_total{namespace=~".*"}[{{.Window}}]))`}
	r, err := mine.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{r.Query, r.SampleQuery} {
		assertConfined(t, q, "namespace", "ml")
	}
	inline := Template{Name: "inline", Query: `sum by (destination_version) (x)`, VersionLabel: DefaultVersionLabel}
	if r, err := inline.Render(d); err != nil || !strings.Contains(r.Query, `destination_service_namespace="ml"`) {
		t.Errorf("inline without a label: %s, %v; want the default label %s", r.Query, err, DefaultNamespaceLabel)
	}
	for _, name := range BuiltinNames() {
		b, _ := Builtin(name)
		r, err := b.Render(d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, q := range []string{r.Query, r.SampleQuery, r.BadQuery, r.HistogramQuery} {
			if q != "" {
				assertConfined(t, q, b.NamespaceLabel, "ml")
			}
		}
		if b.Batched == nil {
			continue // per rollout only (gateway-*)
		}
		br, err := b.Batched.Render(NewBatchData(5 * time.Minute))
		if err != nil || strings.Contains(br.SampleQuery, `"ml"`) {
			t.Errorf("%s batched: %s, %v; want every namespace", name, br.SampleQuery, err)
		}
	}
	if _, err := (Template{Name: "all", Query: `{__name__=~".+"}`}).Render(d); !errors.Is(err, ErrTenancy) {
		t.Errorf("every metric name: %v, want ErrTenancy", err)
	}
}

// assertConfined fails unless every selector of q has exactly one matcher
// on label, label="ns".
func assertConfined(t testing.TB, q, label, ns string) {
	t.Helper()
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		t.Fatalf("%s does not parse: %v", q, err)
	}
	for _, sel := range parser.ExtractSelectors(expr) {
		var on []*labels.Matcher
		for _, m := range sel {
			if m.Name == label {
				on = append(on, m)
			}
		}
		if len(on) != 1 || on[0].Type != labels.MatchEqual || on[0].Value != ns {
			t.Fatalf("a selector of %s has %v on %s, want exactly %s=%q", q, on, label, label, ns)
		}
	}
}

// FuzzTenancyRewrite: whatever PromQL goes in, what comes out parses, every
// selector in it carries exactly label="ml", and a second rewrite changes
// nothing; or the rewrite refuses it.
func FuzzTenancyRewrite(f *testing.F) {
	for _, seed := range []string{
		`sum by (destination_version) (rate(istio_requests_total{destination_service_namespace="other"}[5m]))`,
		`x{namespace=~"other|ml"} / ignoring(namespace) y{namespace!="ml"}`,
		`{__name__=~".+"}`,
		`{__name__=~"a|b",namespace="other"}`,
		`max_over_time(rate(x[1m])[10m:1m] offset 5m) + y @ 100`,
		`label_replace(absent(x), "namespace", "other", "", "")`,
		`histogram_quantile(0.99, sum by (le, version) (rate(h_bucket{namespace="a"}[5m])))`,
		`count_values("namespace", x)`,
		`-x offset -1m`,
		`vector(1)`,
		`sum(`,
		`x{namespace="ml",namespace="other"}`,
		`topk(3, {__name__="x"})`,
	} {
		f.Add(seed, "namespace")
		f.Add(seed, DefaultNamespaceLabel)
	}
	f.Fuzz(func(t *testing.T, q, label string) {
		if len(q) > 2000 {
			return
		}
		out, err := EnforceNamespace(q, label, "ml")
		if err != nil {
			return
		}
		assertConfined(t, out, label, "ml")
		again, err := EnforceNamespace(out, label, "ml")
		if err != nil || again != out {
			t.Fatalf("second rewrite of %q: %q, %v; want %q", q, again, err, out)
		}
	})
}
