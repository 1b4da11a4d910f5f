package rig

import (
	"context"
	"fmt"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fulcrum-ml/fulcrum/e2e/dataplane"
	"github.com/fulcrum-ml/fulcrum/e2e/loadgen"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

// Version is one model version: a model server process and a Deployment
// whose pods name it in the backend annotation.
type Version struct {
	Name     string
	Behavior modelserver.Behavior
	// NodeSelector is copied into the pod template; a selector no node
	// matches keeps the pods Pending (not Ready) until a node gets the label.
	NodeSelector map[string]string
}

// ModelConfig describes a model behind the proxy.
type ModelConfig struct {
	// Name of the model, its Service, DestinationRule and VirtualService;
	// "fraud" when empty.
	Name string
	// NamespacePrefix of the namespace created for it.
	NamespacePrefix string
	// Versions; the first is the stable one (100% on the VirtualService).
	Versions []Version
	// Scrape is the Prometheus configuration to add the model to; the
	// environment's when nil.
	Scrape *Scrape
	// Seed of the proxy's weighted draws and the servers.
	Seed uint64
	// Router is v1alpha1.RouteKindHTTPRoute to route the model by a Gateway
	// API HTTPRoute (see gateway.go); empty: a VirtualService and
	// DestinationRule.
	Router string
	// Reporters of the proxy's Istio metrics ("destination" when nil). Add
	// "source" to have the proxy count its own answers too (UH: the drawn
	// subset had no Ready pod; NC: no such subset), as fault tests do.
	Reporters []string
}

// Model is a running model: namespace, servers, proxy, Kubernetes objects.
type Model struct {
	NS, Name string
	// Host is the model's FQDN, the proxy's listener host.
	Host    string
	Servers map[string]*modelserver.Running
	Proxy   *dataplane.Running
	Istio   istioclient.Interface
	// Router is ModelConfig.Router.
	Router string
	env    *Env
}

// NewModel creates a namespace, starts one model server per version and a
// proxy watching the namespace, adds both to Prometheus (proxy and servers,
// every second), and creates the Service, DestinationRule, VirtualService
// (100% on the first version, 0 on the others, route "predict") and one
// Deployment per version. It waits until the proxy routes by the
// VirtualService; Ready pods are awaited with WaitBackends.
func (e *Env) NewModel(ctx context.Context, c Cleaner, cfg ModelConfig) (*Model, error) {
	if cfg.Name == "" {
		cfg.Name = "fraud"
	}
	if cfg.NamespacePrefix == "" {
		cfg.NamespacePrefix = "e2e"
	}
	if len(cfg.Versions) < 2 {
		return nil, fmt.Errorf("ModelConfig.Versions: need at least two versions (stable and candidate)")
	}
	scrape := cfg.Scrape
	if scrape == nil {
		scrape = e.Scrape
	}
	ns, err := e.Kube.CreateNamespace(ctx, cfg.NamespacePrefix)
	if err != nil {
		return nil, err
	}
	ic, err := istioclient.NewForConfig(e.Kube.Config)
	if err != nil {
		return nil, err
	}
	m := &Model{NS: ns, Name: cfg.Name, Host: cfg.Name + "." + ns + ".svc.cluster.local",
		Servers: map[string]*modelserver.Running{}, Istio: ic, Router: cfg.Router, env: e}
	var addrs []string
	for i, v := range cfg.Versions {
		s, err := modelserver.Start(ctx, modelserver.Config{Model: cfg.Name, Version: v.Name, Seed: cfg.Seed + uint64(i) + 1, Behavior: v.Behavior}, "")
		if err != nil {
			return nil, fmt.Errorf("model server %s: %w", v.Name, err)
		}
		c.Cleanup(s.Stop)
		m.Servers[v.Name] = s
		addrs = append(addrs, s.Addr)
	}
	m.Proxy, err = dataplane.Start(ctx, dataplane.StartConfig{
		Proxy:     dataplane.Config{Namespace: ns, Seed: cfg.Seed + 42, Reporters: cfg.Reporters},
		Rest:      e.Kube.Config,
		Watch:     dataplane.WatchConfig{Namespace: ns},
		Listeners: []dataplane.Listener{{Addr: "127.0.0.1:0", Host: m.Host}},
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	c.Cleanup(m.Proxy.Stop)
	if err := scrape.Set(ns, staticJob("proxy-"+ns, m.Proxy.MetricsAddr)+modelserver.ScrapeConfig("models-"+ns, ns, time.Second, addrs...)); err != nil {
		return nil, err
	}
	c.Cleanup(func() { _ = scrape.Remove(ns) })

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: cfg.Name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": cfg.Name}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	if _, err := e.Kube.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	if m.gatewayRouted() {
		for _, v := range cfg.Versions {
			if _, err := e.Kube.Client.AppsV1().Deployments(ns).Create(ctx, deployment(ns, cfg.Name, v, m.Servers[v.Name].Addr), metav1.CreateOptions{}); err != nil {
				return nil, err
			}
		}
		if err := e.createHTTPRoute(ctx, m, cfg.Versions); err != nil {
			return nil, err
		}
		return m, nil
	}
	dr := &istionetv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: cfg.Name, Namespace: ns}, Spec: networking.DestinationRule{Host: cfg.Name}}
	vs := &istionetv1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: cfg.Name, Namespace: ns},
		Spec:       networking.VirtualService{Hosts: []string{cfg.Name}, Http: []*networking.HTTPRoute{{Name: "predict"}}},
	}
	for i, v := range cfg.Versions {
		dr.Spec.Subsets = append(dr.Spec.Subsets, &networking.Subset{Name: v.Name, Labels: map[string]string{"version": v.Name}})
		w := int32(0)
		if i == 0 {
			w = 100
		}
		vs.Spec.Http[0].Route = append(vs.Spec.Http[0].Route, &networking.HTTPRouteDestination{
			Destination: &networking.Destination{Host: cfg.Name, Subset: v.Name}, Weight: w})
		if _, err := e.Kube.Client.AppsV1().Deployments(ns).Create(ctx, deployment(ns, cfg.Name, v, m.Servers[v.Name].Addr), metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}
	if _, err := ic.NetworkingV1().DestinationRules(ns).Create(ctx, dr, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	created, err := ic.NetworkingV1().VirtualServices(ns).Create(ctx, vs, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	err = poll(ctx, 20*time.Millisecond, 30*time.Second, func() bool {
		v, _ := m.Proxy.Table().VirtualServiceVersion(ns, cfg.Name)
		return v == created.ResourceVersion
	})
	if err != nil {
		return nil, fmt.Errorf("proxy never saw VirtualService %s/%s: %w", ns, cfg.Name, err)
	}
	return m, nil
}

func deployment(ns, model string, v Version, addr string) *appsv1.Deployment {
	lbl := map[string]string{"app": model, "version": v.Name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: model + "-" + v.Name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl, Annotations: map[string]string{dataplane.BackendAnnotation: addr}},
				Spec: corev1.PodSpec{
					NodeSelector: v.NodeSelector,
					Containers:   []corev1.Container{{Name: "model", Image: "fulcrum-e2e/modelserver:" + v.Name}},
				},
			},
		},
	}
}

// WaitBackends waits until the proxy has a Ready backend for each version.
func (m *Model) WaitBackends(ctx context.Context, limit time.Duration, versions ...string) error {
	err := poll(ctx, 100*time.Millisecond, limit, func() bool {
		for _, v := range versions {
			host, subset := m.Host, v
			if m.gatewayRouted() {
				host, subset = m.VersionName(v)+"."+m.NS+".svc.cluster.local", ""
			}
			if len(m.Proxy.Table().Backends(host, subset)) == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("pods of %v never became Ready backends of the proxy (problems: %v): %w", versions, m.Proxy.Table().Problems, err)
	}
	return nil
}

// Weights reads the weights of the VirtualService's "predict" route.
func (m *Model) Weights(ctx context.Context) (map[string]int32, error) {
	if m.gatewayRouted() {
		return m.httpRouteWeights(ctx)
	}
	vs, err := m.Istio.NetworkingV1().VirtualServices(m.NS).Get(ctx, m.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return RouteWeights(vs), nil
}

// RouteWeights are the weights of a VirtualService's first HTTP route of the
// user's: routes Fulcrum writes in front of it (warm-up, experiments) are
// skipped.
func RouteWeights(vs *istionetv1.VirtualService) map[string]int32 {
	out := map[string]int32{}
	http := vs.Spec.Http
	for len(http) > 0 && istio.IsOwnedRoute(http[0].Name) {
		http = http[1:]
	}
	if len(http) == 0 {
		return out
	}
	routes := http[0].Route
	for _, d := range routes {
		w := d.Weight
		if w == 0 && len(routes) == 1 {
			w = 100
		}
		out[d.Destination.Subset] = w
	}
	return out
}

// URL is where load goes: the proxy's inference route for the model.
func (m *Model) URL() string {
	return "http://" + m.Proxy.Addrs[0] + "/v2/models/" + m.Name + "/infer"
}

// Load starts bounded load through the proxy at rate requests per second
// for at most d; it is stopped at cleanup.
func (m *Model) Load(ctx context.Context, c Cleaner, rate float64, d time.Duration) (*loadgen.Generator, error) {
	return m.LoadWith(ctx, c, loadgen.Config{Rate: rate, Duration: d})
}

// LoadWith starts load through the proxy as cfg says (its users, cookies,
// group header), with URL the model's and MaxRequests Rate × Duration when
// unset; it is stopped at cleanup.
func (m *Model) LoadWith(ctx context.Context, c Cleaner, cfg loadgen.Config) (*loadgen.Generator, error) {
	cfg.URL = m.URL()
	if cfg.MaxRequests == 0 {
		cfg.MaxRequests = int(cfg.Rate*cfg.Duration.Seconds()) + 1
	}
	g, err := loadgen.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c.Cleanup(func() { g.Stop() })
	return g, nil
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
