// Command demo is `make demo`: Fulcrum running a live canary on a local
// Kubernetes environment, with the dashboard, the admin API and tokens
// printed, until Ctrl-C; then every process it started is stopped.
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
	flag.Float64Var(&o.CandidateErrorRate, "candidate-error-rate", 0, "share of v2's requests answered with 500 (e.g. 0.05 for a candidate that gets rolled back)")
	flag.Float64Var(&o.Rate, "rate", 200, "requests per second through the proxy")
	flag.DurationVar(&o.ExitAfter, "exit-after", 0, "stop by itself after this long (0: run until Ctrl-C)")
	flag.Parse()
	o.Out = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := demo.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
