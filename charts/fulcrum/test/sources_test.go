package test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/fulcrum-ml/fulcrum/manifests"
	"github.com/fulcrum-ml/fulcrum/manifests/alerts"
	"github.com/fulcrum-ml/fulcrum/manifests/grafana"
	"github.com/fulcrum-ml/fulcrum/manifests/webhook"
)

// The chart links to files that live in manifests/ (crds/ and files/ hold
// symbolic links; Helm packages the linked contents). The test packages the
// chart as `helm package` does and checks that each packaged file equals its
// source, whether it is a link or, after someone replaced one, a copy.

func TestPackagedChartCarriesTheSources(t *testing.T) {
	root := repoRoot(t)
	sources := map[string]string{ // file in the chart -> source, from the repo root
		"files/fulcrum-rules.yaml":     "manifests/alerts/fulcrum-rules.yaml",
		"files/fulcrum-dashboard.json": "manifests/grafana/fulcrum-dashboard.json",
	}
	crds, err := filepath.Glob(filepath.Join(root, "manifests", "crd", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range crds {
		if name := filepath.Base(src); name != "kustomization.yaml" {
			sources["crds/"+name] = "manifests/crd/" + name
		}
	}
	archive, err := chartutil.Save(loadChart(t), t.TempDir())
	if err != nil {
		t.Fatalf("package the chart: %v", err)
	}
	packaged, err := loader.Load(archive)
	if err != nil {
		t.Fatalf("load the packaged chart: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range append(slices.Clone(packaged.Raw), packaged.Files...) {
		files[f.Name] = f.Data
	}
	for _, f := range packaged.Templates {
		files[f.Name] = f.Data
	}
	for name, src := range sources {
		want, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := files[name]
		switch {
		case !ok:
			t.Errorf("the packaged chart has no %s (link it: ln -s ../../../%s charts/fulcrum/%s)", name, src, name)
		case !bytes.Equal(got, want):
			t.Errorf("the packaged chart's %s differs from %s (link it: ln -sf ../../../%s charts/fulcrum/%s)", name, src, src, name)
		}
	}
	for name := range files {
		if name == "crds/" || strings.HasPrefix(name, "crds/") && sources[name] == "" {
			t.Errorf("the packaged chart has %s, which manifests/crd does not", name)
		}
		if strings.HasPrefix(name, "test/") {
			t.Errorf("the packaged chart includes the tests (%s): fix .helmignore", name)
		}
	}
}

// TestCRDsAreThoseOfManifests checks what Helm installs from crds/.
func TestCRDsAreThoseOfManifests(t *testing.T) {
	want, err := manifests.Objects("crd")
	if err != nil {
		t.Fatal(err)
	}
	var got []*unstructured.Unstructured
	for _, crd := range loadChart(t).CRDObjects() {
		objs, err := manifests.Decode(crd.File.Data)
		if err != nil {
			t.Fatalf("%s: %v", crd.Filename, err)
		}
		got = append(got, objs...)
	}
	if !slices.Equal(kindNames(got), kindNames(want)) {
		t.Fatalf("chart CRDs %v, manifests/crd %v", kindNames(got), kindNames(want))
	}
}

func TestPrometheusRuleGroupsAreTheAlertFile(t *testing.T) {
	var file struct {
		Groups []any `json:"groups"`
	}
	if err := yaml.Unmarshal(alerts.Rules, &file); err != nil {
		t.Fatal(err)
	}
	vs := valueSets["webhook-cert-manager"] // prometheusRule.enabled
	pr := pick(render(t, vs, false), "PrometheusRule")
	if len(pr) != 1 {
		t.Fatalf("%d PrometheusRules rendered, want 1", len(pr))
	}
	got, _, _ := unstructured.NestedSlice(pr[0].Object, "spec", "groups")
	if len(file.Groups) == 0 || !reflect.DeepEqual(got, file.Groups) {
		t.Fatalf("the chart's PrometheusRule groups differ from manifests/alerts/fulcrum-rules.yaml:\n got %v\nwant %v", got, file.Groups)
	}
	if labels := pr[0].GetLabels(); labels["release"] != "kube-prometheus-stack" {
		t.Errorf("prometheusRule.labels not applied: %v", labels)
	}
}

func TestDashboardConfigMapIsTheDashboard(t *testing.T) {
	cms := pick(render(t, valueSets["webhook-cert-manager"], false), "ConfigMap")
	if len(cms) != 1 || cms[0].GetNamespace() != "grafana" || cms[0].GetLabels()["grafana_dashboard"] != "1" {
		t.Fatalf("want one ConfigMap in namespace grafana labelled grafana_dashboard=1, got %v", kindNames(cms))
	}
	data, _, _ := unstructured.NestedString(cms[0].Object, "data", "fulcrum-dashboard.json")
	var got, want any
	if err := json.Unmarshal([]byte(data), &got); err != nil {
		t.Fatalf("dashboard in the ConfigMap is not JSON: %v", err)
	}
	if err := json.Unmarshal(grafana.Dashboard, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("the ConfigMap's dashboard differs from manifests/grafana/fulcrum-dashboard.json")
	}
}

// TestWebhooksAreThoseOfManifests renders the webhook modes for a release
// named fulcrum in fulcrum-system, the names manifests/ use, and compares the
// webhook configurations (and cert-manager objects) field by field, less the
// chart's own labels.
func TestWebhooksAreThoseOfManifests(t *testing.T) {
	cases := map[string]struct {
		variant string
		values  string
		kinds   []string
	}{
		"selfSigned":  {variant: webhook.SelfManaged, kinds: []string{"ValidatingWebhookConfiguration"}},
		"certManager": {variant: webhook.CertManager, values: "webhook: {certificates: certManager}", kinds: []string{"ValidatingWebhookConfiguration", "Certificate", "Issuer"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := webhook.Objects(tc.variant)
			if err != nil {
				t.Fatal(err)
			}
			got := render(t, valueSet{values: tc.values}, false)
			for _, kind := range tc.kinds {
				g, w := pick(got, kind), pick(want, kind)
				if !slices.Equal(kindNames(g), kindNames(w)) {
					t.Fatalf("chart renders %v, manifests/webhook/%s holds %v", kindNames(g), tc.variant, kindNames(w))
				}
				for i := range w {
					gs, ws := withoutLabels(g[i]), withoutLabels(w[i])
					if !reflect.DeepEqual(gs, ws) {
						gy, _ := yaml.Marshal(gs)
						wy, _ := yaml.Marshal(ws)
						t.Errorf("%s %s differs from manifests/webhook/%s:\n--- chart\n%s--- manifests\n%s", kind, w[i].GetName(), tc.variant, gy, wy)
					}
				}
			}
		})
	}
}

func withoutLabels(o *unstructured.Unstructured) map[string]any {
	c := o.DeepCopy()
	c.SetLabels(nil)
	return c.Object
}

// TestDeploymentSecurityIsThatOfManifests: the pod and container security
// contexts, probes and default resources are those of manifests/install.
func TestDeploymentSecurityIsThatOfManifests(t *testing.T) {
	objs, err := manifests.Objects("install")
	if err != nil {
		t.Fatal(err)
	}
	want := one[appsv1.Deployment](t, objs, "Deployment", "fulcrum").Spec.Template.Spec
	for name, vs := range valueSets {
		t.Run(name, func(t *testing.T) {
			objs := render(t, vs, false)
			got := one[appsv1.Deployment](t, objs, "Deployment", vs.releaseName()+suffix(vs)).Spec.Template.Spec
			if !reflect.DeepEqual(got.SecurityContext, want.SecurityContext) {
				t.Errorf("pod securityContext %+v, manifests/install has %+v", got.SecurityContext, want.SecurityContext)
			}
			gc, wc := got.Containers[0], want.Containers[0]
			if !reflect.DeepEqual(gc.SecurityContext, wc.SecurityContext) {
				t.Errorf("container securityContext %+v, manifests/install has %+v", gc.SecurityContext, wc.SecurityContext)
			}
			if !reflect.DeepEqual(gc.ReadinessProbe, wc.ReadinessProbe) || !reflect.DeepEqual(gc.LivenessProbe, wc.LivenessProbe) {
				t.Errorf("probes differ from manifests/install")
			}
			if vs.values == "" && !reflect.DeepEqual(gc.Resources, wc.Resources) {
				t.Errorf("default resources %+v, manifests/install has %+v", gc.Resources, wc.Resources)
			}
		})
	}
}

// suffix is what the chart appends to a release name that lacks "fulcrum".
func suffix(vs valueSet) string {
	if bytes.Contains([]byte(vs.releaseName()), []byte("fulcrum")) {
		return ""
	}
	return "-fulcrum"
}
