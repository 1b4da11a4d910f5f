package localenv

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Main runs a test package with an environment, for TestMain:
//
//	var env *localenv.Env
//
//	func TestMain(m *testing.M) { os.Exit(localenv.Main(m, localenv.APIServerOnly(), &env)) }
//
// Under `go test -short` it starts nothing and *env stays nil: tests that need
// it call t.Skip when env is nil (or testing.Short()). It returns the exit code.
//
// Main sets controller-runtime's global logger to logr.Discard(): the tests'
// assertions tell what happened, and without a logger controller-runtime
// prints a goroutine stack trace ("log.SetLogger(...) was never called") the
// first time a client, manager or controller logs after the process's first
// 30 s, which the environment's start-up and a first build take.
func Main(m *testing.M, opts Options, env **Env) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	ctrllog.SetLogger(logr.Discard())
	if testing.Short() {
		return m.Run()
	}
	if opts.Logf == nil {
		opts.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	}
	e, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "localenv: %v\n", err)
		return 1
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "localenv: stop: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
