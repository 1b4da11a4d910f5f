// Package grafana embeds Fulcrum's Grafana dashboard (fulcrum-dashboard.json),
// so the demo can provision exactly the file users import.
package grafana

import _ "embed"

// Dashboard is fulcrum-dashboard.json: traffic weights per subset, phases,
// analysis verdicts, per-version error rate and latency, rollout durations.
// Its data source is the ${datasource} variable.
//
//go:embed fulcrum-dashboard.json
var Dashboard []byte
