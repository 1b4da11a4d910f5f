// Command loadgen sends a steady, bounded stream of inference requests to a
// loopback address and prints what answered, as JSON, when it stops.
//
//	loadgen --url http://127.0.0.1:15001/v2/models/fraud/infer --host fraud.ml \
//	  --rate 100 --duration 1m --requests 10000 --users 500
//
// With --every it also prints a JSON line per interval while it runs. For
// sticky experiments, --cookies gives each user its own cookie jar, and
// --group-header x-user-group --groups v1=0.5,v2=0.5 gives each user a
// fixed group header; "crossed" counts users answered by two versions.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
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
	UsersByVersion  map[string]int         `json:"usersByVersion"`
	Crossed         int                    `json:"crossed"`
}

func toSummary(r loadgen.Report) summary {
	return summary{r.Sent, r.Completed, r.ByVersion, r.ByCode, r.ByVersionCode, r.TransportErrors, r.Elapsed.Seconds(), float64(r.MeanLatency()) / float64(time.Millisecond), r.UsersByVersion, r.Crossed}
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
		cookies  = flag.Bool("cookies", false, "give each user its own cookie jar, so answers' Set-Cookie sticks to the user")
		groupHdr = flag.String("group-header", "", "request header carrying each user's fixed group, e.g. x-user-group (needs --groups)")
		groups   = flag.String("groups", "", "group shares for --group-header, e.g. v1=0.5,v2=0.5")
	)
	flag.Var(hdr, "header", "extra NAME=VALUE request header (repeatable)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := loadgen.Config{URL: *target, Host: *host, Rate: *rate, MaxRequests: *requests, Duration: *duration, Users: *users, Seed: *seed, Header: http.Header(hdr), Cookies: *cookies}
	if *groupHdr != "" || *groups != "" {
		group, err := parseGroups(*groups)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(2)
		}
		cfg.GroupHeader, cfg.Group = *groupHdr, group
	}
	g, err := loadgen.Start(ctx, cfg)
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

// parseGroups reads --groups "v1=0.5,v2=0.5" into a loadgen.Shares group.
func parseGroups(s string) (func(int) string, error) {
	shares := map[string]float64{}
	for _, part := range strings.Split(s, ",") {
		name, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		share, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("--groups %q: want NAME=SHARE,..., e.g. v1=0.5,v2=0.5", s)
		}
		shares[name] = share
	}
	group, err := loadgen.Shares(shares)
	if err != nil {
		return nil, fmt.Errorf("--groups: %w", err)
	}
	return group, nil
}
