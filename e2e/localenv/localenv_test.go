package localenv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	networkingapi "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
)

// timeout bounds each wait in these tests; slow machines may raise it.
func timeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("FULCRUM_E2E_TIMEOUT")); err == nil {
		return d
	}
	return 60 * time.Second
}

// TestEnvironment starts the full environment, checks each component does
// its job, stops it, and checks that no process of it survives.
func TestEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local Kubernetes environment")
	}
	ctx := context.Background()
	target := metricsTarget(t)
	env, err := localenv.Start(ctx, localenv.Options{
		Users:      []localenv.User{{Name: "alice", Groups: []string{"ml-engineers"}}},
		Prometheus: promserver.Config{Targets: []string{target}},
		Logf:       t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = env.Stop()
		}
	})

	t.Run("API server answers with its stamped version", func(t *testing.T) {
		v, err := env.Client.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if v.GitVersion != "v1.37.2" {
			t.Errorf("server version %q, want v1.37.2", v.GitVersion)
		}
	})

	t.Run("kubeconfig works on its own", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		c := kubernetes.NewForConfigOrDie(cfg)
		if _, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("list nodes with %s: %v", env.Kubeconfig, err)
		}
	})

	t.Run("user tokens authenticate and RBAC applies", func(t *testing.T) {
		cfg, err := env.ConfigForUser("alice")
		if err != nil {
			t.Fatal(err)
		}
		alice := kubernetes.NewForConfigOrDie(cfg)
		review, err := alice.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := review.Status.UserInfo; got.Username != "alice" || !contains(got.Groups, "ml-engineers") {
			t.Errorf("token authenticated as %q %v, want alice in ml-engineers", got.Username, got.Groups)
		}
		_, err = alice.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("alice without a role listed pods: err = %v, want Forbidden", err)
		}
		if tok, err := env.UserToken(localenv.AdminUser); err != nil || tok != env.AdminToken {
			t.Errorf("UserToken(admin) = %q, %v; want the admin token", tok, err)
		}
		if _, err := env.ConfigForUser("mallory"); err == nil {
			t.Error("ConfigForUser of an unknown user must be an error")
		}
		bad := kubernetes.NewForConfigOrDie(env.ConfigForToken("not-a-token"))
		if _, err := bad.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
			t.Errorf("unknown token: err = %v, want Unauthorized", err)
		}
	})

	t.Run("kwok node is Ready", func(t *testing.T) {
		n, err := env.Client.CoreV1().Nodes().Get(ctx, env.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !ready(n.Status.Conditions) {
			t.Errorf("node %s conditions %v, want Ready", n.Name, n.Status.Conditions)
		}
	})

	t.Run("Deployment pods become Ready through kwok", func(t *testing.T) {
		ns, err := env.CreateNamespace(ctx, "deploy")
		if err != nil {
			t.Fatal(err)
		}
		replicas := int32(3)
		labels := map[string]string{"app": "model", "version": "v1"}
		_, err = env.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "model-v1"},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "server", Image: "model:v1"}}},
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var last *appsv1.Deployment
		err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout(), true, func(ctx context.Context) (bool, error) {
			last, err = env.Client.AppsV1().Deployments(ns).Get(ctx, "model-v1", metav1.GetOptions{})
			return err == nil && last.Status.ReadyReplicas == replicas && last.Status.AvailableReplicas == replicas, nil
		})
		if err != nil {
			t.Fatalf("deployment %s/model-v1 not available: status %+v: %v", ns, last.Status, err)
		}
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=model"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName != env.NodeName || p.Status.PodIP == "" || !podReady(p) {
				t.Errorf("pod %s/%s on %q ip %q ready=%v, want Ready on %s with an IP", ns, p.Name, p.Spec.NodeName, p.Status.PodIP, podReady(p), env.NodeName)
			}
		}
	})

	t.Run("Istio VirtualService and DestinationRule round-trip", func(t *testing.T) {
		ns, err := env.CreateNamespace(ctx, "istio")
		if err != nil {
			t.Fatal(err)
		}
		ic, err := istioclient.NewForConfig(env.Config)
		if err != nil {
			t.Fatal(err)
		}
		dr := &networkingv1.DestinationRule{
			ObjectMeta: metav1.ObjectMeta{Name: "fraud"},
			Spec: networkingapi.DestinationRule{
				Host: "fraud." + ns + ".svc.cluster.local",
				Subsets: []*networkingapi.Subset{
					{Name: "v1", Labels: map[string]string{"version": "v1"}},
					{Name: "v2", Labels: map[string]string{"version": "v2"}},
				},
			},
		}
		if _, err := ic.NetworkingV1().DestinationRules(ns).Create(ctx, dr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		vs := &networkingv1.VirtualService{
			ObjectMeta: metav1.ObjectMeta{Name: "fraud"},
			Spec: networkingapi.VirtualService{
				Hosts: []string{"fraud"},
				Http: []*networkingapi.HTTPRoute{{
					Name: "predict",
					Route: []*networkingapi.HTTPRouteDestination{
						{Destination: &networkingapi.Destination{Host: "fraud", Subset: "v1"}, Weight: 90},
						{Destination: &networkingapi.Destination{Host: "fraud", Subset: "v2"}, Weight: 10},
					},
				}},
			},
		}
		if _, err := ic.NetworkingV1().VirtualServices(ns).Create(ctx, vs, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		gotVS, err := ic.NetworkingV1().VirtualServices(ns).Get(ctx, "fraud", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r := gotVS.Spec.GetHttp()[0]
		if r.GetName() != "predict" || len(r.GetRoute()) != 2 || r.GetRoute()[0].GetWeight() != 90 || r.GetRoute()[1].GetDestination().GetSubset() != "v2" {
			t.Errorf("VirtualService read back as %v", gotVS.Spec.GetHttp())
		}
		r.GetRoute()[0].Weight, r.GetRoute()[1].Weight = 50, 50
		if _, err := ic.NetworkingV1().VirtualServices(ns).Update(ctx, gotVS, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		again, err := ic.NetworkingV1().VirtualServices(ns).Get(ctx, "fraud", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if w := again.Spec.GetHttp()[0].GetRoute()[1].GetWeight(); w != 50 {
			t.Errorf("updated weight read back as %d, want 50", w)
		}
		gotDR, err := ic.NetworkingV1().DestinationRules(ns).Get(ctx, "fraud", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s := gotDR.Spec.GetSubsets(); len(s) != 2 || s[1].GetName() != "v2" || s[1].GetLabels()["version"] != "v2" {
			t.Errorf("DestinationRule subsets read back as %v", s)
		}
	})

	t.Run("Fulcrum CRDs are served", func(t *testing.T) {
		lists, err := env.Client.Discovery().ServerResourcesForGroupVersion("fulcrum.dev/v1alpha1")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range lists.APIResources {
			names = append(names, r.Name)
		}
		if !contains(names, "modelrollouts") || !contains(names, "metrictemplates") {
			t.Errorf("fulcrum.dev/v1alpha1 serves %v, want modelrollouts and metrictemplates", names)
		}
	})

	t.Run("Gateway API CRDs are served", func(t *testing.T) {
		want := map[string][]string{
			"gateway.networking.k8s.io/v1":      {"httproutes", "grpcroutes", "gateways", "gatewayclasses", "referencegrants"},
			"gateway.networking.k8s.io/v1beta1": {"httproutes", "gateways", "gatewayclasses", "referencegrants"},
		}
		for gv, kinds := range want {
			lists, err := env.Client.Discovery().ServerResourcesForGroupVersion(gv)
			if err != nil {
				t.Fatalf("%s: %v", gv, err)
			}
			var names []string
			for _, r := range lists.APIResources {
				names = append(names, r.Name)
			}
			for _, k := range kinds {
				if !contains(names, k) {
					t.Errorf("%s serves %v, want %s", gv, names, k)
				}
			}
		}
	})

	t.Run("Prometheus scrapes the configured target and answers queries", func(t *testing.T) {
		if v := promValue(ctx, t, env.PrometheusURL, `fulcrum_localenv_test_value{job="targets"}`); v != "42" {
			t.Errorf("query returned %q, want 42", v)
		}
		// Rewriting the config swaps the job name the target is scraped under.
		err := env.Prometheus.Rewrite(promserver.Config{ExtraScrapeConfigs: fmt.Sprintf(
			"- job_name: rewritten\n  static_configs:\n    - targets: [%q]\n", target)})
		if err != nil {
			t.Fatal(err)
		}
		if v := promValue(ctx, t, env.PrometheusURL, `fulcrum_localenv_test_value{job="rewritten"}`); v != "42" {
			t.Errorf("after rewrite, query returned %q, want 42", v)
		}
	})

	pids := env.Pids()
	if len(pids) != 6 {
		t.Errorf("environment reports pids %v, want 6 processes", pids)
	}
	if err := env.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	stopped = true
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			t.Errorf("%s (pid %d) survived Stop: kill(0) = %v", name, pid, err)
		}
		if err := syscall.Kill(-pid, 0); err != syscall.ESRCH {
			t.Errorf("a process of %s's group %d survived Stop: kill(0) = %v", name, pid, err)
		}
	}
	if left := processesMentioning(env.Dir); len(left) > 0 {
		t.Errorf("processes naming %s survived Stop: %v", env.Dir, left)
	}
	if _, err := os.Stat(env.Dir); !os.IsNotExist(err) {
		t.Errorf("environment folder %s not removed: %v", env.Dir, err)
	}
}

// metricsTarget serves one gauge for Prometheus to scrape.
func metricsTarget(t *testing.T) string {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "fulcrum_localenv_test_value"})
	g.Set(42)
	reg.MustRegister(g)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// promValue polls an instant query until it returns one sample.
func promValue(ctx context.Context, t *testing.T, base, query string) string {
	t.Helper()
	var value, last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout(), true, func(ctx context.Context) (bool, error) {
		resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
		if err != nil {
			last = err.Error()
			return false, nil
		}
		defer resp.Body.Close()
		var body struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("status %s, %d series", body.Status, len(body.Data.Result))
		if body.Status != "success" || len(body.Data.Result) != 1 {
			return false, nil
		}
		value, _ = body.Data.Result[0].Value[1].(string)
		return true, nil
	})
	if err != nil {
		t.Fatalf("query %s: %s: %v", query, last, err)
	}
	return value
}

// processesMentioning lists live processes whose command line names dir.
func processesMentioning(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		out = append(out, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return out
}

func ready(conds []corev1.NodeCondition) bool {
	for _, c := range conds {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
