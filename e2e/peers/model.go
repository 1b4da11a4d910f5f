package peers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/fulcrum-ml/fulcrum/e2e/dataplane"
	"github.com/fulcrum-ml/fulcrum/e2e/loadgen"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// Versions of the model in every run.
const (
	StableVersion    = "v1"
	CandidateVersion = "v2"
	modelName        = "fraud"
)

// Model is the model under test in one run: its namespace, one model server
// per version and the data-plane stand-in watching the namespace. The
// Kubernetes objects (Deployments, Services, routing) are the system's:
// each deploys them its own way in Setup.
type Model struct {
	NS, Name string
	// Host is the model's FQDN, the proxy listener's host.
	Host    string
	Servers map[string]*modelserver.Running
	Proxy   *dataplane.Running

	Env     *rig.Env
	Kube    kubernetes.Interface
	Istio   istioclient.Interface
	Dynamic dynamic.Interface
}

// newModel creates a namespace, starts the two model servers with the
// profile's error rates and the proxy, and has Prometheus scrape the proxy
// every second.
func newModel(ctx context.Context, c Cleaner, env *rig.Env, p Profile, seed uint64) (*Model, error) {
	ns, err := env.Kube.CreateNamespace(ctx, "peers")
	if err != nil {
		return nil, err
	}
	c.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = env.Kube.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	})
	m := &Model{NS: ns, Name: modelName, Host: modelName + "." + ns + ".svc.cluster.local",
		Servers: map[string]*modelserver.Running{}, Env: env, Kube: env.Kube.Client}
	if m.Istio, err = istioclient.NewForConfig(env.Kube.Config); err != nil {
		return nil, err
	}
	if m.Dynamic, err = dynamic.NewForConfig(env.Kube.Config); err != nil {
		return nil, err
	}
	// A short, light-tailed service time: the benchmark is about errors,
	// and 1,000 requests/s must fit on two cores beside three controllers.
	latency := modelserver.Latency{Median: 2 * time.Millisecond, P99: 10 * time.Millisecond}
	for i, v := range []struct {
		name   string
		errors float64
	}{{StableVersion, p.StableErrors}, {CandidateVersion, p.CandidateErrors}} {
		s, err := modelserver.Start(ctx, modelserver.Config{Model: m.Name, Version: v.name, Seed: seed + uint64(i) + 1,
			Behavior: modelserver.Behavior{ErrorRate: v.errors, Latency: latency, Score: modelserver.DefaultScore}}, "")
		if err != nil {
			return nil, fmt.Errorf("model server %s: %w", v.name, err)
		}
		c.Cleanup(s.Stop)
		m.Servers[v.name] = s
	}
	m.Proxy, err = dataplane.Start(ctx, dataplane.StartConfig{
		Proxy:     dataplane.Config{Namespace: ns, Seed: seed + 42},
		Rest:      env.Kube.Config,
		Watch:     dataplane.WatchConfig{Namespace: ns},
		Listeners: []dataplane.Listener{{Addr: "127.0.0.1:0", Host: m.Host}},
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	c.Cleanup(m.Proxy.Stop)
	job := fmt.Sprintf("- job_name: %q\n  scrape_interval: 1s\n  static_configs:\n  - targets: [%q]\n", "proxy-"+ns, m.Proxy.MetricsAddr)
	if err := env.Scrape.Set(ns, job); err != nil {
		return nil, err
	}
	c.Cleanup(func() { _ = env.Scrape.Remove(ns) })
	return m, nil
}

// URL is where load goes: the proxy's inference route for the model.
func (m *Model) URL() string {
	return "http://" + m.Proxy.Addrs[0] + "/v2/models/" + m.Name + "/infer"
}

// PodTemplate is the pod template of version v: labels app=APP and
// version=v, the backend annotation naming v's model server, and an image
// tag that says the version (what a user changes to release it).
func (m *Model) PodTemplate(app, v string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      map[string]string{"app": app, "version": v},
			Annotations: map[string]string{dataplane.BackendAnnotation: m.Servers[v].Addr},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "model", Image: "fulcrum-e2e/modelserver:" + v}}},
	}
}

// Deployment is a one-replica Deployment of version v selected by app=APP
// (and the extra selector labels).
func (m *Model) Deployment(name, app, v string, selector map[string]string) *appsv1.Deployment {
	sel := map[string]string{"app": app}
	for k, val := range selector {
		sel[k] = val
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: m.NS, Labels: map[string]string{"app": app}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: m.PodTemplate(app, v),
		},
	}
}

// Service is the model's Service selecting app=APP.
func (m *Model) Service(name, app string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: m.NS},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
}

// WaitServing waits until a request through the proxy is answered by
// version v's model server (the routing objects exist, the pods are Ready
// and the proxy has seen both).
func (m *Model) WaitServing(ctx context.Context, v string, limit time.Duration) error {
	var last string
	err := poll(ctx, 200*time.Millisecond, limit, func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.URL(), bytes.NewReader([]byte(loadgen.DefaultBody)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err.Error()
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got := resp.Header.Get(modelserver.VersionHeader)
		last = fmt.Sprintf("HTTP %d from version %q", resp.StatusCode, got)
		return got == v
	})
	if err != nil {
		return fmt.Errorf("the proxy never answered from %s (last: %s; problems: %v): %w", v, last, m.Proxy.Table().Problems, err)
	}
	return nil
}

// poll calls cond every interval until it is true, ctx ends or limit passes.
func poll(ctx context.Context, interval, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
