// Command demo is `make demo`: Fulcrum running a live canary on a local
// Kubernetes environment, with the dashboard, the admin API and tokens
// printed, until Ctrl-C; then every process it started is stopped and it
// exits 0. `make demo` builds it and runs the binary rather than `go run`,
// which exits 1 on Ctrl-C whatever its program returns.
//
//	go run ./e2e/cmd/demo                              # healthy v2: promoted
//	go run ./e2e/cmd/demo -candidate-error-rate 0.05   # bad v2: rolled back
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/fulcrum-ml/fulcrum/e2e/demo"
)

func main() {
	var o demo.Options
	// A flag set of its own: controller-runtime, which the demo links,
	// registers --kubeconfig on the global one, and the demo makes its
	// own cluster.
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	fs.Float64Var(&o.CandidateErrorRate, "candidate-error-rate", 0, "share of v2's requests answered with 500 (e.g. 0.05 for a candidate that gets rolled back)")
	fs.Float64Var(&o.Rate, "rate", 200, "requests per second through the proxy")
	fs.DurationVar(&o.ExitAfter, "exit-after", 0, "stop by itself this long after the canary started (0: run until Ctrl-C)")
	_ = fs.Parse(os.Args[1:]) // ExitOnError: exits on a bad flag
	o.Out = os.Stdout
	os.Exit(run(o))
}

// run is the demo until it ends. Ctrl-C (SIGINT to the terminal's process
// group) or SIGTERM is how a person ends it, also while it is still starting:
// Run stops everything it started, and the exit status is 0.
func run(o demo.Options) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := demo.Run(ctx, o)
	switch {
	case ctx.Err() != nil:
		if err != nil {
			fmt.Println("Stopped before the canary started; everything the demo started is stopped.")
		}
		return 0
	case err != nil:
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	return 0
}
