// Command dataplane runs the end-to-end rig's data-plane stand-in: a proxy
// that routes by the VirtualServices, DestinationRules, HTTPRoutes,
// GRPCRoutes, Services and Pods it watches and exports Istio's standard
// request metrics on /metrics.
//
//	dataplane --kubeconfig K --listen 127.0.0.1:15001=fraud.ml --metrics-addr 127.0.0.1:15090
//
// Once serving it prints one JSON line with the bound addresses to stdout,
// so a parent that asked for port 0 can read them.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/cmd/internal/lifetime"
	"github.com/fulcrum-ml/fulcrum/e2e/dataplane"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"k8s.io/client-go/tools/clientcmd"
)

type listeners []dataplane.Listener

func (l *listeners) String() string { return fmt.Sprint(*l) }

func (l *listeners) Set(v string) error {
	addr, host, _ := strings.Cut(v, "=")
	if addr == "" {
		return fmt.Errorf("--listen %q: want ADDR or ADDR=HOST, e.g. 127.0.0.1:15001=fraud.ml", v)
	}
	*l = append(*l, dataplane.Listener{Addr: addr, Host: host})
	return nil
}

func main() {
	var (
		ls          listeners
		kubeconfig  = flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the API server to watch (required)")
		watchNS     = flag.String("watch-namespace", "", "watch only this namespace (all when empty)")
		defaultNS   = flag.String("namespace", "default", "namespace that short Host headers such as \"fraud\" resolve in")
		apiVersion  = flag.String("api-version", "v1", "networking.istio.io version to read: v1 or v1beta1")
		metricsAddr = flag.String("metrics-addr", "127.0.0.1:0", "address of /metrics")
		seed        = flag.Uint64("seed", 0, "seed for weighted and mirror draws (0: random)")
		reporters   = flag.String("reporters", "destination", "comma-separated reporter label values to record: destination, source")
		exitAfter   = flag.Duration("exit-after", 0, "exit after this long (0: until SIGTERM or the parent exits)")
		verbose     = flag.Int("v", 0, "log verbosity")
	)
	flag.Var(&ls, "listen", "ADDR or ADDR=HOST to serve (repeatable); with HOST every request is routed as sent to HOST, else by its Host header")
	flag.Parse()
	log := funcr.NewJSON(func(obj string) { fmt.Fprintln(os.Stderr, obj) }, funcr.Options{Verbosity: *verbose})
	if err := run(logr.NewContext(context.Background(), log), ls, *kubeconfig, *watchNS, *defaultNS, *apiVersion, *metricsAddr, *seed, *reporters, *exitAfter); err != nil {
		fmt.Fprintln(os.Stderr, "dataplane:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, ls listeners, kubeconfig, watchNS, defaultNS, apiVersion, metricsAddr string, seed uint64, reporters string, exitAfter time.Duration) error {
	if kubeconfig == "" {
		return fmt.Errorf("--kubeconfig is required (or set KUBECONFIG)")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	ctx, stop := lifetime.Context(ctx, exitAfter)
	defer stop()
	r, err := dataplane.Start(ctx, dataplane.StartConfig{
		Proxy:       dataplane.Config{Namespace: defaultNS, Seed: seed, Reporters: strings.Split(reporters, ",")},
		Rest:        rc,
		Watch:       dataplane.WatchConfig{Namespace: watchNS, APIVersion: apiVersion},
		Listeners:   ls,
		MetricsAddr: metricsAddr,
	})
	if err != nil {
		return err
	}
	out, _ := json.Marshal(map[string]any{"listen": r.Addrs, "metrics": r.MetricsAddr})
	fmt.Println(string(out))
	<-ctx.Done()
	r.Stop()
	return nil
}
