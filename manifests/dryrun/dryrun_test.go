// Package dryrun_test applies every install manifest to a real kube-apiserver
// with server-side dry run: the API server's own schema, RBAC and CRD
// validation judge them, exactly as `kubectl apply --server-side --dry-run=server`.
package dryrun_test

import (
	"context"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
	"github.com/fulcrum-ml/fulcrum/manifests"
	"github.com/fulcrum-ml/fulcrum/manifests/webhook"
)

var env *localenv.Env

func TestMain(m *testing.M) { os.Exit(localenv.Main(m, localenv.APIServerOnly(), &env)) }

func TestManifestsApplyWithServerSideDryRun(t *testing.T) {
	if env == nil {
		t.Skip("needs the local kube-apiserver (skipped under -short)")
	}
	ctx := t.Context()
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	// Namespaced objects can only be dry-run into namespaces that exist.
	for _, ns := range []string{"fulcrum-system", "ml"} {
		if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}
	sets := map[string]func() ([]*unstructured.Unstructured, error){
		"install":              func() ([]*unstructured.Unstructured, error) { return manifests.Objects("install") },
		"examples":             func() ([]*unstructured.Unstructured, error) { return manifests.Objects("examples") },
		"webhook/self-managed": func() ([]*unstructured.Unstructured, error) { return webhook.Objects(webhook.SelfManaged) },
	}
	for name, load := range sets {
		objs, err := load()
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range objs {
			t.Run(name+"/"+obj.GetKind()+"/"+obj.GetName(), func(t *testing.T) {
				applyDryRun(ctx, t, mapper, dyn, obj)
			})
		}
	}
}

func applyDryRun(ctx context.Context, t *testing.T, mapper *restmapper.DeferredDiscoveryRESTMapper, dyn dynamic.Interface, obj *unstructured.Unstructured) {
	t.Helper()
	gvk := obj.GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("the API server does not serve %s: %v", gvk, err)
	}
	data, err := runtime.Encode(unstructured.UnstructuredJSONScheme, obj)
	if err != nil {
		t.Fatal(err)
	}
	var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == "namespace" {
		ns := obj.GetNamespace()
		if ns == "" {
			t.Fatalf("%s %s is namespaced but names no namespace", gvk.Kind, obj.GetName())
		}
		ri = dyn.Resource(mapping.Resource).Namespace(ns)
	}
	force := true
	if _, err := ri.Patch(ctx, obj.GetName(), "application/apply-patch+yaml", data, metav1.PatchOptions{
		FieldManager: "fulcrum-manifest-test", DryRun: []string{metav1.DryRunAll}, Force: &force,
	}); err != nil {
		t.Fatalf("server-side dry run of %s %s/%s: %v", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
}
