// Package installtest checks the commands of docs/install.md: it reads the
// guide's sh blocks with a shell parser, expands their variables as the
// shell would, and builds, renders, dry-runs or runs every command this
// machine can (no containers here: no kind, Istio or Prometheus). What it
// cannot run it lists in the test log, and a command it does not know fails
// the test, so a new step in the guide is checked or said to be uncheckable.
//
// It is a module of its own so that Helm and the shell parser stay out of
// Fulcrum's go.mod; `make install-guide-test` (part of `make test`) runs it.
package installtest

import (
	"bytes"
	"log"
	"os"
	"testing"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

// env is the local kube-apiserver (with Fulcrum's and Istio's CRDs) for the
// dry runs; nil under -short.
var env *localenv.Env

func TestMain(m *testing.M) {
	// Helm's loader logs every symbolic link it follows; the chart's crds/
	// and files/ are links on purpose.
	log.SetOutput(dropLines{os.Stderr, []byte("found symbolic link in path")})
	os.Exit(localenv.Main(m, localenv.APIServerOnly(), &env))
}

// dropLines writes the log lines that do not contain skip.
type dropLines struct {
	w    *os.File
	skip []byte
}

func (d dropLines) Write(p []byte) (int, error) {
	if bytes.Contains(p, d.skip) {
		return len(p), nil
	}
	return d.w.Write(p)
}
