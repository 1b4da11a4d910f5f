package dataplane

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
)

// backend is a fake model server that answers with its version and records
// what it received.
type backend struct {
	srv      *httptest.Server
	mu       sync.Mutex
	hosts    []string
	bodies   []string
	requests []http.Header
	code     int
	delay    time.Duration
	version  string
	header   http.Header // added to every answer
}

func newBackend(t *testing.T, version string, code int) *backend {
	b := &backend{version: version, code: code}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if b.delay > 0 {
			select {
			case <-time.After(b.delay):
			case <-r.Context().Done():
			}
		}
		b.mu.Lock()
		b.hosts = append(b.hosts, r.Host)
		b.bodies = append(b.bodies, string(body))
		b.requests = append(b.requests, r.Header.Clone())
		b.mu.Unlock()
		for k, vs := range b.header {
			w.Header()[k] = vs
		}
		w.Header().Set("x-model-version", b.version)
		w.WriteHeader(b.code)
		_, _ = io.WriteString(w, "hello from "+b.version)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

// lastRequest is the headers of the latest request the backend received.
func (b *backend) lastRequest(t *testing.T) http.Header {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) == 0 {
		t.Fatalf("backend %s received no request", b.version)
	}
	return b.requests[len(b.requests)-1]
}

func (b *backend) seen() ([]string, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.hosts...), append([]string(nil), b.bodies...)
}

func worldWith(t *testing.T, vs string, backends map[string]*backend) Snapshot {
	s := fraudWorld(t, vs)
	s.Pods = nil
	for v, b := range backends {
		s.Pods = append(s.Pods, pod("ml", "fraud-"+v, "fraud-"+v+"-abc12-x", map[string]string{"app": "fraud", "version": v}, b.addr()))
	}
	return s
}

func newTestProxy(t *testing.T, s Snapshot) (*Proxy, *httptest.Server, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	p, err := New(Config{Namespace: "ml", Seed: 1, Registry: reg, Reporters: []string{"destination", "source"}})
	if err != nil {
		t.Fatal(err)
	}
	p.SetTable(Build(s))
	front := httptest.NewServer(p.Handler("", 0))
	t.Cleanup(func() { front.Close(); p.Wait() })
	return p, front, reg
}

func post(t *testing.T, url, host, body string) (*http.Response, string) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	r.Host = host
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestProxyForwardsAndRecordsIstioMetrics(t *testing.T) {
	v1, v2 := newBackend(t, "v1", 200), newBackend(t, "v2", 500)
	_, front, reg := newTestProxy(t, worldWith(t, weightedVS(50, 50), map[string]*backend{"v1": v1, "v2": v2}))
	const n = 200
	byVersion := map[string]int{}
	for range n {
		resp, body := post(t, front.URL+"/v2/models/fraud/infer", "fraud.ml.svc.cluster.local", `{"inputs":[]}`)
		v := resp.Header.Get("x-model-version")
		if !strings.Contains(body, v) {
			t.Fatalf("body %q does not come from %s", body, v)
		}
		byVersion[v]++
	}
	if byVersion["v1"] < 60 || byVersion["v2"] < 60 {
		t.Fatalf("50/50 split served %v", byVersion)
	}
	_, bodies := v1.seen()
	if bodies[0] != `{"inputs":[]}` {
		t.Errorf("backend got body %q", bodies[0])
	}
	want := map[string]string{
		"reporter": "destination", "destination_service": "fraud.ml.svc.cluster.local",
		"destination_service_name": "fraud", "destination_service_namespace": "ml",
		"destination_workload": "fraud-v2", "destination_workload_namespace": "ml",
		"destination_app": "fraud", "destination_version": "v2", "destination_canonical_service": "fraud",
		"destination_canonical_revision": "v2", "response_code": "500", "response_flags": "-",
		"request_protocol": "http", "source_workload": "unknown", "destination_cluster": "Kubernetes",
		"connection_security_policy": "none",
	}
	if got := counterWith(t, reg, RequestsTotalMetric, want); got != float64(byVersion["v2"]) {
		t.Errorf("istio_requests_total%v = %v, want %d", want, got, byVersion["v2"])
	}
	want["reporter"] = "source"
	want["connection_security_policy"] = "unknown"
	if got := counterWith(t, reg, RequestsTotalMetric, want); got != float64(byVersion["v2"]) {
		t.Errorf("source reporter counted %v, want %d", got, byVersion["v2"])
	}
	if n := testutil.CollectAndCount(reg, RequestDurationMetric); n != 4 {
		t.Errorf("%s has %d series, want 4 (2 versions x 2 reporters)", RequestDurationMetric, n)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != RequestDurationMetric {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if len(h.GetBucket()) != len(IstioDurationBuckets) || h.GetBucket()[0].GetUpperBound() != 0.5 || h.GetBucket()[18].GetUpperBound() != 3600000 {
			t.Errorf("duration buckets %v are not Istio's", h.GetBucket())
		}
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			if lp.GetName() == "destination_principal" && lp.GetValue() != "unknown" {
				t.Errorf("destination_principal = %q", lp.GetValue())
			}
		}
	}
}

// counterWith sums the counter series whose labels include want.
func counterWith(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsInclude(m.GetLabel(), want) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func labelsInclude(lps []*dto.LabelPair, want map[string]string) bool {
	have := map[string]string{}
	for _, lp := range lps {
		have[lp.GetName()] = lp.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func TestProxyMirrorsWithoutWaiting(t *testing.T) {
	v1, v2 := newBackend(t, "v1", 200), newBackend(t, "v2", 200)
	v2.delay = 300 * time.Millisecond // a slow shadow must not slow the client
	p, front, reg := newTestProxy(t, worldWith(t, `
metadata: {name: fraud}
spec:
  hosts: [fraud]
  http:
  - route: [{destination: {host: fraud, subset: v1}}]
    mirror: {host: fraud, subset: v2}
`, map[string]*backend{"v1": v1, "v2": v2}))
	resp, _ := post(t, front.URL+"/infer", "fraud", "payload")
	if got := resp.Header.Get("x-model-version"); got != "v1" {
		t.Fatalf("client answered by %q, want v1", got)
	}
	if hosts, _ := v2.seen(); len(hosts) > 0 {
		t.Fatalf("the client's answer came after the slow mirror finished: the proxy waited for it")
	}
	p.Wait()
	hosts, bodies := v2.seen()
	if len(hosts) != 1 || hosts[0] != "fraud-shadow" || bodies[0] != "payload" {
		t.Fatalf("mirror saw hosts %v bodies %v, want one copy to fraud-shadow with the body", hosts, bodies)
	}
	if got := counterWith(t, reg, RequestsTotalMetric, map[string]string{"reporter": "destination", "destination_version": "v2"}); got != 1 {
		t.Errorf("mirror counted %v times by the destination reporter, want 1", got)
	}
	if got := counterWith(t, reg, RequestsTotalMetric, map[string]string{"reporter": "source", "destination_version": "v2"}); got != 0 {
		t.Errorf("source reporter counted the mirror %v times; the client never sent it", got)
	}
}

func TestProxyFailureFlags(t *testing.T) {
	slow := newBackend(t, "v1", 200)
	slow.delay = 2 * time.Second
	dead := newBackend(t, "v2", 200)
	dead.srv.Close()
	s := worldWith(t, `
metadata: {name: fraud}
spec:
  hosts: [fraud]
  http:
  - match: [{headers: {x-slow: {}}}]
    timeout: 0.05s
    route: [{destination: {host: fraud, subset: v1}}]
  - match: [{headers: {x-dead: {}}}]
    route: [{destination: {host: fraud, subset: v2}}]
  - match: [{headers: {x-nopods: {}}}]
    route: [{destination: {host: fraud, subset: v3}}]
`, map[string]*backend{"v1": slow, "v2": dead})
	s.Pods = append(s.Pods, pod("ml", "fraud-v3", "fraud-v3-x", map[string]string{"app": "fraud", "version": "v3"}, "127.0.0.1:1", func(p *corev1.Pod) { notReady(p) }))
	_, front, reg := newTestProxy(t, s)
	cases := []struct {
		hdr, flag string
		code      int
	}{
		{"x-slow", FlagUpstreamTimeout, 504},
		{"x-dead", FlagUpstreamFailure, 503},
		{"x-nopods", FlagNoHealthyUpstream, 503},
		{"x-none", FlagNoRoute, 404},
	}
	for _, tc := range cases {
		r, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, front.URL+"/", nil)
		r.Host = "fraud"
		r.Header.Set(tc.hdr, "1")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code || resp.Header.Get("x-envoy-response-flags") != tc.flag {
			t.Errorf("%s: %d %q, want %d %s", tc.hdr, resp.StatusCode, resp.Header.Get("x-envoy-response-flags"), tc.code, tc.flag)
		}
		if got := counterWith(t, reg, RequestsTotalMetric, map[string]string{"reporter": "source", "response_flags": tc.flag, "response_code": strconv.Itoa(tc.code)}); got != 1 {
			t.Errorf("%s: source reporter counted %v requests with flag %s, want 1", tc.hdr, got, tc.flag)
		}
	}
	// Requests that never reached a pod have no destination reporter.
	if got := counterWith(t, reg, RequestsTotalMetric, map[string]string{"reporter": "destination", "response_flags": FlagNoHealthyUpstream}); got != 0 {
		t.Errorf("destination reporter counted %v UH requests", got)
	}
}
