package test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// stubCRDs serve the kinds of the Prometheus Operator and cert-manager that
// the chart may create, with an open schema: the dry run then checks that
// these objects are well-formed Kubernetes objects with the right group,
// version, scope and namespace, and TestExtensionObjectsMatchTheirTypes
// checks their fields against the projects' Go types.
const stubCRDs = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, plural: servicemonitors, singular: servicemonitor, listKind: ServiceMonitorList}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: prometheusrules.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: PrometheusRule, plural: prometheusrules, singular: prometheusrule, listKind: PrometheusRuleList}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: certificates.cert-manager.io}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {kind: Certificate, plural: certificates, singular: certificate, listKind: CertificateList}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: issuers.cert-manager.io}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {kind: Issuer, plural: issuers, singular: issuer, listKind: IssuerList}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
`

// TestRenderedObjectsPassServerSideDryRun applies every object of every
// value set, CRDs from crds/ included, to the local kube-apiserver with
// server-side apply and dryRun=All: the API server's schemas, validation
// (CEL included) and admission judge them, as `kubectl apply --server-side
// --dry-run=server` would.
func TestRenderedObjectsPassServerSideDryRun(t *testing.T) {
	if env == nil {
		t.Skip("needs the local kube-apiserver (skipped under -short)")
	}
	ctx := t.Context()
	stubs := filepath.Join(t.TempDir(), "stub-crds.yaml")
	if err := os.WriteFile(stubs, []byte(stubCRDs), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := env.InstallCRDs(ctx, stubs); err != nil {
		t.Fatalf("install the stub CRDs: %v", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range valueSets {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		vs := valueSets[name]
		t.Run(name, func(t *testing.T) {
			// Namespaced objects can only be dry-run into namespaces that exist.
			for _, ns := range append([]string{vs.releaseNamespace()}, vs.namespaces...) {
				ensureNamespace(ctx, t, ns)
			}
			objs := render(t, vs, true)
			if len(pick(objs, "CustomResourceDefinition")) == 0 {
				t.Fatal("no CRDs rendered from crds/")
			}
			for _, obj := range objs {
				t.Run(obj.GetKind()+"/"+obj.GetNamespace()+"/"+obj.GetName(), func(t *testing.T) {
					applyDryRun(ctx, t, mapper, dyn, obj)
				})
			}
		})
	}
}

func ensureNamespace(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	_, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

func applyDryRun(ctx context.Context, t *testing.T, mapper *restmapper.DeferredDiscoveryRESTMapper, dyn dynamic.Interface, obj *unstructured.Unstructured) {
	t.Helper()
	gvk := obj.GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("the API server does not serve %s: %v", gvk, err)
	}
	data, err := k8sruntime.Encode(unstructured.UnstructuredJSONScheme, obj)
	if err != nil {
		t.Fatal(err)
	}
	var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == "namespace" {
		if obj.GetNamespace() == "" {
			t.Fatalf("%s %s is namespaced but names no namespace", gvk.Kind, obj.GetName())
		}
		ri = dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace())
	} else if obj.GetNamespace() != "" {
		t.Fatalf("%s %s is cluster-scoped but names namespace %s", gvk.Kind, obj.GetName(), obj.GetNamespace())
	}
	force := true
	if _, err := ri.Patch(ctx, obj.GetName(), "application/apply-patch+yaml", data, metav1.PatchOptions{
		FieldManager: "fulcrum-chart-test", DryRun: []string{metav1.DryRunAll}, Force: &force,
	}); err != nil {
		t.Fatalf("server-side dry run of %s %s/%s: %v", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
}
