// Package istio_test runs Fulcrum against real Istio: istiod built from the
// istio.io/istio module, out of cluster on the local environment, with its
// validating webhook on the API server. Skipped under go test -short.
package istio_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fulcrum-ml/fulcrum/e2e/istio/istiod"
	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

var (
	kube  *localenv.Env
	rigs  *rig.Env
	istio *istiod.Istiod
)

func TestMain(m *testing.M) {
	flag.Parse()
	ctrllog.SetLogger(logr.Discard())
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	// The full environment (kwok pods turn Ready for Fulcrum's readiness
	// gate, Prometheus scrapes the models), without EndpointSlices: the
	// Services' endpoints are loopback WorkloadEntries only, so istiod
	// never hands a client a kwok pod's 10.x address.
	opts := rig.LocalenvOptions()
	opts.NoEndpointSlices = true
	opts.Logf = logf
	start := time.Now()
	var err error
	if kube, err = localenv.Start(ctx, opts); err != nil {
		logf("start local environment: %v", err)
		return 1
	}
	defer kube.Stop()
	if rigs, err = rig.Setup(ctx, kube, kube.Dir); err != nil {
		logf("rig: %v", err)
		return 1
	}
	if istio, err = istiod.Start(ctx, kube, kube.Dir, istiod.Options{Logf: logf}); err != nil {
		logf("istiod: %v", err)
		return 1
	}
	defer istio.Stop()
	logf("istio suite: environment and istiod ready in %s (%s)", time.Since(start).Round(time.Second), kube.Dir)
	code := m.Run()
	// Every write of the suite was judged by istiod only if its webhook
	// was still being called at the end.
	if err := istiod.ProbeWebhook(ctx, kube); err != nil {
		logf("istiod's validating webhook is no longer called: %v", err)
		code = 1
	}
	return code
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local environment and istiod")
	}
}
