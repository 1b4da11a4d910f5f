package test

import (
	"bytes"
	"log"
	"os"
	"testing"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

// env is the local kube-apiserver (with the Fulcrum and Istio CRDs) for the
// dry run; nil under -short.
var env *localenv.Env

func TestMain(m *testing.M) {
	// Helm's loader logs every symbolic link it follows; crds/ and files/
	// are links on purpose.
	log.SetOutput(dropLines{os.Stderr, []byte("found symbolic link in path")})
	os.Exit(localenv.Main(m, localenv.APIServerOnly(), &env))
}

// dropLines writes log lines that do not contain skip.
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
