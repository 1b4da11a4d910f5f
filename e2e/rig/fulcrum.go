package rig

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"

	whmanifests "github.com/fulcrum-ml/fulcrum/manifests/webhook"
)

// FulcrumConfig says which components a fulcrum process runs.
type FulcrumConfig struct {
	// Name names the log file (Env.Dir/NAME.log).
	Name string
	// Namespaces limits the process to these namespaces (--namespaces);
	// every namespace when empty.
	Namespaces []string
	// Controller, Admin, Webhook switch the components on.
	Controller, Admin, Webhook bool
	// WebhookAddr is the webhook's loopback host:port (the address given
	// to InstallWebhooks); a free port when empty.
	WebhookAddr string
	// PrometheusURL for analysis; the environment's when empty.
	PrometheusURL string
	// LeaseID turns leader election on: a Lease of that name in
	// fulcrum-system (where the shipped RBAC allows Leases), with short
	// durations so a killed leader is replaced within seconds.
	LeaseID string
	// Args are extra flags.
	Args []string
}

// Fulcrum is a running fulcrum process.
type Fulcrum struct {
	// AdminURL is http://ADDR of the admin API and dashboard ("" without it).
	AdminURL string
	// WebhookAddr is host:port of the webhook ("" without it).
	WebhookAddr string
	// MetricsAddr serves /metrics; ProbeAddr /healthz and /readyz.
	MetricsAddr, ProbeAddr string
	// Log is the process's log file.
	Log string

	cmd  *exec.Cmd
	done chan struct{}
}

// StartFulcrum runs the fulcrum binary as FulcrumUser and waits until it
// answers /readyz (and the admin API /readyz, its informers synced). It dies
// with the caller (Pdeathsig) and is killed at cleanup.
func (e *Env) StartFulcrum(ctx context.Context, c Cleaner, cfg FulcrumConfig) (*Fulcrum, error) {
	f := &Fulcrum{MetricsAddr: freeAddr(), ProbeAddr: freeAddr(), done: make(chan struct{})}
	prom := cfg.PrometheusURL
	if prom == "" {
		prom = e.Kube.PrometheusURL
	}
	args := []string{
		"--kubeconfig=" + e.FulcrumKubeconfig,
		"--metrics-bind-address=" + f.MetricsAddr,
		"--health-probe-bind-address=" + f.ProbeAddr,
		"--prometheus-url=" + prom,
		fmt.Sprintf("--controller=%t", cfg.Controller),
	}
	if len(cfg.Namespaces) > 0 {
		args = append(args, "--namespaces="+strings.Join(cfg.Namespaces, ","))
	}
	if cfg.Admin {
		addr := freeAddr()
		f.AdminURL = "http://" + addr
		args = append(args, "--admin", "--admin-bind-address="+addr, "--admin-token-file="+e.TokenFile)
	}
	if cfg.Webhook {
		f.WebhookAddr = cfg.WebhookAddr
		if f.WebhookAddr == "" {
			f.WebhookAddr = freeAddr()
		}
		_, port, _ := net.SplitHostPort(f.WebhookAddr)
		args = append(args, "--webhook", "--webhook-self-signed", "--webhook-bind-host=127.0.0.1",
			"--webhook-port="+port, "--webhook-hosts=127.0.0.1", "--webhook-ca-namespace=fulcrum-system")
	}
	if cfg.LeaseID != "" {
		args = append(args, "--leader-elect", "--leader-election-namespace=fulcrum-system", "--leader-election-id="+cfg.LeaseID,
			"--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms")
	}
	args = append(args, cfg.Args...)
	name := cfg.Name
	if name == "" {
		name = "fulcrum"
	}
	f.Log = filepath.Join(e.Dir, name+".log")
	logf, err := os.OpenFile(f.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	f.cmd = exec.Command(e.FulcrumBin, args...)
	f.cmd.Stdout, f.cmd.Stderr = logf, logf
	// A process group of its own: a Ctrl-C in the terminal reaches the
	// caller, which stops fulcrum in its turn, not fulcrum directly.
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := f.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start fulcrum: %w", err)
	}
	go func() { _ = f.cmd.Wait(); logf.Close(); close(f.done) }()
	c.Cleanup(f.Kill)
	if err := f.waitReady(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Fulcrum) waitReady(ctx context.Context, limit time.Duration) error {
	urls := []string{"http://" + f.ProbeAddr + "/readyz"}
	if f.AdminURL != "" {
		urls = append(urls, f.AdminURL+"/readyz")
	}
	deadline := time.Now().Add(limit)
	for _, u := range urls {
		for {
			if ok, _ := get200(ctx, u); ok {
				break
			}
			select {
			case <-f.done:
				return fmt.Errorf("fulcrum exited during start (code %d); see %s", f.cmd.ProcessState.ExitCode(), f.Log)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("fulcrum not ready at %s after %s; see %s", u, limit, f.Log)
			}
		}
	}
	return nil
}

func get200(ctx context.Context, u string) (bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// Pid is the process id.
func (f *Fulcrum) Pid() int { return f.cmd.Process.Pid }

// Done is closed when the process has exited.
func (f *Fulcrum) Done() <-chan struct{} { return f.done }

// Kill sends SIGKILL (no graceful shutdown, no Lease release) and waits.
func (f *Fulcrum) Kill() { f.signal(syscall.SIGKILL) }

// Freeze stops the process with SIGSTOP: it keeps its connections, Lease
// and caches but does nothing, as a process stalled by the node would.
// Thaw continues it; Kill works on a frozen process (Stop waits for Thaw).
func (f *Fulcrum) Freeze() error { return f.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw continues a frozen process (SIGCONT).
func (f *Fulcrum) Thaw() error { return f.cmd.Process.Signal(syscall.SIGCONT) }

// Stop sends SIGTERM and waits (a graceful shutdown).
func (f *Fulcrum) Stop() { f.signal(syscall.SIGTERM) }

func (f *Fulcrum) signal(sig syscall.Signal) {
	select {
	case <-f.done:
		return
	default:
	}
	_ = f.cmd.Process.Signal(sig)
	select {
	case <-f.done:
	case <-time.After(15 * time.Second):
		_ = f.cmd.Process.Kill()
		<-f.done
	}
}

// FreeAddr is a free loopback host:port.
func FreeAddr() string { return freeAddr() }

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("no free loopback port: %v", err))
	}
	defer l.Close()
	return l.Addr().String()
}

// webhookRBAC is the self-managed webhook's RBAC (its CA Secret).
func webhookRBAC() ([]*unstructured.Unstructured, error) {
	objs, err := whmanifests.Objects(whmanifests.SelfManaged)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() != "ValidatingWebhookConfiguration" {
			out = append(out, o)
		}
	}
	return out, nil
}

// InstallWebhooks applies the shipped self-managed webhook configurations
// with each clientConfig pointed at https://addr (the fulcrum process writes
// the caBundle itself), replacing earlier ones, and waits until the API
// server calls the webhook (a dry-run ModelRollout in namespace probeNS is
// rejected by it).
func (e *Env) InstallWebhooks(ctx context.Context, addr string) error {
	objs, err := whmanifests.Objects(whmanifests.SelfManaged)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if o.GetKind() != "ValidatingWebhookConfiguration" {
			continue
		}
		var c admissionregistrationv1.ValidatingWebhookConfiguration
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &c); err != nil {
			return err
		}
		for i := range c.Webhooks {
			cc := &c.Webhooks[i].ClientConfig
			u := "https://" + addr + *cc.Service.Path
			cc.URL, cc.Service = &u, nil
		}
		var old admissionregistrationv1.ValidatingWebhookConfiguration
		if err := e.Client.Get(ctx, types.NamespacedName{Name: c.Name}, &old); err == nil {
			c.ResourceVersion = old.ResourceVersion
			if err := e.Client.Update(ctx, &c); err != nil {
				return fmt.Errorf("update %s: %w", c.Name, err)
			}
			continue
		} else if !apierrors.IsNotFound(err) {
			return err
		}
		if err := e.Client.Create(ctx, &c); err != nil {
			return fmt.Errorf("create %s: %w", c.Name, err)
		}
	}
	return nil
}

// WaitWebhook waits until the API server calls Fulcrum's ModelRollout
// webhook: a dry-run ModelRollout naming a missing VirtualService is
// rejected by it (the API server picks up configurations and the caBundle
// asynchronously).
func (e *Env) WaitWebhook(ctx context.Context, limit time.Duration) error {
	probe := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook-probe", Namespace: "default"},
		Spec: v1alpha1.ModelRolloutSpec{
			VirtualService: &v1alpha1.VirtualServiceRef{Name: "webhook-probe-missing"}, DestinationRule: "webhook-probe-missing", Stable: "v1",
			Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{Steps: []int32{100}}},
		},
	}
	var last error
	err := poll(ctx, 200*time.Millisecond, limit, func() bool {
		last = e.Client.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		return last != nil && strings.Contains(last.Error(), "does not exist")
	})
	if err != nil {
		return fmt.Errorf("the API server never called the webhook (last answer: %v): %w", last, err)
	}
	return nil
}
