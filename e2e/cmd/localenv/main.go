// Command localenv starts Fulcrum's local Kubernetes environment (etcd,
// kube-apiserver, controller manager, scheduler, kwok with one node,
// Prometheus, the Istio, Gateway API and Fulcrum CRDs), prints how to reach it, and
// tears it down on Ctrl-C or SIGTERM, exiting 0.
//
//	go run ./e2e/cmd/localenv            # start and wait
//	go run ./e2e/cmd/localenv -build     # only build the cached binaries
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

func main() {
	buildOnly := flag.Bool("build", false, "build the environment's binaries into the cache and exit")
	apiOnly := flag.Bool("api-server-only", false, "start only etcd and the API server with the CRDs")
	keep := flag.Bool("keep", false, "keep the environment's folder (logs, data) after stopping")
	timeout := flag.Duration("timeout", 2*time.Minute, "start-up timeout once the binaries are built")
	flag.Parse()
	os.Exit(run(*buildOnly, *apiOnly, *keep, *timeout))
}

func run(buildOnly, apiOnly, keep bool, timeout time.Duration) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

	if buildOnly {
		start := time.Now()
		bins, err := localenv.EnsureBinaries(ctx, localenv.BuildOptions{Logf: logf})
		if err != nil {
			return failed(ctx, err)
		}
		for _, n := range []string{localenv.Etcd, localenv.KubeAPIServer, localenv.KubeControllerManager, localenv.KubeScheduler, localenv.Kwok} {
			fmt.Printf("%s\t%s\n", n, bins.Path(n))
		}
		fmt.Printf("kwok stages\t%s\n", bins.KwokStages)
		logf("localenv: binaries ready in %s", time.Since(start).Round(time.Millisecond))
		return 0
	}

	opts := localenv.Options{}
	if apiOnly {
		opts = localenv.APIServerOnly()
	}
	opts.KeepDir, opts.StartTimeout, opts.Logf = keep, timeout, logf
	env, err := localenv.Start(ctx, opts)
	if err != nil {
		return failed(ctx, err)
	}
	defer func() {
		logf("localenv: stopping")
		if err := env.Stop(); err != nil {
			logf("localenv: stop: %v", err)
		}
	}()

	fmt.Printf("kubeconfig:   %s\n", env.Kubeconfig)
	fmt.Printf("export KUBECONFIG=%s\n", env.Kubeconfig)
	fmt.Printf("API server:   %s\n", env.APIServerURL)
	if env.PrometheusURL != "" {
		fmt.Printf("Prometheus:   %s\n", env.PrometheusURL)
	}
	fmt.Printf("admin token:  %s\n", env.AdminToken)
	if env.NodeName != "" {
		fmt.Printf("kwok node:    %s\n", env.NodeName)
	}
	fmt.Printf("logs:         %s/*.log\n", env.Dir)
	fmt.Println("Ctrl-C stops the environment.")
	<-ctx.Done()
	return 0
}

// failed is the exit status after err: 0 when Ctrl-C or SIGTERM (ctx) ended
// the build or the start, which is what was asked for.
func failed(ctx context.Context, err error) int {
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "localenv: stopped")
		return 0
	}
	fmt.Fprintf(os.Stderr, "localenv: %v\n", err)
	return 1
}
