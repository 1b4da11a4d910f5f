package validation

import "github.com/fulcrum-ml/fulcrum/analysis/templates"

// BuiltinTemplate reports whether name is a template analysis provides
// without a MetricTemplate object.
func BuiltinTemplate(name string) bool {
	_, ok := templates.Builtin(name)
	return ok
}

// BuiltinTemplates returns the built-in template names, sorted.
func BuiltinTemplates() []string { return templates.BuiltinNames() }
