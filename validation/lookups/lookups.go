// Package lookups implements validation.Lookups with a controller-runtime
// client.Reader. Give it an uncached reader (manager.GetAPIReader()) where
// answers must be current, as in admission: a VirtualService applied in the
// same `kubectl apply` as its ModelRollout may not be in a cache yet.
package lookups

import (
	"context"
	"encoding/json"
	"fmt"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

// Reader reads the referenced objects through a client.Reader.
type Reader struct {
	client.Reader
	// IstioVersion is the networking.istio.io version read ("v1" when
	// empty): the one the cluster serves (controller.DetectIstioVersion).
	// Every version has the same schema, so the object is decoded into the
	// v1 types whatever version it was read at.
	IstioVersion string
}

var _ validation.Lookups = Reader{}

// New returns Lookups over r reading Istio objects at istioVersion.
func New(r client.Reader, istioVersion string) Reader {
	return Reader{Reader: r, IstioVersion: istioVersion}
}

// AddToScheme registers every type Reader reads: Fulcrum's API and Istio's
// networking.istio.io/v1.
func AddToScheme(s *runtime.Scheme) error {
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, istiov1.AddToScheme} {
		if err := add(s); err != nil {
			return fmt.Errorf("register types: %w", err)
		}
	}
	return nil
}

// VirtualService reads a VirtualService.
func (r Reader) VirtualService(ctx context.Context, namespace, name string) (*istiov1.VirtualService, error) {
	vs := &istiov1.VirtualService{}
	if err := r.getIstio(ctx, namespace, name, "VirtualService", vs); err != nil {
		return nil, err
	}
	return vs, nil
}

// DestinationRule reads a DestinationRule.
func (r Reader) DestinationRule(ctx context.Context, namespace, name string) (*istiov1.DestinationRule, error) {
	dr := &istiov1.DestinationRule{}
	if err := r.getIstio(ctx, namespace, name, "DestinationRule", dr); err != nil {
		return nil, err
	}
	return dr, nil
}

// getIstio reads an Istio networking object at r.IstioVersion and decodes
// it into out (a v1 type). Errors pass through (%w) so NotFound stays
// recognisable.
func (r Reader) getIstio(ctx context.Context, namespace, name, kind string, out client.Object) error {
	version := r.IstioVersion
	if version == "" || version == "v1" {
		return r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, out)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "networking.istio.io", Version: version, Kind: kind})
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u); err != nil {
		return err
	}
	raw, err := json.Marshal(u.Object)
	if err != nil {
		return fmt.Errorf("encode %s %s/%s: %w", kind, namespace, name, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode %s %s/%s (networking.istio.io/%s): %w", kind, namespace, name, version, err)
	}
	return nil
}

// MetricTemplate reads a MetricTemplate.
func (r Reader) MetricTemplate(ctx context.Context, namespace, name string) (*v1alpha1.MetricTemplate, error) {
	mt := &v1alpha1.MetricTemplate{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, mt); err != nil {
		return nil, err
	}
	return mt, nil
}

// ModelRollouts lists the ModelRollouts of a namespace.
func (r Reader) ModelRollouts(ctx context.Context, namespace string) ([]v1alpha1.ModelRollout, error) {
	var list v1alpha1.ModelRolloutList
	if err := r.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	return list.Items, nil
}
