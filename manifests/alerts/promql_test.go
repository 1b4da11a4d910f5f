package alerts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
	"github.com/fulcrum-ml/fulcrum/manifests/alerts"
	"github.com/fulcrum-ml/fulcrum/manifests/grafana"
)

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert string `json:"alert"`
			Expr  string `json:"expr"`
		} `json:"rules"`
	} `json:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	if err := yaml.Unmarshal(alerts.Rules, &rf); err != nil {
		t.Fatalf("parse fulcrum-rules.yaml: %v", err)
	}
	if len(rf.Groups) == 0 {
		t.Fatal("fulcrum-rules.yaml has no groups")
	}
	return rf
}

// grafanaQuery is one PromQL expression of the dashboard, where it came from
// and whether the synthetic data must make it return something.
type grafanaQuery struct {
	where, expr string
}

var labelValues = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// dashboardQueries returns every PromQL expression of the dashboard: panel
// targets and the queries behind its variables (label_values(selector, label)
// runs as its selector).
func dashboardQueries(t *testing.T) []grafanaQuery {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(grafana.Dashboard, &d); err != nil {
		t.Fatalf("parse fulcrum-dashboard.json: %v", err)
	}
	var out []grafanaQuery
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, grafanaQuery{where: fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), expr: tg.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if err := json.Unmarshal(v.Query, &s); err != nil {
				t.Fatalf("variable %s: query is neither an object nor a string", v.Name)
			}
			q.Query = s
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("variable %s: query %q is not label_values(selector, label)", v.Name, q.Query)
		}
		out = append(out, grafanaQuery{where: "variable " + v.Name, expr: m[1]})
	}
	return out
}

// concrete replaces Grafana's variables with values a plain Prometheus takes.
func concrete(t *testing.T, expr string) string {
	t.Helper()
	r := strings.NewReplacer(
		"$__rate_interval", "1m", "${__rate_interval}", "1m",
		"$__range", "5m", "${__range}", "5m", "$__interval", "15s", "${__interval}", "15s",
		"$namespace", ".*", "${namespace}", ".*", "$rollout", ".*", "${rollout}", ".*",
		"$service", ".*", "${service}", ".*", "$reporter", "destination", "${reporter}", "destination",
	)
	out := r.Replace(expr)
	if m := regexp.MustCompile(`\$\{?[A-Za-z_]\w*`).FindString(out); m != "" {
		t.Fatalf("expression keeps the unknown variable %s: %s", m, expr)
	}
	return out
}

type queryResult struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	} `json:"data"`
}

func query(t *testing.T, base, expr string) queryResult {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		t.Fatalf("query prometheus: %v", err)
	}
	defer resp.Body.Close()
	var r queryResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decode prometheus answer (status %s): %v", resp.Status, err)
	}
	return r
}

// TestQueriesRunOnPrometheus runs every PromQL expression of the Grafana
// dashboard and of the alert rules on a real Prometheus that scrapes
// synthetic Fulcrum and Istio metrics: each must parse and execute, and each
// dashboard query must find data, which catches misspelt metric and label
// names. The rules are also loaded by Prometheus itself and must evaluate
// cleanly, and the Failed rollout of the synthetic data must raise an alert.
func TestQueriesRunOnPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Prometheus server; skipped under -short")
	}
	exp := &exporter{}
	target := httptest.NewServer(exp)
	defer target.Close()
	rules, err := filepath.Abs("fulcrum-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	host := strings.TrimPrefix(target.URL, "http://")
	srv, err := promserver.Start(ctx, promserver.Config{
		ScrapeInterval:     time.Second,
		ExtraScrapeConfigs: fmt.Sprintf("- job_name: fulcrum\n  static_configs:\n    - targets: [%q]\n", host),
		RuleFiles:          []string{rules},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	// Rates need at least two samples inside their window.
	deadline := time.Now().Add(60 * time.Second)
	for exp.scrapes.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if exp.scrapes.Load() < 4 {
		t.Fatalf("prometheus scraped the synthetic target %d times in 60s, want 4", exp.scrapes.Load())
	}

	t.Run("dashboard", func(t *testing.T) {
		qs := dashboardQueries(t)
		if len(qs) < 15 {
			t.Fatalf("found %d dashboard queries, want every panel's", len(qs))
		}
		for _, q := range qs {
			r := query(t, srv.URL, concrete(t, q.expr))
			if r.Status != "success" {
				t.Errorf("%s: %s: %s\n%s", q.where, r.ErrorType, r.Error, q.expr)
				continue
			}
			if len(r.Data.Result) == 0 {
				t.Errorf("%s returns no data on metrics that should match it:\n%s", q.where, q.expr)
				continue
			}
			// A misspelt grouping label still returns data, without that label.
			for _, l := range groupingLabels(q.expr) {
				if !anyHasLabel(r.Data.Result, l) {
					t.Errorf("%s groups by %q but no series carries it (misspelt?):\n%s", q.where, l, q.expr)
				}
			}
		}
	})

	t.Run("rules", func(t *testing.T) {
		n := 0
		for _, g := range loadRules(t).Groups {
			for _, rule := range g.Rules {
				n++
				if r := query(t, srv.URL, rule.Expr); r.Status != "success" {
					t.Errorf("alert %s: %s: %s\n%s", rule.Alert, r.ErrorType, r.Error, rule.Expr)
				}
			}
		}
		if n < 6 {
			t.Errorf("found %d rules, want the rollout, controller and provider alerts", n)
		}
	})

	t.Run("rules evaluated by prometheus", func(t *testing.T) {
		var failedPending bool
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			var got struct {
				Data struct {
					Groups []struct {
						Rules []struct {
							Name, Health, LastError, State string
							LastEvaluation                 time.Time
							Alerts                         []struct {
								Labels map[string]string
								State  string
							}
						}
					}
				}
			}
			resp, err := http.Get(srv.URL + "/api/v1/rules")
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			evaluated, total := 0, 0
			var problems []string
			failedPending = false
			for _, g := range got.Data.Groups {
				for _, r := range g.Rules {
					total++
					if !r.LastEvaluation.IsZero() && r.LastEvaluation.Year() > 2000 {
						evaluated++
					}
					if r.Health == "err" {
						problems = append(problems, fmt.Sprintf("%s: %s", r.Name, r.LastError))
					}
					for _, a := range r.Alerts {
						if r.Name == "FulcrumRolloutFailed" && a.Labels["rollout"] == "ocr" {
							failedPending = true
						}
					}
				}
			}
			if len(problems) > 0 {
				t.Fatalf("rules fail in prometheus: %v", problems)
			}
			if total > 0 && evaluated == total && failedPending {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Errorf("after 30s the rules were not all evaluated, or FulcrumRolloutFailed was not pending for team-c/ocr (pending=%v)", failedPending)
	})
}

// TestPromtool runs promtool's own checks: the rule file is valid and each
// alert fires on the series it is meant for (fulcrum-rules.test.yaml).
func TestPromtool(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found: install Debian's prometheus package to run it")
	}
	for _, args := range [][]string{{"check", "rules", "fulcrum-rules.yaml"}, {"test", "rules", "fulcrum-rules.test.yaml"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestPrometheusRuleMatchesRuleFile keeps the PrometheusRule variant equal to
// the plain rule file.
func TestPrometheusRuleMatchesRuleFile(t *testing.T) {
	var plain map[string]any
	if err := yaml.Unmarshal(alerts.Rules, &plain); err != nil {
		t.Fatal(err)
	}
	var cr struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Spec       map[string]any `json:"spec"`
	}
	if err := yaml.Unmarshal(alerts.PrometheusRule, &cr); err != nil {
		t.Fatal(err)
	}
	if cr.APIVersion != "monitoring.coreos.com/v1" || cr.Kind != "PrometheusRule" {
		t.Errorf("fulcrum-prometheusrule.yaml is %s %s, want monitoring.coreos.com/v1 PrometheusRule", cr.APIVersion, cr.Kind)
	}
	if !reflect.DeepEqual(plain["groups"], cr.Spec["groups"]) {
		t.Error("fulcrum-prometheusrule.yaml spec.groups differs from fulcrum-rules.yaml groups: rebuild it (see its header)")
	}
	if _, err := os.Stat("fulcrum-rules.test.yaml"); err != nil {
		t.Errorf("the promtool unit tests are missing: %v", err)
	}
}

var byClause = regexp.MustCompile(`\bby\s*\(([^)]*)\)`)

// groupingLabels lists the labels of every "by (...)" clause except le,
// which histogram_quantile consumes.
func groupingLabels(expr string) []string {
	var out []string
	for _, m := range byClause.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" && l != "le" {
				out = append(out, l)
			}
		}
	}
	return out
}

func anyHasLabel(result []json.RawMessage, label string) bool {
	for _, raw := range result {
		var s struct {
			Metric map[string]string `json:"metric"`
		}
		if json.Unmarshal(raw, &s) == nil && s.Metric[label] != "" {
			return true
		}
	}
	return false
}
