package demo_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/demo"
)

// syncBuffer is written by the demo and its child process at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Given the demo with -exit-after, when it runs, then it prints the
// dashboard, admin API and tokens, shows the canary progressing, and when
// it ends every process it started has exited.
func TestDemoRunsAndCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local Kubernetes environment (not under -short)")
	}
	var out syncBuffer
	res, err := demo.Run(context.Background(), demo.Options{Rate: 200, ExitAfter: 45 * time.Second, Out: &out})
	text := out.String()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, text)
	}
	for _, want := range []string{"Dashboard:     http://127.0.0.1:", "Admin API:     http://127.0.0.1:", "Admin token:", "Viewer token:", "phase=Progressing", "Stopping:"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if len(res.Pids) < 7 {
		t.Errorf("pids %v: want the environment's, fulcrum's and fulcrumctl's", res.Pids)
	}
	for _, pid := range res.Pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after the demo ended (kill -0: %v)", pid, err)
		}
	}
	t.Logf("demo output:\n%s", text)
}
