// Package istiod runs Istio's control plane, pilot-discovery, out of cluster
// against a local environment's API server: built from the istio.io/istio
// module pinned in e2e/tools/istio (cached by version like the Kubernetes
// binaries), listening on loopback only, with its validating webhook
// registered on the API server so that every networking.istio.io write is
// checked by Istio's own validation, as in a real mesh.
//
// What istiod cannot do here: inject sidecars (there is no kubelet), issue
// workload certificates to pods, or program an Envoy (none runs). Its xDS
// server is reached on loopback by the suite's own clients instead: an ADS
// client reading the RouteConfiguration an Envoy sidecar would get, and
// gRPC's proxyless xDS client that routes real requests by it.
package istiod

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
	"github.com/fulcrum-ml/fulcrum/webhook/certs"
)

// Tool is how pilot-discovery is built and cached.
var Tool = localenv.Tool{
	Name:     "pilot-discovery",
	ToolsDir: "e2e/tools/istio",
	Module:   "istio.io/istio",
	Package:  "istio.io/istio/pilot/cmd/pilot-discovery",
	Ldflags:  "-X istio.io/istio/pkg/version.buildVersion={{version}}",
}

// Namespace is istiod's own namespace (its CA Secret, leader election).
const Namespace = "istio-system"

// WebhookName is the ValidatingWebhookConfiguration that sends Istio
// objects to istiod's validation.
const WebhookName = "istio-validator-fulcrum-e2e"

// Istiod is a running pilot-discovery.
type Istiod struct {
	// XDSAddr is the plaintext xDS (ADS) server, 127.0.0.1:PORT.
	XDSAddr string
	// MonitoringURL serves istiod's own metrics (/metrics).
	MonitoringURL string
	// DebugURL serves /ready and istiod's /debug endpoints.
	DebugURL string
	// WebhookAddr is the HTTPS server of the validating webhook.
	WebhookAddr string
	// Version is the istio.io/istio module version it was built from.
	Version string
	// Log is its log file.
	Log string

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Options tune Start.
type Options struct {
	// Logf reports progress (the first build takes minutes).
	Logf func(format string, args ...any)
	// DebounceAfter is PILOT_DEBOUNCE_AFTER, how long istiod waits for more
	// changes before a push: Istio's default (100ms) when zero.
	DebounceAfter time.Duration
}

// Start builds pilot-discovery if needed, runs it against kube with its
// files in dir, registers its validating webhook for networking.istio.io,
// and returns once istiod is ready and the API server calls the webhook.
// The process is stopped when ctx ends or Stop is called.
func Start(ctx context.Context, kube *localenv.Env, dir string, opts Options) (*Istiod, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	bin, version, err := localenv.EnsureTool(ctx, Tool, opts.Logf)
	if err != nil {
		return nil, err
	}
	if err := ensureNamespace(ctx, kube, Namespace); err != nil {
		return nil, err
	}
	now := time.Now()
	ca, err := certs.NewCA("fulcrum-e2e-istiod-ca", now, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	serving, err := certs.NewServingCert(ca, []string{"127.0.0.1", "istiod." + Namespace + ".svc"}, now, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"ca.pem": ca.CertPEM, "cert.pem": serving.CertPEM, "key.pem": serving.KeyPEM, "mesh.yaml": []byte(meshConfig)}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	ports, err := localenv.FreePorts(5)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	d := &Istiod{XDSAddr: addr(0), DebugURL: "http://" + addr(1), MonitoringURL: "http://" + addr(2), WebhookAddr: addr(3),
		Version: version, Log: filepath.Join(dir, "istiod.log"), done: make(chan struct{})}
	args := []string{"discovery",
		"--kubeconfig=" + kube.Kubeconfig,
		"--meshConfig=" + filepath.Join(dir, "mesh.yaml"),
		"--networksConfig=" + filepath.Join(dir, "mesh-networks.yaml"), // absent: no networks
		"--grpcAddr=" + d.XDSAddr,
		"--httpAddr=" + addr(1),
		"--monitoringAddr=" + addr(2),
		"--httpsAddr=" + d.WebhookAddr,
		"--secureGRPCAddr=" + addr(4),
		"--caCertFile=" + filepath.Join(dir, "ca.pem"),
		"--tlsCertFile=" + filepath.Join(dir, "cert.pem"),
		"--tlsKeyFile=" + filepath.Join(dir, "key.pem"),
		"--domain=cluster.local",
		"--log_output_level=default:info",
	}
	logFile, err := os.Create(d.Log)
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Dir = dir
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	d.cmd.Env = append(os.Environ(),
		"POD_NAMESPACE="+Namespace,
		"POD_NAME=istiod-e2e",
		"REVISION=default",
		"PILOT_CERT_PROVIDER=istiod",
		// Out of cluster there is no projected token to verify callers with;
		// the xDS port used here is plaintext, as istiod's 15010 is.
		"JWT_POLICY=first-party-jwt",
		"ISTIOD_CUSTOM_HOST=127.0.0.1",
		"PILOT_ENABLE_ANALYSIS=false",
		"PILOT_ENABLE_STATUS=false",
		// istiod would patch the caBundle of Istio's own webhook
		// configurations; ours carries its CA itself.
		"VALIDATION_WEBHOOK_CONFIG_NAME=",
		"INJECTION_WEBHOOK_CONFIG_NAME=",
		"PILOT_ENABLE_CONFIG_DISTRIBUTION_TRACKING=false",
	)
	if opts.DebounceAfter > 0 {
		d.cmd.Env = append(d.cmd.Env, "PILOT_DEBOUNCE_AFTER="+opts.DebounceAfter.String())
	}
	start := time.Now()
	if err := d.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start pilot-discovery: %w", err)
	}
	go func() {
		d.err = d.cmd.Wait()
		logFile.Close()
		close(d.done)
	}()
	context.AfterFunc(ctx, d.Stop)
	if err := d.waitReady(ctx, 2*time.Minute); err != nil {
		d.Stop()
		return nil, err
	}
	opts.Logf("istiod %s ready in %s (log %s)", version, time.Since(start).Round(time.Millisecond), d.Log)
	if err := d.registerWebhook(ctx, kube, ca.CertPEM); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

// meshConfig is istiod's MeshConfig: Istio's defaults, with the cluster
// domain and trust domain written out.
const meshConfig = `trustDomain: cluster.local
defaultConfig:
  discoveryAddress: 127.0.0.1:15012
`

// Stop kills istiod and waits for it.
func (d *Istiod) Stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// Exited reports istiod's exit, nil while it runs.
func (d *Istiod) Exited() error {
	select {
	case <-d.done:
		return fmt.Errorf("istiod exited: %v; log %s:\n%s", d.err, d.Log, tail(d.Log, 30))
	default:
		return nil
	}
}

func (d *Istiod) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		if err := d.Exited(); err != nil {
			return err
		}
		resp, err := client.Get(d.DebugURL + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("istiod not ready at %s/ready within %s (last: %s); log %s:\n%s", d.DebugURL, limit, last, d.Log, tail(d.Log, 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// registerWebhook points a ValidatingWebhookConfiguration for every
// networking.istio.io kind at istiod's /validate, failing closed, and waits
// until the API server calls it: an invalid VirtualService is refused in a
// dry run with Istio's own message.
func (d *Istiod) registerWebhook(ctx context.Context, kube *localenv.Env, caPEM []byte) error {
	url := "https://" + d.WebhookAddr + "/validate"
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: WebhookName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "validation.istio.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"networking.istio.io"}, APIVersions: []string{"*"}, Resources: []string{"*"}}}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1", "v1beta1"},
			TimeoutSeconds:          ptr.To[int32](10),
		}},
	}
	api := kube.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if err := api.Delete(ctx, WebhookName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if _, err := api.Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("register istiod's validating webhook: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		last = ProbeWebhook(ctx, kube)
		if last == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the API server never called istiod's webhook: %w", last)
}

// ProbeWebhook dry-runs a VirtualService that only Istio's validation
// refuses (the API server's schema accepts it: two destinations whose
// weights are both 0, "total destination weight = 0"; Istio no longer asks
// weights to sum to 100) and returns nil when the refusal came from istiod.
func ProbeWebhook(ctx context.Context, kube *localenv.Env) error {
	probe := []byte(`{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"istiod-webhook-probe","namespace":"default"},
"spec":{"hosts":["probe"],"http":[{"route":[{"destination":{"host":"probe","subset":"a"},"weight":0},{"destination":{"host":"probe","subset":"b"},"weight":0}]}]}}`)
	res := kube.Client.CoreV1().RESTClient().Post().AbsPath("/apis/networking.istio.io/v1/namespaces/default/virtualservices").
		Param("dryRun", "All").SetHeader("Content-Type", "application/json").Body(probe).Do(ctx)
	err := res.Error()
	switch {
	case err == nil:
		return fmt.Errorf("a VirtualService whose weights are all 0 was accepted: istiod's webhook is not called yet")
	case strings.Contains(err.Error(), "validation.istio.io"):
		return nil
	default:
		return fmt.Errorf("dry run refused, not by istiod: %w", err)
	}
}

func ensureNamespace(ctx context.Context, kube *localenv.Env, name string) error {
	_, err := kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Pushes is istiod's count of xDS pushes so far, of every type to every
// client (the sum of its pilot_xds_pushes counter).
func (d *Istiod) Pushes(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.MonitoringURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("istiod metrics: %w", err)
	}
	total := 0.0
	for _, m := range families["pilot_xds_pushes"].GetMetric() {
		total += m.GetCounter().GetValue()
	}
	return total, nil
}
