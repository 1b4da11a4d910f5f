// Package integration runs the controller against a real kube-apiserver
// (e2e/localenv, with kwok making pods Ready): in process with a scripted
// analyzer, and as the real fulcrum binary for process kills and leader
// failover. Skipped under go test -short.
package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

var env *localenv.Env

func TestMain(m *testing.M) {
	os.Exit(localenv.Main(m, localenv.Options{SkipPrometheus: true}, &env))
}

// timeout bounds every wait; FULCRUM_E2E_TIMEOUT overrides it (seconds).
func timeout() time.Duration {
	if s := os.Getenv("FULCRUM_E2E_TIMEOUT"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return time.Duration(n) * time.Second
		}
	}
	return 60 * time.Second
}

func needEnv(t testing.TB) {
	t.Helper()
	if env == nil {
		t.Skip("needs the local Kubernetes environment (not under -short)")
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// fulcrumBinary builds cmd/fulcrum once per test run.
func fulcrumBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := localenv.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "fulcrum-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "fulcrum")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "./cmd/fulcrum")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/fulcrum: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}
