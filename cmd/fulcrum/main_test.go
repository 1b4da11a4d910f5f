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

func TestClusterDomainFlag(t *testing.T) {
	f, _, err := parseFlags(nil)
	if err != nil || f.clusterDomain != "cluster.local" {
		t.Fatalf("default --cluster-domain %q, err %v", f.clusterDomain, err)
	}
	if f, _, err = parseFlags([]string{"--cluster-domain=corp.internal"}); err != nil || f.clusterDomain != "corp.internal" {
		t.Fatalf("--cluster-domain=corp.internal: %q, err %v", f.clusterDomain, err)
	}
	if _, _, err := parseFlags([]string{"--cluster-domain=svc.corp.internal"}); err == nil || !strings.Contains(err.Error(), "--cluster-domain") {
		t.Fatalf("--cluster-domain=svc.corp.internal accepted: %v", err)
	}
}

func TestWebhookNeedsCertificates(t *testing.T) {
	// Checked before the manager is touched, so a nil manager is fine here.
	err := setupWebhook(t.Context(), nil, &flags{webhook: true})
	if err == nil || !strings.Contains(err.Error(), "--webhook-cert-dir") || !strings.Contains(err.Error(), "--webhook-self-signed") {
		t.Fatalf("want an error naming both ways to get certificates, got %v", err)
	}
}

func TestSplitList(t *testing.T) {
	got := splitList(" a, ,b,")
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("splitList = %q", got)
	}
}
