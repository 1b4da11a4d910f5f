package templates

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// DefaultNamespaceLabel is the label that carries a series' namespace in
// inline queries and in MetricTemplates without spec.namespaceLabel, unless
// the controller says otherwise (cmd/fulcrum --query-namespace-label):
// Istio's standard metrics carry the destination service's namespace in
// it, whoever reported them, and the built-in Istio templates select on it.
const DefaultNamespaceLabel = "destination_service_namespace"

// ErrTenancy: a query cannot be confined to the rollout's namespace.
var ErrTenancy = errors.New("query cannot be confined to the rollout's namespace")

// EnforceNamespace confines a PromQL query to one namespace, as
// prom-label-proxy does: every vector and matrix selector, in subqueries
// and function arguments too, gets the matcher label="namespace", and any
// matcher the query had on that label is dropped (a query written to read
// another namespace reads its own). A selector must name its metric
// (metric{...}, {__name__="metric"} or {__name__=~"a|b"}): one that
// matches every metric name, such as {__name__=~".+"}, would pull every
// series of the namespace into the controller and is refused. The result
// is the query as the PromQL parser prints it.
func EnforceNamespace(query, label, namespace string) (string, error) {
	expr, err := enforceNamespace(query, label, namespace)
	if err != nil {
		return "", err
	}
	return expr.String(), nil
}

// enforceNamespace is EnforceNamespace before printing.
func enforceNamespace(query, label, namespace string) (parser.Expr, error) {
	if err := ValidNamespaceLabel(label); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTenancy, err)
	}
	if namespace == "" {
		return nil, fmt.Errorf("%w: no namespace to confine it to", ErrTenancy)
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(query)
	if err != nil {
		return nil, fmt.Errorf("not valid PromQL once rendered (%s): %w", oneLine(query), err)
	}
	enforced, err := labels.NewMatcher(labels.MatchEqual, label, namespace)
	if err != nil {
		return nil, err
	}
	var selErr error
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok || selErr != nil {
			return nil
		}
		if !namesMetric(vs.LabelMatchers) {
			selErr = fmt.Errorf("%w: selector %s matches every metric name; name the metric, as in istio_requests_total{...}, or list the names, as in {__name__=~\"a_total|b_total\"}", ErrTenancy, vs.String())
			return selErr
		}
		vs.LabelMatchers = append(slices.DeleteFunc(vs.LabelMatchers, func(m *labels.Matcher) bool { return m.Name == label }), enforced)
		return nil
	})
	if selErr != nil {
		return nil, selErr
	}
	return expr, nil
}

// oneLine is s on one line, cut to 200 bytes, for messages.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// namesMetric reports whether the matchers pin the metric name to a
// finite list: an equality on __name__ or a regex that is an alternation
// of literals.
func namesMetric(ms []*labels.Matcher) bool {
	for _, m := range ms {
		if m.Name != model.MetricNameLabel {
			continue
		}
		switch m.Type {
		case labels.MatchEqual:
			if m.Value != "" {
				return true
			}
		case labels.MatchRegexp:
			if set := m.SetMatches(); len(set) > 0 && !slices.Contains(set, "") {
				return true
			}
		}
	}
	return false
}

// ValidNamespaceLabel checks a namespace label: a label name in
// Prometheus's classic charset ([a-zA-Z_][a-zA-Z0-9_]*, which every
// version of Prometheus accepts unquoted), not reserved (__name__ and
// other names that start with __).
func ValidNamespaceLabel(s string) error {
	if strings.HasPrefix(s, "__") {
		return fmt.Errorf("%q is reserved by Prometheus (labels that start with __); name the label that carries the namespace, such as namespace", s)
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return fmt.Errorf("%q is not a label name: letters, digits and _, not starting with a digit", s)
		}
	}
	if s == "" {
		return errors.New("empty label name")
	}
	return nil
}
