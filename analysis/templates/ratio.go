package templates

import (
	"github.com/prometheus/prometheus/promql/parser"
)

// PoolRatio makes the ratio of a value query a ratio of sums per version
// (issue 14, finding 9). The outermost plain division A / B of two vectors
// (found under parentheses, a sign, and arithmetic with a number, as in
// 100 * (A / B) or A / B / 1000) becomes
//
//	sum by (versionLabel) (A) / sum by (versionLabel) (B)
//
// so that several series of one version (per pod, per instance, per
// response code) give sum(numerator) / sum(denominator) rather than
// ratios that would then be added up. For a query already grouped by the
// version label alone this changes nothing. A division with on(),
// ignoring() or group_left/right is the author's own matching and is left
// alone; so is a query with no division. The engine refuses a value query
// that still returns several series for one version. It reports whether
// it rewrote the query.
func PoolRatio(expr parser.Expr, versionLabel string) bool {
	switch e := expr.(type) {
	case *parser.ParenExpr:
		return PoolRatio(e.Expr, versionLabel)
	case *parser.UnaryExpr:
		return PoolRatio(e.Expr, versionLabel)
	case *parser.StepInvariantExpr:
		return PoolRatio(e.Expr, versionLabel)
	case *parser.BinaryExpr:
		lv, rv := e.LHS.Type() == parser.ValueTypeVector, e.RHS.Type() == parser.ValueTypeVector
		switch {
		case e.Op == parser.DIV && lv && rv:
			if !plainMatching(e.VectorMatching) {
				return false
			}
			e.LHS = sumBy(e.LHS, versionLabel)
			e.RHS = sumBy(e.RHS, versionLabel)
			return true
		case !isArithmetic(e.Op):
			return false
		case lv && !rv:
			return PoolRatio(e.LHS, versionLabel)
		case rv && !lv:
			return PoolRatio(e.RHS, versionLabel)
		}
	}
	return false
}

func isArithmetic(op parser.ItemType) bool {
	switch op {
	case parser.ADD, parser.SUB, parser.MUL, parser.DIV:
		return true
	}
	return false
}

// plainMatching: one-to-one on all labels, as A / B matches by default.
func plainMatching(vm *parser.VectorMatching) bool {
	return vm == nil || (vm.Card == parser.CardOneToOne && !vm.On && len(vm.MatchingLabels) == 0 &&
		len(vm.Include) == 0 && vm.FillValues == (parser.VectorMatchFillValues{}))
}

// sumBy wraps e in sum by (label) unless it is that sum already.
func sumBy(e parser.Expr, label string) parser.Expr {
	if a, ok := e.(*parser.AggregateExpr); ok && a.Op == parser.SUM && !a.Without && len(a.Grouping) == 1 && a.Grouping[0] == label {
		return e
	}
	return &parser.AggregateExpr{Op: parser.SUM, Expr: e, Grouping: []string{label}}
}
