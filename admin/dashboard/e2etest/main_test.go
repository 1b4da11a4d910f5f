// Package e2etest drives the dashboard in headless Chromium against the real
// admin API and the real controller, both in this process, on a local
// Kubernetes control plane (e2e/localenv: kube-apiserver with token
// authentication and RBAC, kwok making pods Ready). Where the stand-in test
// in admin/dashboard checks the page's logic, this one checks that the page,
// the API, the roles users apply and the controller agree.
//
// It is skipped under go test -short and when Chromium is missing.
package e2etest

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fulcrum-ml/fulcrum/admin/admintest"
	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

var env *localenv.Env

// chromiumPath is the browser the brief names; FULCRUM_CHROMIUM overrides it.
func chromiumPath() string {
	if p := os.Getenv("FULCRUM_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

func TestMain(m *testing.M) {
	flag.Parse()
	// controller-runtime's global logger (client-go reflectors log through
	// it); the test's own loggers carry what matters.
	ctrllog.SetLogger(logr.Discard())
	if _, err := os.Stat(chromiumPath()); err != nil && !testing.Short() {
		// Starting a control plane for a test that will skip wastes a minute.
		fmt.Fprintf(os.Stderr, "e2etest: no Chromium at %s (install chromium or set FULCRUM_CHROMIUM); skipping\n", chromiumPath())
		os.Exit(m.Run())
	}
	var users []localenv.User
	for _, u := range admintest.TestUsers {
		users = append(users, localenv.User{Name: u.Name, Groups: u.Groups})
	}
	os.Exit(localenv.Main(m, localenv.Options{Users: users, SkipPrometheus: true}, &env))
}

// timeout bounds each wait on the cluster; FULCRUM_E2E_TIMEOUT overrides it
// (seconds) on a slow machine.
func timeout() time.Duration {
	if s := os.Getenv("FULCRUM_E2E_TIMEOUT"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return time.Duration(n) * time.Second
		}
	}
	return 60 * time.Second
}

func needEnv(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end dashboard test skipped under -short")
	}
	if _, err := os.Stat(chromiumPath()); err != nil {
		t.Skipf("no Chromium at %s: install it with 'apt-get install -y chromium' (or set FULCRUM_CHROMIUM)", chromiumPath())
	}
	if env == nil {
		t.Skip("needs the local Kubernetes environment")
	}
}
