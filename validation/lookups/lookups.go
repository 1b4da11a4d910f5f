// Package lookups implements validation.Lookups with a controller-runtime
// client.Reader. Give it an uncached reader (manager.GetAPIReader()) where
// answers must be current, as in admission: a VirtualService applied in the
// same `kubectl apply` as its ModelRollout may not be in a cache yet.
package lookups

import (
	"context"
	"fmt"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

// Reader reads the referenced objects through a client.Reader.
type Reader struct {
	client.Reader
}

var _ validation.Lookups = Reader{}

// New returns Lookups over r.
func New(r client.Reader) Reader { return Reader{Reader: r} }

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
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, vs); err != nil {
		return nil, err
	}
	return vs, nil
}

// DestinationRule reads a DestinationRule.
func (r Reader) DestinationRule(ctx context.Context, namespace, name string) (*istiov1.DestinationRule, error) {
	dr := &istiov1.DestinationRule{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, dr); err != nil {
		return nil, err
	}
	return dr, nil
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
