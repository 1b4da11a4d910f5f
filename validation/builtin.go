package validation

import "slices"

// builtinTemplates are the metric template names the analysis package
// provides without a MetricTemplate object.
//
// KEEP IN STEP WITH package analysis: this list stands in until analysis
// exports its built-in template names; then BuiltinTemplate should ask it
// instead and this list goes away.
var builtinTemplates = []string{
	"istio-error-rate",
	"istio-latency-p50",
	"istio-latency-p90",
	"istio-latency-p95",
	"istio-latency-p99",
	"istio-request-rate",
	"triton-error-rate",
	"triton-latency-avg",
	"kserve-error-rate",
	"kserve-latency-p99",
	"prediction-psi",
}

// BuiltinTemplate reports whether name is a template analysis provides
// without a MetricTemplate object.
func BuiltinTemplate(name string) bool { return slices.Contains(builtinTemplates, name) }

// BuiltinTemplates returns the built-in template names, sorted.
func BuiltinTemplates() []string {
	out := slices.Clone(builtinTemplates)
	slices.Sort(out)
	return out
}
