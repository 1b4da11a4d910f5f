package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// BenchmarkThousandRollouts measures the fulcrum binary on the local API
// server with 1,000 ModelRollouts (one VirtualService each, one shared
// DestinationRule and Ready pods):
//   - s/step: time from the moment the first rollout may advance from its
//     first step until all 1,000 have advanced one step;
//   - writes/rollout/step: VirtualService + status (+ spec) updates made by
//     the controller during that step, per rollout (target <= 2);
//   - conflicts/rollout/step: rejected (409) writes in that window, apart;
//   - creates/rollout/step: Event writes in the same window, reported apart;
//   - peak-RSS-MiB: the controller process's high-water resident memory.
//
// Run: go test -run '^$' -bench ThousandRollouts -benchtime 1x -timeout 20m ./controller/integration/
func BenchmarkThousandRollouts(b *testing.B) {
	needEnv(b)
	const n = 1000
	const step = 60 * time.Second
	f := newFixtureTB(b)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("m%04d", i)
			f.createVS(name)
			f.create(&v1alpha1.ModelRollout{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
				Spec: v1alpha1.ModelRolloutSpec{
					VirtualService:  &v1alpha1.VirtualServiceRef{Name: name, Routes: []string{"predict"}},
					DestinationRule: "fraud", Stable: "v1", Candidate: "v2",
					Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{
						Steps: []int32{10, 50, 100}, MinStepDuration: metav1.Duration{Duration: step},
					}},
				},
			})
		}(i)
	}
	wg.Wait()
	b.ResetTimer()
	p := startFulcrum(b, "bench", "--max-concurrent-reconciles=8")

	count := func(stepIdx int32) (int, time.Time) {
		var list v1alpha1.ModelRolloutList
		if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
			b.Fatal(err)
		}
		done := 0
		var earliest time.Time
		for _, mr := range list.Items {
			if mr.Status.Step != nil && *mr.Status.Step == stepIdx && mr.Status.StepStartedAt != nil {
				done++
				if earliest.IsZero() || mr.Status.StepStartedAt.Time.Before(earliest) {
					earliest = mr.Status.StepStartedAt.Time
				}
			}
		}
		return done, earliest
	}
	var firstStart time.Time
	waitAll := func(stepIdx int32) time.Time {
		deadline := time.Now().Add(10 * time.Minute)
		for time.Now().Before(deadline) {
			done, earliest := count(stepIdx)
			if done == n {
				return earliest
			}
			time.Sleep(250 * time.Millisecond)
		}
		b.Fatalf("not all rollouts reached step %d", stepIdx)
		return time.Time{}
	}
	started := time.Now()
	firstStart = waitAll(0)
	b.Logf("all %d rollouts at their first step %.1fs after the controller started", n, time.Since(started).Seconds())
	writes0 := p.metricWith(b, "fulcrum_controller_writes_total", `result="ok"`)
	conflicts0 := p.metricWith(b, "fulcrum_controller_writes_total", `result="error"`)
	events0 := p.metric(b, `rest_client_requests_total{code="201",host=`) // POSTs that created (events)
	due := firstStart.Add(step)
	waitAll(1)
	allDone := time.Now()
	writes := p.metricWith(b, "fulcrum_controller_writes_total", `result="ok"`) - writes0
	conflicts := p.metricWith(b, "fulcrum_controller_writes_total", `result="error"`) - conflicts0
	events := p.metric(b, `rest_client_requests_total{code="201",host=`) - events0
	b.StopTimer()
	b.ReportMetric(allDone.Sub(due).Seconds(), "s/step")
	b.ReportMetric(writes/n, "writes/rollout/step")
	b.ReportMetric(conflicts/n, "conflicts/rollout/step")
	b.ReportMetric(events/n, "creates/rollout/step")
	b.ReportMetric(p.peakRSS(b), "peak-RSS-MiB")
}
