// Command benchpeers runs Flagger, Argo Rollouts and Fulcrum on the same
// local environment with the same traffic and prints one table of what each
// did with a bad and a healthy candidate (package e2e/peers).
//
//	go run ./e2e/cmd/benchpeers                      # every system and profile, twice
//	go run ./e2e/cmd/benchpeers -repeat 5 -systems flagger,fulcrum -profiles bad-1000rps
//
// The first run builds Flagger and Argo Rollouts from their Go modules into
// the environment's binary cache (minutes); `make bench-peers` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fulcrum-ml/fulcrum/e2e/cmd/internal/lifetime"
	"github.com/fulcrum-ml/fulcrum/e2e/peers"
)

func main() {
	repeat := flag.Int("repeat", 2, "runs of each system on each profile; the table shows the median and range")
	systems := flag.String("systems", strings.Join(peers.SystemNames, ","), "systems to run, comma-separated")
	var names []string
	for _, p := range peers.Profiles {
		names = append(names, p.Name)
	}
	profiles := flag.String("profiles", strings.Join(names, ","), "profiles to run, comma-separated")
	limit := flag.Duration("limit", 6*time.Minute, "longest run from the start of a rollout; without an outcome by then it is undecided")
	warmup := flag.Duration("warmup", 20*time.Second, "load on the stable version before each rollout starts")
	seed := flag.Uint64("seed", 1, "seed of the model servers' errors and the proxy's weighted draws")
	specFile := flag.String("fulcrum-spec", "", "YAML file of a ModelRollout spec merged over the benchmark's (to measure other strategies)")
	results := flag.String("results", "", "append every run as a JSON line to this file")
	keep := flag.Bool("keep", false, "keep the environment's folder with every controller's log")
	flag.Parse()
	// The clients' own logs (API warnings about CRD formats) would bury the
	// progress lines; failures come back as errors.
	ctrllog.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())

	opts := peers.Options{
		Systems: split(*systems), Profiles: split(*profiles),
		Repeat: *repeat, Limit: *limit, Warmup: *warmup, Seed: *seed,
		ResultsFile: *results, KeepDir: *keep,
		Command: "go run ./e2e/cmd/benchpeers " + strings.Join(os.Args[1:], " "),
	}
	opts.Command = strings.TrimSpace(opts.Command)
	if *specFile != "" {
		b, err := os.ReadFile(*specFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchpeers:", err)
			os.Exit(2)
		}
		opts.FulcrumSpecYAML = b
	}
	ctx, cancel := lifetime.Context(context.Background(), 0)
	defer cancel()
	if err := peers.Bench(ctx, opts, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchpeers:", err)
		cancel()
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
