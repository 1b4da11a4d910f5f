// Package localenv runs a real, throw-away Kubernetes control plane on this
// machine for tests and the demo: etcd, kube-apiserver (token authentication,
// RBAC), kube-controller-manager, kube-scheduler, kwok with one fake node that
// turns pods Ready without a kubelet, a real Prometheus, and the Istio,
// Gateway API (HTTPRoute, GRPCRoute, Gateway, GatewayClass, ReferenceGrant)
// and Fulcrum CRDs.
//
// The binaries are built once from the tools modules under e2e/tools and
// cached outside git (see EnsureBinaries). Each test package starts its own
// environment from TestMain (see Main); every component listens on free
// loopback ports, so packages run in parallel. Stop kills every process;
// Pdeathsig kills them too if the test binary dies first.
//
// controller-runtime's envtest starts etcd and kube-apiserver only; Fulcrum
// needs pods that become Ready (kwok, scheduler, controllers), RBAC with
// per-user tokens, and Prometheus, so this package starts the processes itself.
package localenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
)

// Options say which components to start and who may log in.
type Options struct {
	// Users are extra identities with bearer tokens (a random token is
	// made for each empty one; read them back from Env.Users).
	Users []User

	// Skip components a package does not need; the API server with the
	// CRDs alone starts fastest. Without the controller manager, namespaces
	// get no default ServiceAccount and deleted ones never go away; without
	// the scheduler or kwok, pods stay Pending.
	SkipControllerManager bool
	SkipScheduler         bool
	SkipKwok              bool
	SkipPrometheus        bool

	// NoEndpointSlices runs the controller manager without the EndpointSlice
	// and Endpoints controllers, so a Service's endpoints are only those a
	// test adds: the real-Istio suite routes to loopback WorkloadEntries
	// and must never see the kwok pods' 10.x addresses.
	NoEndpointSlices bool

	// IstioVersions, when set, are the only networking.istio.io versions
	// the API server serves (the first is stored), as on a cluster with an
	// older Istio: []string{"v1beta1"} or []string{"v1alpha3"}.
	IstioVersions []string

	// Prometheus is the initial configuration of the Prometheus server
	// (targets, extra scrape configs, rule files). Dir and Log are set by
	// the environment. Rewrite it later with Env.Prometheus.Rewrite.
	Prometheus promserver.Config

	// NodeName of the kwok node; "kwok-node-0" when empty.
	NodeName string

	// Dir is the parent of the environment's folder (os.TempDir() when
	// empty). The folder holds the kubeconfig, keys, data and one log per
	// component.
	Dir string
	// KeepDir keeps the folder after Stop (also with FULCRUM_KEEP_ENV=1).
	KeepDir bool

	// StartTimeout bounds start-up once binaries are built; 2m when zero.
	StartTimeout time.Duration

	// Logf reports progress, notably the first, minutes-long build.
	Logf func(format string, args ...any)
}

// APIServerOnly are options for packages that need only the API server
// with the CRDs installed: no controller manager, scheduler, kwok or
// Prometheus.
func APIServerOnly() Options {
	return Options{SkipControllerManager: true, SkipScheduler: true, SkipKwok: true, SkipPrometheus: true}
}

// Env is a running environment.
type Env struct {
	// Dir holds the kubeconfig, keys, data and the components' logs
	// (DIR/etcd.log, DIR/kube-apiserver.log, ...).
	Dir string
	// Kubeconfig is the path of a kubeconfig with the admin token.
	Kubeconfig string
	// Config is the admin's REST config (group system:masters).
	Config *rest.Config
	// Client is a clientset for Config.
	Client kubernetes.Interface
	// APIServerURL is https://127.0.0.1:PORT.
	APIServerURL string
	// CAData is the PEM CA that signed the API server's certificate.
	CAData []byte
	// AdminToken is the admin's bearer token.
	AdminToken string
	// Users are Options.Users with their tokens filled in, plus the admin.
	Users []User
	// NodeName is the kwok node ("" when kwok is skipped).
	NodeName string
	// Prometheus is the running server (nil when skipped); PrometheusURL
	// its base address.
	Prometheus    *promserver.Server
	PrometheusURL string

	opts     Options
	mu       sync.Mutex // guards procs, replaced in place by the fault methods
	procs    []*process // in start order
	stopOnce sync.Once
	stopErr  error
}

// Start builds missing binaries, starts every component the options ask for
// and returns once all are ready: CRDs Established, the kwok node Ready.
// On error everything started is stopped and the folder is kept for its logs;
// when ctx is cancelled (Ctrl-C) the folder is removed.
func Start(ctx context.Context, opts Options) (*Env, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.NodeName == "" {
		opts.NodeName = "kwok-node-0"
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	names := []string{Etcd, KubeAPIServer}
	if !opts.SkipControllerManager {
		names = append(names, KubeControllerManager)
	}
	if !opts.SkipScheduler {
		names = append(names, KubeScheduler)
	}
	if !opts.SkipKwok {
		names = append(names, Kwok)
	}
	bins, err := EnsureBinaries(ctx, BuildOptions{Names: names, Logf: opts.Logf})
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}

	removeAbandoned(opts.Dir)
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	// Free ports are found by listening on port 0 and closing; another
	// package's environment may take one before our component binds it.
	// That rare race is retried with fresh ports.
	for attempt := 1; ; attempt++ {
		e, err := startOnce(ctx, opts, root, bins)
		if err == nil || attempt == 3 || !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			return e, err
		}
		opts.Logf("localenv: a port was taken by another process; retrying with new ports: %v", err)
	}
}

var errPortTaken = errors.New("a component's port was taken")

func startOnce(ctx context.Context, opts Options, root string, bins *Binaries) (*Env, error) {
	dir, err := os.MkdirTemp(opts.Dir, "fulcrum-env-")
	if err != nil {
		return nil, fmt.Errorf("create environment folder: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", ownerFile, err)
	}
	e := &Env{Dir: dir, opts: opts, AdminToken: randomToken()}
	if err := e.start(ctx, root, bins); err != nil {
		// The folder is kept for its logs, unless the start is retried (a
		// port was taken) or was cancelled (Ctrl-C): then nothing failed.
		portTaken := e.portTaken()
		cancelled := errors.Is(ctx.Err(), context.Canceled)
		e.opts.KeepDir = !portTaken && !cancelled
		_ = e.Stop()
		switch {
		case portTaken:
			return nil, fmt.Errorf("%w: %w", errPortTaken, err)
		case cancelled:
			return nil, fmt.Errorf("start local environment: %w", err)
		}
		return nil, fmt.Errorf("start local environment (logs in %s): %w", dir, err)
	}
	return e, nil
}

// portTaken reports whether a component's log says its address was in use.
func (e *Env) portTaken() bool {
	logs, _ := filepath.Glob(filepath.Join(e.Dir, "*.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil && bytes.Contains(b, []byte("address already in use")) {
			return true
		}
	}
	return false
}

const (
	ownerFile = "owner.pid" // pid of the process that started the environment
	keptFile  = "kept"      // marks a folder kept on purpose
)

// removeAbandoned deletes environment folders under parent whose owner died
// without Stop (a test binary killed by its timeout): their processes died
// with it through Pdeathsig, but the folders (etcd data, logs) stay. Folders
// kept on purpose, or of a live owner, are left alone.
func removeAbandoned(parent string) {
	if parent == "" {
		parent = os.TempDir()
	}
	dirs, _ := filepath.Glob(filepath.Join(parent, "fulcrum-env-*"))
	for _, d := range dirs {
		if isFile(filepath.Join(d, keptFile)) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // being created, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

// ConfigForToken is a REST config for the API server authenticating with
// token (one of Options.Users' tokens, or any other to test rejection).
func (e *Env) ConfigForToken(token string) *rest.Config {
	c := rest.CopyConfig(e.Config)
	c.BearerToken = token
	return c
}

// UserToken is the bearer token of a user named in Options.Users (or
// AdminUser), for clients that speak HTTP themselves.
func (e *Env) UserToken(name string) (string, error) {
	for _, u := range e.Users {
		if u.Name == name {
			return u.Token, nil
		}
	}
	return "", fmt.Errorf("user %q is not in the environment: add it to Options.Users before Start", name)
}

// ConfigForUser is a REST config for a user named in Options.Users.
func (e *Env) ConfigForUser(name string) (*rest.Config, error) {
	tok, err := e.UserToken(name)
	if err != nil {
		return nil, err
	}
	return e.ConfigForToken(tok), nil
}

// LogPath is the log file of a component (Etcd, KubeAPIServer, ...,
// "prometheus").
func (e *Env) LogPath(component string) string {
	return filepath.Join(e.Dir, component+".log")
}

// Pids are the process ids of every process the environment started, by
// component name.
func (e *Env) Pids() map[string]int {
	out := map[string]int{}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.procs {
		out[p.name] = p.pid()
	}
	if e.Prometheus != nil {
		out["prometheus"] = e.Prometheus.Pid()
	}
	return out
}

// Stop kills every process of the environment, waits for each, and removes
// its folder (unless KeepDir or FULCRUM_KEEP_ENV=1). Safe to call twice.
func (e *Env) Stop() error {
	if e == nil {
		return nil
	}
	e.stopOnce.Do(func() {
		var errs []error
		e.mu.Lock()
		defer e.mu.Unlock()
		for i := len(e.procs) - 1; i >= 0; i-- {
			if err := e.procs[i].stop(0); err != nil {
				errs = append(errs, err)
			}
		}
		if e.Prometheus != nil {
			e.Prometheus.Stop()
		}
		if !e.opts.KeepDir && os.Getenv("FULCRUM_KEEP_ENV") != "1" {
			if err := os.RemoveAll(e.Dir); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", e.Dir, err))
			}
		} else {
			_ = os.WriteFile(filepath.Join(e.Dir, keptFile), nil, 0o644)
		}
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}
