package rig

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
)

// Scrape is the scrape configuration of one Prometheus server, shared by
// models that come and go: each model adds its jobs and removes them when it
// is torn down, and every change rewrites and reloads the configuration.
type Scrape struct {
	mu   sync.Mutex
	srv  *promserver.Server
	jobs map[string]string
}

// NewScrape manages srv's configuration (replacing what it had).
func NewScrape(srv *promserver.Server) *Scrape {
	return &Scrape{srv: srv, jobs: map[string]string{}}
}

// Set adds or replaces the jobs under key (YAML items "- job_name: ...").
func (s *Scrape) Set(key, jobs string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[key] = jobs
	return s.srv.Rewrite(s.config())
}

// Remove drops the jobs under key.
func (s *Scrape) Remove(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.jobs, key)
	return s.srv.Rewrite(s.config())
}

// Config is the current configuration, e.g. to start another server that
// scrapes the same targets.
func (s *Scrape) Config() promserver.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.config()
}

func (s *Scrape) config() promserver.Config {
	keys := make([]string, 0, len(s.jobs))
	for k := range s.jobs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(strings.TrimRight(s.jobs[k], "\n") + "\n")
	}
	return promserver.Config{ScrapeInterval: time.Second, ExtraScrapeConfigs: b.String()}
}

// Server is the Prometheus this configuration belongs to.
func (s *Scrape) Server() *promserver.Server { return s.srv }

// staticJob is a scrape job of host:port targets.
func staticJob(job string, targets ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- job_name: %q\n  scrape_interval: 1s\n  static_configs:\n  - targets:\n", job)
	for _, t := range targets {
		fmt.Fprintf(&b, "    - %q\n", t)
	}
	return b.String()
}

// QueryByLabel runs an instant PromQL query against base and returns each
// series' value by the given label.
func QueryByLabel(ctx context.Context, base, label, q string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, body.Error)
	}
	out := map[string]float64{}
	for _, s := range body.Data.Result {
		f, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v: %w", q, s.Value, err)
		}
		out[s.Metric[label]] = f
	}
	return out, nil
}
