package demo

import (
	"bytes"
	"fmt"
	"os"
	"sync"

	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"
)

// The demo process's own logs: controller-runtime's (the rig's client, API
// warnings) and client-go's through klog. They go to demo.log in the
// environment's folder, next to the components' logs, so the terminal shows
// only the demo's lines and fulcrumctl watch. controller-runtime needs its
// logger set in every process that uses it: without one it prints a stack
// trace ("log.SetLogger(...) was never called") the first time it logs after
// 30 s, which on a first run (minutes of building) is before the canary.
var (
	processLog  = &logFile{}
	loggersOnce sync.Once
)

// routeLogs points controller-runtime's and klog's global loggers at
// processLog, once per process.
func routeLogs() {
	loggersOnce.Do(func() {
		l := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(processLog)))
		ctrl.SetLogger(l)
		klog.SetLogger(l)
	})
}

// maxBuffered bounds what is kept before the log file exists.
const maxBuffered = 1 << 20

// logFile keeps log lines in memory until open names the file (the
// environment's folder exists only once it has started), and drops them after
// close (the folder is about to be removed).
type logFile struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	f      *os.File
	closed bool
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.f != nil:
		return l.f.Write(p)
	case !l.closed && l.buf.Len()+len(p) <= maxBuffered:
		l.buf.Write(p)
	}
	return len(p), nil
}

// hold keeps lines in memory from now until open.
func (l *logFile) hold() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = false
}

// open creates path, writes what was buffered to it and sends later lines
// there.
func (l *logFile) open(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create demo log: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.buf.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write demo log: %w", err)
	}
	l.f, l.closed = f, false
	return nil
}

// close closes the file; later lines are dropped until the next open.
func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
	l.buf.Reset()
	l.closed = true
}
