package localenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// process is one running component. Each runs in its own process group, and
// Pdeathsig kills it when the process that started it dies, so a crashed
// test binary leaves nothing behind.
type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, set before done closes

	// What started it, to start it again in place (see restart).
	dir, bin string
	args     []string
}

func startProcess(dir, name, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, log: logPath, cmd: cmd, done: make(chan struct{}), dir: dir, bin: bin, args: args}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// again starts the same binary with the same flags, folder and log
// (appended to) as p, which must have exited.
func (p *process) again() (*process, error) {
	return startProcess(p.dir, p.name, p.bin, p.args...)
}

// signal sends sig to the process group (SIGSTOP and SIGCONT pause and
// resume every process of the component).
func (p *process) signal(sig syscall.Signal) error {
	if err := syscall.Kill(-p.pid(), sig); err != nil {
		return fmt.Errorf("signal %s (pgid %d) with %s: %w", p.name, p.pid(), sig, err)
	}
	return nil
}

// exited reports whether the process ended, with a message naming its log.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); see %s:\n%s", p.name, p.err, p.log, logTail(p.log, 25))
	default:
		return nil
	}
}

// stop kills the process group and waits for the process. The environment
// is thrown away, so there is no graceful shutdown to wait for.
func (p *process) stop(grace time.Duration) error {
	pgid := p.pid()
	select {
	case <-p.done:
	default:
		if grace > 0 {
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(grace):
			}
		}
	}
	// Kill the group even after the leader exited: a child may linger.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s (pgid %d): %w", p.name, pgid, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, pgid)
	}
	return nil
}

func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return tail(string(b), n)
}
