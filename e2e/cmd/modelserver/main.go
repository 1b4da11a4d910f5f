// Command modelserver runs one version of the end-to-end rig's model: an
// Open Inference Protocol server whose errors, latency and scores follow
// the flags.
//
//	modelserver --model fraud --version v2 --addr 127.0.0.1:9002 \
//	  --error-rate 0.02 --latency-median 20ms --latency-p99 120ms --score beta:2,5 \
//	  --reward 0.05 --reward-value normal:20,5
//
// Once serving it prints {"addr":"HOST:PORT"} to stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/cmd/internal/lifetime"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
)

func main() {
	var (
		model     = flag.String("model", "", "model name served at /v2/models/NAME (required)")
		version   = flag.String("version", "", "model version, reported in the x-model-version header and metrics (required)")
		addr      = flag.String("addr", "127.0.0.1:0", "listen address")
		errRate   = flag.Float64("error-rate", 0, "share of inference requests answered 500, 0..1")
		median    = flag.Duration("latency-median", 0, "median latency (log-normal)")
		p99       = flag.Duration("latency-p99", 0, "99th percentile latency; equal to the median for a constant, 0 with median 0 for none")
		score     = flag.String("score", modelserver.DefaultScore.String(), "score distribution: beta:A,B or normal:MEAN,SD (clipped to [0,1])")
		reward    = flag.Float64("reward", 0, "probability a served prediction is a success (click, conversion), 0..1; counted in model_feedback_total")
		value     = flag.String("reward-value", "", "what a success is worth: normal:MEAN,SD (floored at 0); empty for 1, observed in model_reward")
		seed      = flag.Uint64("seed", 0, "seed for draws (0: random)")
		exitAfter = flag.Duration("exit-after", 0, "exit after this long (0: until SIGTERM or the parent exits)")
	)
	flag.Parse()
	rv, err := modelserver.ParseValue(*value)
	if err != nil {
		fmt.Fprintln(os.Stderr, "modelserver: --reward-value:", err)
		os.Exit(1)
	}
	b := modelserver.Behavior{ErrorRate: *errRate, Latency: modelserver.Latency{Median: *median, P99: *p99}, Reward: *reward, RewardValue: rv}
	if err := run(*model, *version, *addr, b, *score, *seed, *exitAfter); err != nil {
		fmt.Fprintln(os.Stderr, "modelserver:", err)
		os.Exit(1)
	}
}

func run(model, version, addr string, b modelserver.Behavior, score string, seed uint64, exitAfter time.Duration) error {
	sc, err := modelserver.ParseScore(score)
	if err != nil {
		return fmt.Errorf("--score: %w", err)
	}
	b.Score = sc
	if b.Latency.P99 == 0 {
		b.Latency.P99 = b.Latency.Median
	}
	ctx, stop := lifetime.Context(context.Background(), exitAfter)
	defer stop()
	r, err := modelserver.Start(ctx, modelserver.Config{
		Model: model, Version: version, Seed: seed, Behavior: b,
	}, addr)
	if err != nil {
		return err
	}
	out, _ := json.Marshal(map[string]string{"addr": r.Addr})
	fmt.Println(string(out))
	<-ctx.Done()
	r.Stop()
	return nil
}
