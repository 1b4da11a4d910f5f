package dataplane

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkRoute is the pure routing decision for a request that falls
// through seven match routes (uri, header, query) to the default one.
func BenchmarkRoute(b *testing.B) {
	tbl := Build(fraudWorld(b, matchVS))
	rnd := rand.New(rand.NewPCG(1, 2))
	r := req("fraud", "/v2/models/fraud/infer", "x-user-id", "user-7")
	b.ReportAllocs()
	for b.Loop() {
		if d := tbl.Route(r, rnd); d.Backend == nil {
			b.Fatal("no backend")
		}
	}
}

// BenchmarkLoopback compares one request straight to a trivial backend with
// the same request through the proxy (sequential: the difference is the
// proxy's added latency), and measures the proxy's throughput with parallel
// clients (requests per second on this machine's loopback).
//
//	go test -run '^$' -bench Loopback -benchtime 3s ./e2e/dataplane/
func BenchmarkLoopback(b *testing.B) {
	backendSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("x-model-version", "v1")
		_, _ = io.WriteString(w, `{"outputs":[{"name":"score","data":[0.5]}]}`)
	}))
	defer backendSrv.Close()
	addr := strings.TrimPrefix(backendSrv.URL, "http://")
	s := fraudWorld(b, weightedVS(50, 50))
	for _, p := range s.Pods {
		p.Annotations[BackendAnnotation] = addr
	}
	p, err := New(Config{Namespace: "ml", Seed: 1, Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	p.SetTable(Build(s))
	front := httptest.NewServer(p.Handler("fraud.ml", 0))
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 256}, Timeout: 10 * time.Second}
	do := func(b *testing.B, url string) {
		resp, err := client.Post(url, "application/json", strings.NewReader(`{"inputs":[]}`))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	for _, tc := range []struct{ name, url string }{{"direct", backendSrv.URL}, {"proxy", front.URL}} {
		b.Run(tc.name+"/sequential", func(b *testing.B) {
			for b.Loop() {
				do(b, tc.url+"/v2/models/fraud/infer")
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.SetParallelism(8)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					do(b, tc.url+"/v2/models/fraud/infer")
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}
