// Command sim replays seeded canary traffic through Flagger's
// fixed-threshold rule and Fulcrum's controller loop (the README's
// configuration, and the peers' 10% steps) and prints a Markdown table of
// exposure, speed and error rates, with Wald's SPRT as reference.
//
//	go run ./analysis/cmd/sim -seeds 200
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/fulcrum-ml/fulcrum/analysis/sim"
)

func main() {
	seeds := flag.Int("seeds", 200, "simulated rollouts per scenario and policy (seeds 1..N)")
	horizon := flag.Float64("horizon", 7200, "seconds after which an undecided rollout is reported as undecided")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "parallel simulations")
	flag.Parse()
	if *seeds < 1 || *horizon <= 0 {
		fmt.Fprintln(os.Stderr, "sim: -seeds must be >= 1 and -horizon > 0")
		os.Exit(2)
	}
	policies := []sim.Policy{sim.DefaultFlagger, sim.PeerFlagger, sim.DefaultFulcrum, sim.PeerFulcrum}
	var rows []sim.Summary
	for _, sc := range sim.Scenarios() {
		rows = append(rows, sim.Evaluate(sc, policies, *seeds, *horizon, *workers)...)
	}
	fmt.Printf("Seeds 1..%d per row, horizon %.0f s.\n\n", *seeds, *horizon)
	for _, p := range policies {
		fmt.Printf("- %s: %v\n", p.Name(), p)
	}
	fmt.Println()
	sim.WriteTable(os.Stdout, rows)
	fmt.Println()
	fmt.Println("Wald's SPRT reference (stable rate known, α = β = 0.01, one look per request):")
	fmt.Println()
	fmt.Println("| test | true rate | expected candidate requests |")
	fmt.Println("|---|---:|---:|")
	for _, r := range []struct {
		name       string
		p0, p1, at float64
	}{
		{"0.5% vs 2%", 0.005, 0.02, 0.02},
		{"0.5% vs 2%", 0.005, 0.02, 0.005},
		{"0.5% vs 0.8%", 0.005, 0.008, 0.008},
		{"0.5% vs 1.0% (maxIncrease 0.005)", 0.005, 0.01, 0.005},
	} {
		fmt.Printf("| %s | %.1f%% | %.0f |\n", r.name, 100*r.at, sim.SPRTExpectedSamples(r.p0, r.p1, 0.01, 0.01, r.at))
	}
}
