package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	f, _, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !f.controller || f.admin || f.webhook || f.leaderElect || f.leaseDuration != 15*time.Second {
		t.Fatalf("defaults %+v", f)
	}
	f, _, err = parseFlags([]string{"--leader-elect", "--lease-duration=4s", "--renew-deadline=3s", "--retry-period=1s", "--prometheus-url=http://p:9090"})
	if err != nil || !f.leaderElect || f.prometheusURL != "http://p:9090" {
		t.Fatalf("parsed %+v err %v", f, err)
	}
	if _, _, err := parseFlags([]string{"--lease-duration=2s", "--renew-deadline=3s"}); err == nil || !strings.Contains(err.Error(), "--lease-duration") {
		t.Fatalf("bad lease timing accepted: %v", err)
	}
}

func TestUnwiredComponentsFailClearly(t *testing.T) {
	for _, c := range components {
		if c.name == "admin" || c.name == "webhook" {
			if err := c.setup(t.Context(), nil, &flags{}); err != nil && !strings.Contains(err.Error(), "not wired") {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
	}
}
