package localenv

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// Fault injection for reliability tests: the control plane's components
// fail the way they do in a real cluster (a crashed and restarted API
// server, a stalled etcd), in place, so that every client keeps the address,
// CA and tokens it has. These affect everything that uses the environment:
// run tests that call them alone, not beside parallel tests.

// RestartAPIServer kills kube-apiserver with SIGKILL (as a crash or an OOM
// kill would: open watches break without a goodbye), keeps it down for down,
// and starts it again with the same flags: same port, serving certificate,
// token file and etcd, so clients reconnect to what they knew. It returns
// once the new process answers /readyz.
func (e *Env) RestartAPIServer(ctx context.Context, down time.Duration) error {
	old, err := e.component(KubeAPIServer)
	if err != nil {
		return err
	}
	if err := old.stop(0); err != nil {
		return err
	}
	if down > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("restart %s: %w", KubeAPIServer, ctx.Err())
		case <-time.After(down):
		}
	}
	p, err := old.again()
	if err != nil {
		return err
	}
	e.replace(old, p)
	if err := waitHTTP(ctx, p, e.APIServerURL+"/readyz", e.CAData, e.AdminToken); err != nil {
		return fmt.Errorf("restarted %s: %w", KubeAPIServer, err)
	}
	return nil
}

// PauseEtcd stops etcd with SIGSTOP: the process keeps its sockets but
// answers nothing, as a member stalled on a full disk or a long GC pause
// would. Writes through the API server block until ResumeEtcd (or time out);
// reads the API server serves from its watch cache still answer. Always
// pair it with ResumeEtcd (Stop kills a paused etcd all the same).
func (e *Env) PauseEtcd() error { return e.signal(Etcd, syscall.SIGSTOP) }

// ResumeEtcd continues a paused etcd (SIGCONT); resuming a running one does
// nothing.
func (e *Env) ResumeEtcd() error { return e.signal(Etcd, syscall.SIGCONT) }

func (e *Env) signal(name string, sig syscall.Signal) error {
	p, err := e.component(name)
	if err != nil {
		return err
	}
	if err := p.exited(); err != nil {
		return err
	}
	return p.signal(sig)
}

// component is the running process of a component.
func (e *Env) component(name string) (*process, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.procs {
		if p.name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("the environment runs no %s", name)
}

// replace puts a restarted process where the old one was, so Stop and Pids
// see it.
func (e *Env) replace(old, p *process) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.procs {
		if e.procs[i] == old {
			e.procs[i] = p
		}
	}
}
