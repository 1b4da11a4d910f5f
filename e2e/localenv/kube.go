package localenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

// readCRDs decodes every CustomResourceDefinition in a multi-document YAML
// stream, skipping empty documents.
func readCRDs(r io.Reader) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	dec := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []*apiextensionsv1.CustomResourceDefinition
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := utilyaml.Unmarshal(doc, crd); err != nil {
			return nil, fmt.Errorf("decode CRD: %w", err)
		}
		if crd.Kind == "" && crd.Name == "" {
			continue // a document of comments only
		}
		if crd.Kind != "CustomResourceDefinition" {
			return nil, fmt.Errorf("document %q of kind %q is not a CustomResourceDefinition", crd.Name, crd.Kind)
		}
		out = append(out, crd)
	}
}

// installCRDs creates the CRDs of every file matched by the patterns (a
// path or a glob) and waits until each is Established.
func installCRDs(ctx context.Context, cfg *rest.Config, patterns ...string) error {
	return installEditedCRDs(ctx, cfg, nil, patterns...)
}

// servedIstioVersions returns an edit that leaves networking.istio.io CRDs
// serving only the given versions (the first kept is the storage version),
// as on a cluster with an older Istio. CRDs with none of them are left as
// they are.
func servedIstioVersions(versions []string) func(*apiextensionsv1.CustomResourceDefinition) {
	return func(crd *apiextensionsv1.CustomResourceDefinition) {
		if crd.Spec.Group != "networking.istio.io" {
			return
		}
		var kept []apiextensionsv1.CustomResourceDefinitionVersion
		for _, v := range crd.Spec.Versions {
			if slices.Contains(versions, v.Name) {
				v.Served, v.Storage = true, false
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			return
		}
		kept[0].Storage = true
		crd.Spec.Versions = kept
	}
}

// installEditedCRDs is installCRDs with each CRD passed through edit first
// (when edit is not nil).
func installEditedCRDs(ctx context.Context, cfg *rest.Config, edit func(*apiextensionsv1.CustomResourceDefinition), patterns ...string) error {
	client, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("apiextensions client: %w", err)
	}
	var files []string
	for _, p := range patterns {
		m, err := filepath.Glob(p)
		if err != nil || len(m) == 0 {
			return fmt.Errorf("no CRD files at %s", p)
		}
		sort.Strings(m)
		for _, f := range m {
			// A kustomization beside the CRDs lists them for kubectl -k.
			if filepath.Base(f) != "kustomization.yaml" {
				files = append(files, f)
			}
		}
	}
	var names []string
	var created []*apiextensionsv1.CustomResourceDefinition
	// Created concurrently: each create waits on the API server's schema
	// work, and start-up time is paid by every test package.
	var g errgroup.Group
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read CRDs: %w", err)
		}
		crds, err := readCRDs(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, crd := range crds {
			if edit != nil {
				edit(crd)
			}
			names = append(names, crd.Name)
			created = append(created, crd)
			g.Go(func() error {
				_, err := client.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
				if err != nil && !apierrors.IsAlreadyExists(err) {
					return fmt.Errorf("create CRD %s from %s: %w", crd.Name, f, err)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	pending := map[string]bool{}
	for _, n := range names {
		pending[n] = true
	}
	// Watch rather than poll: the Istio CRDs are large, and listing them
	// every few milliseconds costs more than the wait itself.
	for len(pending) > 0 {
		w, err := client.ApiextensionsV1().CustomResourceDefinitions().Watch(ctx, metav1.ListOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("CRDs not Established: %v: %w", keys(pending), ctx.Err())
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			crd, ok := ev.Object.(*apiextensionsv1.CustomResourceDefinition)
			if !ok {
				continue
			}
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					delete(pending, crd.Name)
				}
			}
			if len(pending) == 0 {
				break
			}
		}
		w.Stop()
		if len(pending) > 0 && ctx.Err() != nil {
			return fmt.Errorf("CRDs not Established: %v: %w", keys(pending), ctx.Err())
		}
	}
	return waitDiscovered(ctx, cfg, created)
}

// waitDiscovered waits until discovery lists every served version of the
// CRDs. Established comes first: the API server updates its discovery
// documents afterwards, and a client that builds a REST mapper in between
// is told the kind does not exist (a CI run failed that way).
func waitDiscovered(ctx context.Context, cfg *rest.Config, crds []*apiextensionsv1.CustomResourceDefinition) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("discovery client: %w", err)
	}
	pending := map[string]string{} // group/version/plural -> group/version
	for _, crd := range crds {
		for _, v := range crd.Spec.Versions {
			if v.Served {
				gv := crd.Spec.Group + "/" + v.Name
				pending[gv+"/"+crd.Spec.Names.Plural] = gv
			}
		}
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		seen := map[string]bool{}
		for _, gv := range pending {
			if seen[gv] {
				continue
			}
			seen[gv] = true
			list, err := dc.ServerResourcesForGroupVersion(gv)
			if err != nil {
				continue // not listed yet
			}
			for _, r := range list.APIResources {
				delete(pending, gv+"/"+r.Name)
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		names := make([]string, 0, len(pending))
		for k := range pending {
			names = append(names, k)
		}
		sort.Strings(names)
		return fmt.Errorf("CRDs Established but not in discovery: %v: %w", names, err)
	}
	return nil
}

// addNode creates one node that kwok manages and waits until it is Ready.
func (e *Env) addNode(ctx context.Context, kwok *process, name string) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"type": "kwok",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if _, err := e.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create kwok node %s: %w", name, err)
	}
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := kwok.exited(); err != nil {
			return false, err
		}
		n, err := e.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // retried until ctx ends
		}
		return nodeReady(n), nil
	})
	if err != nil {
		return fmt.Errorf("kwok node %s not Ready (see %s): %w", name, kwok.log, err)
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// CreateNamespace creates a namespace named prefix-RANDOM, so tests sharing
// an environment do not collide, and returns its name. With the controller
// manager running it also waits for the namespace's default ServiceAccount,
// without which pods are refused.
func (e *Env) CreateNamespace(ctx context.Context, prefix string) (string, error) {
	ns, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create namespace %s-*: %w", prefix, err)
	}
	if e.opts.SkipControllerManager {
		return ns.Name, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := e.Client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return "", fmt.Errorf("namespace %s has no default ServiceAccount (see %s): %w", ns.Name, e.LogPath(KubeControllerManager), err)
	}
	return ns.Name, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
