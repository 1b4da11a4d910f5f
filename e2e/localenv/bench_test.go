package localenv_test

import (
	"context"
	"testing"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

// BenchmarkStart measures start-up with cached binaries, the cost every test
// package pays in TestMain:
//
//	go test -run '^$' -bench Start -benchtime 3x ./e2e/localenv/
func BenchmarkStart(b *testing.B) {
	if testing.Short() {
		b.Skip("starts a local Kubernetes environment")
	}
	cases := map[string]localenv.Options{
		"api-server-only": localenv.APIServerOnly(),
		"full":            {},
	}
	for name, opts := range cases {
		b.Run(name, func(b *testing.B) {
			// Build outside the timed loop.
			if _, err := localenv.EnsureBinaries(context.Background(), localenv.BuildOptions{}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				env, err := localenv.Start(context.Background(), opts)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := env.Stop(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
