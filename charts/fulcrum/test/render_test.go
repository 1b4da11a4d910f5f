package test

import (
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/manifests"
)

// kubeVersion is what the charts are rendered for: the version of the local
// kube-apiserver the dry run uses (e2e/tools/kube).
var kubeVersion = &chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}

// valueSet is one way to install the chart.
type valueSet struct {
	release, namespace string
	values             string // YAML, as a user's values file
	// namespaces the install needs besides its own (watched, dashboard).
	namespaces []string
}

// valueSets are the installs every test renders.
var valueSets = map[string]valueSet{
	"defaults": {},
	"ha": {values: `
replicas: 3
clusterDomain: corp.internal
leaderElection: {leaseDuration: 20s, renewDeadline: 15s, retryPeriod: 3s}
logFormat: json
podDisruptionBudget: {minAvailable: 2}
resources: {requests: {cpu: 200m, memory: 256Mi}, limits: {memory: 1Gi}}
`},
	"webhook-cert-manager": {release: "canary", namespace: "ml-platform", namespaces: []string{"grafana"}, values: `
webhook: {certificates: certManager, guardMode: warn}
admin: {tls: {mode: certManager, certManager: {issuerRef: {kind: ClusterIssuer, name: corp-ca}, dnsNames: [fulcrum.example.com]}}}
serviceMonitor: {enabled: true, labels: {release: kube-prometheus-stack}}
prometheusRule: {enabled: true, labels: {release: kube-prometheus-stack}}
grafanaDashboard: {enabled: true, namespace: grafana}
networkPolicy:
  enabled: true
  ingress: {metricsFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]}
  egress:
    apiServerCIDRs: [10.0.0.1/32]
    prometheusTo: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
`},
	"admin-tls-secret": {values: `
admin: {tls: {mode: secret, secretName: fulcrum-admin-cert}, tokenFile: {secretName: fulcrum-admin-tokens}}
prometheus:
  url: https://mimir.example.com/prometheus
  timeout: 20s
  bearerToken: {secretName: mimir-token}
  allowedAddresses: [mimir.team-a:8080, "https://thanos.monitoring:10902/prometheus"]
queries: {allowInline: true, namespaceLabel: kubernetes_namespace}
warmup: {gateways: [istio-ingressgateway.istio-system, "gw.example.com:8080"]}
gates: {allowedHosts: ["*.svc", "hooks.example.com:8443"], maxInFlight: 4}
image: {digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}
`},
	"webhook-secret": {values: `
webhook: {certificates: secret, secret: {name: fulcrum-webhook-cert, caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==}}
networkPolicy: {enabled: true}
`},
	"namespaces-limited": {namespaces: []string{"ml", "ml-staging"}, values: `
watchNamespaces: [ml, ml-staging]
`},
	// The controller's Prometheus behind everything users put in front of
	// it: basic auth, a private CA from a ConfigMap, a client certificate,
	// a tenant header and a proxy, rendered into --prometheus-config-file.
	"prometheus-auth": {values: `
prometheus:
  url: https://mimir-gateway.monitoring.svc:8080/prometheus
  timeout: 20s
  basicAuth: {secretName: mimir-basic-auth}
  tls:
    ca: {configMapName: corp-ca}
    clientCertSecretName: fulcrum-prometheus-client
    serverName: mimir-gateway.monitoring.svc
  headers: {X-Scope-OrgID: ml-platform, X-Team: "ml & \"platform\": a"}
  proxyURL: http://proxy.corp:3128
`},
	// A connection file of the user's own, with the bearer token from the
	// chart and the address kept in the file.
	"prometheus-own-file": {values: `
prometheus:
  url: ""
  bearerToken: {secretName: mimir-token}
  configSecret: {name: fulcrum-prometheus-oauth2, key: connection.yaml}
`},
	"controller-only": {values: `
replicas: 1
admin: {enabled: false}
webhook: {enabled: false}
metrics: {enabled: false}
rbac: {userRoles: false}
`},
}

func (v valueSet) releaseName() string {
	if v.release == "" {
		return "fulcrum"
	}
	return v.release
}

func (v valueSet) releaseNamespace() string {
	if v.namespace == "" {
		return "fulcrum-system"
	}
	return v.namespace
}

func (v valueSet) parse(t *testing.T) map[string]any {
	t.Helper()
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(v.values), &vals); err != nil {
		t.Fatalf("values: %v", err)
	}
	return vals
}

// repoRoot is the Fulcrum checkout, two folders above the chart.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test's source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

func chartDir(t *testing.T) string {
	return filepath.Join(repoRoot(t), "charts", "fulcrum")
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

// render runs what `helm template` runs (an install in client-only dry-run
// mode) and decodes the manifest; with crds, the crds/ folder is included.
func render(t *testing.T, vs valueSet, crds bool) []*unstructured.Unstructured {
	t.Helper()
	install := action.NewInstall(&action.Configuration{})
	install.ClientOnly, install.DryRun, install.Replace = true, true, true
	install.IncludeCRDs = crds
	install.ReleaseName, install.Namespace = vs.releaseName(), vs.releaseNamespace()
	install.KubeVersion = kubeVersion
	rel, err := install.Run(loadChart(t), vs.parse(t))
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	objs, err := manifests.Decode([]byte(rel.Manifest))
	if err != nil {
		t.Fatalf("decode rendered manifest: %v\n%s", err, rel.Manifest)
	}
	return objs
}

// pick returns the objects of a kind.
func pick(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one converts the single object of a kind and name into T.
func one[T any](t *testing.T, objs []*unstructured.Unstructured, kind, name string) *T {
	t.Helper()
	i := slices.IndexFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == kind && o.GetName() == name })
	if i < 0 {
		t.Fatalf("no %s %s rendered", kind, name)
	}
	out := new(T)
	if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(objs[i].Object, out); err != nil {
		t.Fatalf("convert %s %s: %v", kind, name, err)
	}
	return out
}

func kindNames(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName())
	}
	slices.Sort(out)
	return out
}
