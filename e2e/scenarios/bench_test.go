package scenarios

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// BenchmarkManualRollback measures a rollback request through the admin API
// (as an ML engineer, TokenReview and SubjectAccessReview on the real API
// server, the webhook validating the intent) until a watch sees the
// VirtualService at 100% stable, with live load on the proxy. Each iteration
// starts the canary again first (not timed).
//
//	go test -run '^$' -bench ManualRollback -benchtime 30x ./e2e/scenarios/
func BenchmarkManualRollback(b *testing.B) {
	if env == nil {
		b.Skip("needs the local Kubernetes environment (not under -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m, err := env.NewModel(ctx, b, rig.ModelConfig{NamespacePrefix: "bench", Versions: []rig.Version{{Name: "v1", Behavior: healthy}, {Name: "v2", Behavior: healthy}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.WaitBackends(ctx, waitLimit(), "v1", "v2"); err != nil {
		b.Fatal(err)
	}
	if _, err := m.Load(ctx, b, rate, 5*time.Minute); err != nil {
		b.Fatal(err)
	}
	f, err := env.StartFulcrum(ctx, b, rig.FulcrumConfig{Name: m.NS + "-fulcrum", Namespaces: []string{m.NS}, Controller: true, Admin: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.CreateRollout(ctx, rig.RolloutConfig{MinStepDuration: time.Hour}); err != nil {
		b.Fatal(err)
	}
	c := &client.Client{Server: f.AdminURL, Token: userToken(b, rig.EngineerUser)}
	var all []time.Duration
	b.ResetTimer()
	for range b.N {
		all = append(all, rollbackOnce(ctx, b, m, c, true))
	}
	b.StopTimer()
	b.ReportMetric(float64(quantile(all, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(quantile(all, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(slices.Max(all).Microseconds())/1000, "max-ms")
}
