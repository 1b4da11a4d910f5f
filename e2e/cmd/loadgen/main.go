// Command loadgen sends a steady, bounded stream of inference requests to a
// loopback address and prints what answered, as JSON, when it stops.
//
//	loadgen --url http://127.0.0.1:15001/v2/models/fraud/infer --host fraud.ml \
//	  --rate 100 --duration 1m --requests 10000 --users 500
//
// With --every it also prints a JSON line per interval while it runs.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/loadgen"
)

type headers http.Header

func (h headers) String() string { return fmt.Sprint(http.Header(h)) }

func (h headers) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("--header %q: want NAME=VALUE", v)
	}
	http.Header(h).Add(k, val)
	return nil
}

type summary struct {
	Sent            int                    `json:"sent"`
	Completed       int                    `json:"completed"`
	ByVersion       map[string]int         `json:"byVersion"`
	ByCode          map[int]int            `json:"byCode"`
	ByVersionCode   map[string]map[int]int `json:"byVersionCode"`
	TransportErrors int                    `json:"transportErrors"`
	ElapsedSeconds  float64                `json:"elapsedSeconds"`
	MeanLatencyMs   float64                `json:"meanLatencyMs"`
}

func toSummary(r loadgen.Report) summary {
	return summary{r.Sent, r.Completed, r.ByVersion, r.ByCode, r.ByVersionCode, r.TransportErrors, r.Elapsed.Seconds(), float64(r.MeanLatency()) / float64(time.Millisecond)}
}

func main() {
	hdr := headers{}
	var (
		target   = flag.String("url", "", "target URL on loopback, e.g. http://127.0.0.1:15001/v2/models/fraud/infer (required)")
		host     = flag.String("host", "", "Host header (the data plane routes by it)")
		rate     = flag.Float64("rate", 10, "requests per second")
		requests = flag.Int("requests", 0, "stop after this many requests (0: no count bound)")
		duration = flag.Duration("duration", time.Minute, "stop after this long (0: no time bound; then --requests is required)")
		users    = flag.Int("users", 100, "size of the x-user-id pool")
		seed     = flag.Uint64("seed", 0, "seed for user draws (0: time)")
		every    = flag.Duration("every", 0, "print a progress line per interval (0: only at the end)")
	)
	flag.Var(hdr, "header", "extra NAME=VALUE request header (repeatable)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g, err := loadgen.Start(ctx, loadgen.Config{URL: *target, Host: *host, Rate: *rate, MaxRequests: *requests, Duration: *duration, Users: *users, Seed: *seed, Header: http.Header(hdr)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	if *every > 0 {
		t := time.NewTicker(*every)
		defer t.Stop()
	loop:
		for {
			select {
			case <-g.Done():
				break loop
			case <-t.C:
				_ = enc.Encode(toSummary(g.Snapshot()))
			}
		}
	}
	_ = enc.Encode(toSummary(g.Wait()))
}
