package installtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/fulcrum-ml/fulcrum/manifests"
)

// podMonitorCRD serves the Prometheus Operator's PodMonitor with an open
// schema: the dry run checks group, version, scope and namespace, and
// checkPodMonitor checks the fields against the operator's Go type.
const podMonitorCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: podmonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: PodMonitor, plural: podmonitors, singular: podmonitor, listKind: PodMonitorList}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
`

// cluster is the local API server as the guide's commands see it.
type cluster struct {
	mapper *restmapper.DeferredDiscoveryRESTMapper
	dyn    dynamic.Interface
}

var (
	clusterOnce sync.Once
	theCluster  *cluster
	clusterErr  error
)

// localCluster connects to env once and installs the stand-in CRDs; nil
// under -short.
func localCluster(t *testing.T) *cluster {
	t.Helper()
	if env == nil {
		return nil
	}
	clusterOnce.Do(func() { theCluster, clusterErr = connect(t.Context()) })
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return theCluster
}

func connect(ctx context.Context) (*cluster, error) {
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		return nil, err
	}
	objs, err := manifests.Decode([]byte(podMonitorCRD))
	if err != nil {
		return nil, err
	}
	crds := dyn.Resource(apiextensionsGVR)
	if _, err := crds.Create(ctx, objs[0], metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create the PodMonitor CRD: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		return nil, err
	}
	c := &cluster{mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), dyn: dyn}
	// Served once the CRD is Established.
	pm := schema.GroupKind{Group: "monitoring.coreos.com", Kind: "PodMonitor"}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		c.mapper.Reset()
		_, err := c.mapper.RESTMapping(pm, "v1")
		return err == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("the PodMonitor CRD is not served: %w", err)
	}
	return c, nil
}

var apiextensionsGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// ensureNamespace creates a namespace for real, as `kubectl create
// namespace` or `helm install --create-namespace` do.
func (c *cluster) ensureNamespace(t *testing.T, name string) {
	t.Helper()
	_, err := env.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// dryRun applies obj with server-side apply and dryRun=All, as `kubectl
// apply --server-side --dry-run=server` would: the API server's schemas,
// CEL rules and admission judge it, and nothing is stored.
func (c *cluster) dryRun(t *testing.T, obj *unstructured.Unstructured) error {
	t.Helper()
	gvk := obj.GroupVersionKind()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		c.mapper.Reset() // a CRD installed since the last discovery
		if mapping, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return fmt.Errorf("the API server does not serve %s: %w", gvk, err)
		}
	}
	data, err := k8sruntime.Encode(unstructured.UnstructuredJSONScheme, obj)
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = c.dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == "namespace" {
		if obj.GetNamespace() == "" {
			return fmt.Errorf("%s %s is namespaced but names no namespace", gvk.Kind, obj.GetName())
		}
		ri = c.dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace())
	}
	force := true
	_, err = ri.Patch(t.Context(), obj.GetName(), "application/apply-patch+yaml", data, metav1.PatchOptions{
		FieldManager: "fulcrum-install-guide-test", DryRun: []string{metav1.DryRunAll}, Force: &force,
	})
	if err != nil {
		return fmt.Errorf("server-side dry run of %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}
