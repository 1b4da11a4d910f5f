package test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fulcrum-ml/fulcrum/manifests"
)

// rendered is one value set's output with its main objects at hand.
type rendered struct {
	objs []*unstructured.Unstructured
	name string
	pod  corev1.PodSpec
	args []string
}

func renderSet(t *testing.T, name string) rendered {
	t.Helper()
	vs := valueSets[name]
	objs := render(t, vs, false)
	full := vs.releaseName() + suffix(vs)
	d := one[appsv1.Deployment](t, objs, "Deployment", full)
	return rendered{objs: objs, name: full, pod: d.Spec.Template.Spec, args: d.Spec.Template.Spec.Containers[0].Args}
}

// flag is the value of --name in args, and whether it is there.
func (r rendered) flag(name string) (string, bool) {
	for _, a := range r.args {
		if flagName(a) == name {
			_, v, _ := strings.Cut(a, "=")
			return v, true
		}
	}
	return "", false
}

func (r rendered) wantFlags(t *testing.T, want map[string]string) {
	t.Helper()
	for name, v := range want {
		got, ok := r.flag(name)
		switch {
		case v == "-" && ok:
			t.Errorf("--%s=%s passed, want it absent", name, got)
		case v != "-" && (!ok || got != v):
			t.Errorf("--%s=%q (passed: %v), want %q", name, got, ok, v)
		}
	}
}

// secretMount is the Secret mounted at path (the Secrets, comma-separated,
// of a projected volume), or "".
func (r rendered) secretMount(path string) string {
	c := r.pod.Containers[0]
	i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == path })
	if i < 0 {
		return ""
	}
	for _, v := range r.pod.Volumes {
		if v.Name != c.VolumeMounts[i].Name {
			continue
		}
		if v.Secret != nil {
			return v.Secret.SecretName
		}
		if v.Projected != nil {
			var names []string
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					names = append(names, s.Secret.Name)
				}
			}
			return strings.Join(names, ",")
		}
	}
	return ""
}

// TestFilesTheFlagsNameAreMounted: every /etc/fulcrum path a flag names is
// inside a mounted volume, and every mount has its volume.
func TestFilesTheFlagsNameAreMounted(t *testing.T) {
	for name := range valueSets {
		t.Run(name, func(t *testing.T) {
			r := renderSet(t, name)
			c := r.pod.Containers[0]
			for _, a := range r.args {
				_, path, _ := strings.Cut(a, "=")
				if !strings.HasPrefix(path, "/etc/fulcrum/") {
					continue
				}
				if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
					return strings.HasPrefix(path, m.MountPath+"/") || path == m.MountPath
				}) {
					t.Errorf("%s names a path no volume is mounted at", a)
				}
			}
			for _, m := range c.VolumeMounts {
				if !slices.ContainsFunc(r.pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
					t.Errorf("mount %s has no volume", m.Name)
				}
			}
		})
	}
}

func TestDefaultsAreTheKustomizeInstall(t *testing.T) {
	r := renderSet(t, "defaults")
	r.wantFlags(t, map[string]string{"allow-inline-queries": "false", "query-namespace-label": "destination_service_namespace", "cluster-domain": "cluster.local"})
	objs, err := manifests.Objects("install")
	if err != nil {
		t.Fatal(err)
	}
	want := one[appsv1.Deployment](t, objs, "Deployment", "fulcrum")
	// Every flag of manifests/install, with its value.
	for _, a := range want.Spec.Template.Spec.Containers[0].Args {
		if !slices.Contains(r.args, a) {
			t.Errorf("manifests/install passes %s, the chart's defaults do not (chart: %v)", a, r.args)
		}
	}
	if d := one[appsv1.Deployment](t, r.objs, "Deployment", "fulcrum"); *d.Spec.Replicas != *want.Spec.Replicas || d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %d strategy %q, want %d with rolling updates", *d.Spec.Replicas, d.Spec.Strategy.Type, *want.Spec.Replicas)
	}
	gotSvc := one[corev1.Service](t, r.objs, "Service", "fulcrum").Spec.Ports
	wantSvc := one[corev1.Service](t, objs, "Service", "fulcrum").Spec.Ports
	if !reflect.DeepEqual(gotSvc, wantSvc) {
		t.Errorf("Service ports %+v, manifests/install has %+v", gotSvc, wantSvc)
	}
	if pdb := one[policyv1.PodDisruptionBudget](t, r.objs, "PodDisruptionBudget", "fulcrum"); pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("PDB minAvailable %v, want 1", pdb.Spec.MinAvailable)
	}
}

func TestHighAvailability(t *testing.T) {
	r := renderSet(t, "ha")
	r.wantFlags(t, map[string]string{"leader-elect": "true", "leader-election-namespace": "fulcrum-system",
		"lease-duration": "20s", "renew-deadline": "15s", "retry-period": "3s", "log-format": "json", "cluster-domain": "corp.internal"})
	if d := one[appsv1.Deployment](t, r.objs, "Deployment", r.name); *d.Spec.Replicas != 3 {
		t.Errorf("replicas %d, want 3", *d.Spec.Replicas)
	}
	if pdb := one[policyv1.PodDisruptionBudget](t, r.objs, "PodDisruptionBudget", r.name); pdb.Spec.MinAvailable.IntValue() != 2 {
		t.Errorf("PDB minAvailable %v, want 2", pdb.Spec.MinAvailable)
	}
}

func TestControllerOnly(t *testing.T) {
	r := renderSet(t, "controller-only")
	r.wantFlags(t, map[string]string{"controller": "true", "admin": "false", "webhook": "false", "leader-elect": "false",
		"metrics-bind-address": "0", "webhook-self-signed": "-", "admin-bind-address": "-", "lease-duration": "-"})
	if d := one[appsv1.Deployment](t, r.objs, "Deployment", r.name); d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("one replica without leader election must be replaced with Recreate, got %q", d.Spec.Strategy.Type)
	}
	for _, kind := range []string{"Service", "PodDisruptionBudget", "ValidatingWebhookConfiguration", "Role", "RoleBinding"} {
		if got := pick(r.objs, kind); len(got) > 0 {
			t.Errorf("rendered %v", kindNames(got))
		}
	}
}

func TestWebhookAndAdminWithCertManager(t *testing.T) {
	r := renderSet(t, "webhook-cert-manager")
	const user = "system:serviceaccount:ml-platform:canary-fulcrum"
	r.wantFlags(t, map[string]string{"webhook-cert-dir": "/etc/fulcrum/webhook-tls", "webhook-self-signed": "-",
		"webhook-guard-mode": "warn", "webhook-fulcrum-users": user,
		"admin-tls-cert": "/etc/fulcrum/admin-tls/tls.crt", "admin-tls-key": "/etc/fulcrum/admin-tls/tls.key"})
	if got := r.secretMount("/etc/fulcrum/webhook-tls"); got != "canary-fulcrum-webhook-tls" {
		t.Errorf("webhook certificate from Secret %q, want canary-fulcrum-webhook-tls", got)
	}
	if got := r.secretMount("/etc/fulcrum/admin-tls"); got != "canary-fulcrum-admin-tls" {
		t.Errorf("admin certificate from Secret %q, want canary-fulcrum-admin-tls", got)
	}
	admin := pick(r.objs, "Certificate")
	i := slices.IndexFunc(admin, func(o *unstructured.Unstructured) bool { return o.GetName() == "canary-fulcrum-admin" })
	if i < 0 {
		t.Fatalf("no admin Certificate in %v", kindNames(admin))
	}
	dns, _, _ := unstructured.NestedStringSlice(admin[i].Object, "spec", "dnsNames")
	issuer, _, _ := unstructured.NestedStringMap(admin[i].Object, "spec", "issuerRef")
	if !slices.Equal(dns, []string{"canary-fulcrum.ml-platform.svc", "canary-fulcrum.ml-platform.svc.cluster.local", "fulcrum.example.com"}) ||
		issuer["kind"] != "ClusterIssuer" || issuer["name"] != "corp-ca" {
		t.Errorf("admin Certificate dnsNames %v issuerRef %v", dns, issuer)
	}
	svc := one[corev1.Service](t, r.objs, "Service", r.name)
	if svc.Spec.Ports[0].Name != "admin" || svc.Spec.Ports[0].Port != 8443 {
		t.Errorf("admin Service port %+v, want 8443 with TLS", svc.Spec.Ports[0])
	}
	for _, name := range []string{"fulcrum-modelrollouts", "fulcrum-virtualservice-guard"} {
		wh := one[admissionv1.ValidatingWebhookConfiguration](t, r.objs, "ValidatingWebhookConfiguration", name)
		if wh.Annotations["cert-manager.io/inject-ca-from"] != "ml-platform/canary-fulcrum-webhook" {
			t.Errorf("%s: inject-ca-from %q", name, wh.Annotations["cert-manager.io/inject-ca-from"])
		}
		for _, w := range wh.Webhooks {
			if s := w.ClientConfig.Service; s.Namespace != "ml-platform" || s.Name != "canary-fulcrum" || *s.Port != 443 {
				t.Errorf("%s calls %s/%s:%d", w.Name, s.Namespace, s.Name, *s.Port)
			}
			for _, c := range w.MatchConditions {
				if c.Name == "not-fulcrum" && !strings.Contains(c.Expression, "'"+user+"'") {
					t.Errorf("%s does not exempt %s: %s", w.Name, user, c.Expression)
				}
			}
		}
	}
}

func TestNetworkPolicy(t *testing.T) {
	r := renderSet(t, "webhook-cert-manager")
	np := one[networkingv1.NetworkPolicy](t, r.objs, "NetworkPolicy", r.name)
	var in, out []int
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			in = append(in, p.Port.IntValue())
		}
		if len(rule.From) > 0 && rule.Ports[0].Port.IntValue() != 8082 {
			t.Errorf("only metrics is narrowed in this value set; port %d has from %v", rule.Ports[0].Port.IntValue(), rule.From)
		}
	}
	for _, rule := range np.Spec.Egress {
		for _, p := range rule.Ports {
			out = append(out, p.Port.IntValue())
		}
		if slices.ContainsFunc(rule.Ports, func(p networkingv1.NetworkPolicyPort) bool { return p.Port.IntValue() == 6443 }) &&
			(len(rule.To) != 1 || rule.To[0].IPBlock == nil || rule.To[0].IPBlock.CIDR != "10.0.0.1/32") {
			t.Errorf("API server egress %+v, want to 10.0.0.1/32", rule.To)
		}
	}
	slices.Sort(in)
	slices.Sort(out)
	if !slices.Equal(in, []int{8080, 8081, 8082, 9443}) {
		t.Errorf("ingress ports %v, want admin, health, metrics, webhook", in)
	}
	if !slices.Equal(out, []int{53, 53, 443, 6443, 9090}) {
		t.Errorf("egress ports %v, want DNS, API server and Prometheus (9090 from prometheus.url)", out)
	}
}

func TestAdminTLSFromASecret(t *testing.T) {
	r := renderSet(t, "admin-tls-secret")
	r.wantFlags(t, map[string]string{"admin-tls-cert": "/etc/fulcrum/admin-tls/tls.crt", "admin-token-file": "/etc/fulcrum/admin-token/tokens.csv",
		"prometheus-url": "https://mimir.example.com/prometheus", "prometheus-timeout": "20s",
		"prometheus-bearer-token-file": "/etc/fulcrum/prometheus/token",
		"prometheus-allowed-addresses": "mimir.team-a:8080,https://thanos.monitoring:10902/prometheus",
		"allow-inline-queries":         "true", "query-namespace-label": "kubernetes_namespace",
		"warmup-gateways":    "istio-ingressgateway.istio-system,gw.example.com:8080",
		"gate-allowed-hosts": "*.svc,hooks.example.com:8443", "gate-max-in-flight": "4"})
	for path, secret := range map[string]string{"/etc/fulcrum/admin-tls": "fulcrum-admin-cert", "/etc/fulcrum/admin-token": "fulcrum-admin-tokens", "/etc/fulcrum/prometheus": "mimir-token"} {
		if got := r.secretMount(path); got != secret {
			t.Errorf("%s from Secret %q, want %q", path, got, secret)
		}
	}
	for _, m := range r.pod.Containers[0].VolumeMounts {
		if m.SubPath != "" {
			t.Errorf("mount %s uses subPath: the kubelet would never update a rotated Secret", m.Name)
		}
	}
	if img := r.pod.Containers[0].Image; !strings.HasSuffix(img, "@sha256:0000000000000000000000000000000000000000000000000000000000000000") {
		t.Errorf("image %s, want the digest", img)
	}
	if len(pick(r.objs, "Certificate")) > 0 {
		t.Error("a supplied Secret needs no Certificate")
	}
}

func TestNamespacesLimited(t *testing.T) {
	r := renderSet(t, "namespaces-limited")
	r.wantFlags(t, map[string]string{"namespaces": "ml,ml-staging"})
	for _, name := range []string{"fulcrum-modelrollouts", "fulcrum-virtualservice-guard"} {
		wh := one[admissionv1.ValidatingWebhookConfiguration](t, r.objs, "ValidatingWebhookConfiguration", name)
		for _, w := range wh.Webhooks {
			if !slices.ContainsFunc(w.NamespaceSelector.MatchExpressions, func(e metav1.LabelSelectorRequirement) bool {
				return e.Key == "kubernetes.io/metadata.name" && e.Operator == "In" && slices.Equal(e.Values, []string{"ml", "ml-staging"})
			}) {
				t.Errorf("%s is not limited to the watched namespaces: %+v", w.Name, w.NamespaceSelector)
			}
		}
	}
}
