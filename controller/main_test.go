package controller

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// TestMain sets controller-runtime's global logger. The reconciler logs
// through ctrl.LoggerFrom, which without a logger in ctx is that global one,
// and controller-runtime prints a goroutine stack trace ("log.SetLogger(...)
// was never called") when anything logs through it after the process's first
// 30 s. The tests' assertions tell what happened.
func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}
