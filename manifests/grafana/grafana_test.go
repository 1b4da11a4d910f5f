package grafana_test

import (
	"encoding/json"
	"testing"

	"github.com/fulcrum-ml/fulcrum/manifests/grafana"
)

// The PromQL of the dashboard runs against a real Prometheus in
// manifests/alerts (TestQueriesRunOnPrometheus); this checks its shape.
func TestDashboardShape(t *testing.T) {
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			GridPos struct{ X, Y, W, H int } `json:"gridPos"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(grafana.Dashboard, &d); err != nil {
		t.Fatalf("fulcrum-dashboard.json is not valid JSON: %v", err)
	}
	if d.UID == "" {
		t.Error("the dashboard needs a stable uid so links to it survive re-imports")
	}
	ids := map[int]bool{}
	titles := map[string]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		titles[p.Title] = true
		if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W <= 0 {
			t.Errorf("panel %q: gridPos %+v does not fit Grafana's 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q must use the ${datasource} variable, so the dashboard imports on any Prometheus", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
		}
	}
	for _, want := range []string{"Traffic weight per subset", "Phase over time", "Verdicts per round", "Error rate by version (5xx)", "Latency by version (p50, p99)", "Rollout duration (time range)"} {
		if !titles[want] {
			t.Errorf("the dashboard lacks the panel %q", want)
		}
	}
}
