// Package alerts embeds Fulcrum's Prometheus alert rules, so the local
// environment and the demo load exactly the file users install.
package alerts

import _ "embed"

// Rules is fulcrum-rules.yaml, a Prometheus rule file (rule_files:).
//
//go:embed fulcrum-rules.yaml
var Rules []byte

// PrometheusRule is fulcrum-prometheusrule.yaml, the same groups as a
// PrometheusRule for the Prometheus Operator.
//
//go:embed fulcrum-prometheusrule.yaml
var PrometheusRule []byte
