package demo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/demo"
	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
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
	res, err := demo.Run(context.Background(), demo.Options{Rate: 200, ExitAfter: 20 * time.Second, Out: &out})
	text := out.String()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, text)
	}
	for _, want := range []string{"Dashboard:     http://127.0.0.1:", "Admin API:     http://127.0.0.1:", "Admin token:", "Viewer token:", "phase=Progressing", "Stopping:"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	for _, bad := range []string{"log.SetLogger", "goroutine "} {
		if strings.Contains(text, bad) {
			t.Errorf("output has %q (a stack trace)", bad)
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

// demoBinary builds e2e/cmd/demo into a temporary folder, once.
var demoBinary = sync.OnceValues(func() (string, error) {
	root, err := localenv.RepoRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "fulcrum-demo-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "demo")
	cmd := exec.Command("go", "build", "-o", bin, "./e2e/cmd/demo")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./e2e/cmd/demo: %w\n%s", err, out)
	}
	return bin, nil
})

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER: processes orphaned
// below this one become its children instead of init's.
const prSetChildSubreaper = 36

// Given the demo started as a terminal starts a foreground job (a process
// group of its own), when Ctrl-C sends SIGINT to that group while it is
// starting, or while the canary runs under `make demo`, then it ends without
// an error (exit 0; make reports nothing), prints no stack trace, removes its
// environment's folder and leaves no process behind: this test process is a
// child subreaper, so anything the demo left running (or did not wait for)
// would become its child.
func TestDemoCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local Kubernetes environment (not under -short)")
	}
	bin, err := demoBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(bin)) })
	root, err := localenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", errno)
	}
	t.Cleanup(func() { _, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 0, 0) })

	cases := []struct {
		name string
		args []string // the command; the demo binary when empty
		// after is the line after which Ctrl-C comes; stopped is printed then.
		after, stopped string
	}{
		{name: "while it builds fulcrum", after: "Building fulcrum and fulcrumctl", stopped: "Stopped before the canary started"},
		// make builds its own copy into BIN, a temporary folder.
		{name: "make demo, while the canary runs", args: []string{"make", "demo", "BIN=" + t.TempDir()}, after: "phase=Progressing", stopped: "Stopping: fulcrumctl watch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			cmd := exec.Command(bin)
			if len(tc.args) > 0 {
				cmd = exec.Command(tc.args[0], tc.args[1:]...)
				cmd.Dir = root
			}
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()

			// Given: the demo has printed the line.
			deadline := time.After(15 * time.Minute) // a first run builds the environment's binaries
			for !strings.Contains(out.String(), tc.after) {
				select {
				case err := <-exited:
					t.Fatalf("exited (%v) before %q:\n%s", err, tc.after, out.String())
				case <-deadline:
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					t.Fatalf("no %q within 15m:\n%s", tc.after, out.String())
				case <-time.After(100 * time.Millisecond):
				}
			}
			folder := envFolder.FindStringSubmatch(out.String())

			// When: Ctrl-C.
			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-exited:
			case <-time.After(2 * time.Minute):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				t.Fatalf("still running 2m after Ctrl-C:\n%s", out.String())
			}

			// Then.
			text := out.String()
			if err != nil && !(len(tc.args) > 0 && endedBySIGINT(err)) {
				// make dies of the SIGINT it got once its recipe ends, as
				// in a terminal; it reports a failed recipe in its output.
				t.Errorf("exit after Ctrl-C: %v, want status 0", err)
			}
			for _, bad := range []string{"make: ***", "log.SetLogger", "goroutine ", "Detected at", "panic:"} {
				if strings.Contains(text, bad) {
					t.Errorf("output has %q", bad)
				}
			}
			if !strings.Contains(text, tc.stopped) {
				t.Errorf("output lacks %q", tc.stopped)
			}
			if folder == nil {
				t.Errorf("output names no environment folder")
			} else if _, err := os.Stat(folder[1]); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("environment folder %s still there after Ctrl-C (stat: %v)", folder[1], err)
			}
			for _, p := range adoptedChildren(t) {
				t.Errorf("process left by the demo: %s", p)
			}
			if t.Failed() {
				t.Logf("output:\n%s", text)
			}
		})
	}
}

// endedBySIGINT reports whether err is a process's death by SIGINT.
func endedBySIGINT(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGINT
}

// envFolder finds the environment's folder in the demo's output.
var envFolder = regexp.MustCompile(`\(folder (\S+?),`)

// adoptedChildren describes the processes that became this process's
// children through the subreaper (a live one, or a zombie nobody waited
// for), and reaps them.
func adoptedChildren(t *testing.T) []string {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces, so split after ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		pid, _ := strconv.Atoi(strings.Fields(s)[0])
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		out = append(out, fmt.Sprintf("pid %d state %s %s %s", pid, fields[0], s[strings.IndexByte(s, '(')+1:i], strings.ReplaceAll(string(cmdline), "\x00", " ")))
		_ = syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
	}
	return out
}
