package admin_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/admin/admintest"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// BenchmarkGetRollout measures GET of one rollout on loopback under
// concurrent load, through the whole stack: rate limiter (off), token and
// access checks (TokenReview/SubjectAccessReview, cached), informer cache
// read, JSON. It reports requests per second and p50/p99 latency.
//
//	go test -run '^$' -bench GetRollout -benchtime 20000x ./admin/
func BenchmarkGetRollout(b *testing.B) {
	if env == nil {
		b.Skip("needs the local Kubernetes environment (not under -short)")
	}
	ctx := context.Background()
	if err := admintest.InstallRoles(ctx, env.Client); err != nil {
		b.Fatal(err)
	}
	run := admintest.Start(b, env.Config, admintest.Options{Quiet: true})
	ns, err := env.CreateNamespace(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := run.Fixture(ctx, ns, v1alpha1.PhaseProgressing); err != nil {
		b.Fatal(err)
	}
	token := ""
	for _, u := range env.Users {
		if u.Name == "vera" {
			token = u.Token
		}
	}
	url := fmt.Sprintf("%s/api/v1/namespaces/%s/rollouts/fraud", run.URL, ns)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	get := func() error {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}
	// Warm the caches (and wait for the informer to have the rollout).
	deadline := time.Now().Add(10 * time.Second)
	for get() != nil {
		if time.Now().After(deadline) {
			b.Fatal("rollout not readable")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(8) // 8 × GOMAXPROCS concurrent clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			if err := get(); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		all = append(all, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}
