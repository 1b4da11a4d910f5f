package webhook

import (
	"context"
	"errors"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

// The webhook port answers whoever reaches it, and an AdmissionReview is
// only JSON: anyone can write one. So nothing in a review may make the
// webhook read, and describe in its answer, objects outside the namespace
// the review is about (issue 14, finding 8). The API server always sends an
// object in the request's namespace; a review that says otherwise is
// refused without a lookup, and every lookup is confined to the request's
// namespace.

// errNamespace refuses a review whose object is not in the request's
// namespace; it names neither.
var errNamespace = errors.New("the object's metadata.namespace is not the request's namespace (the API server never sends such a review)")

// inRequestNamespace puts a decoded object of a namespaced kind in the
// request's namespace, or refuses the review.
func inRequestNamespace(req *admissionv1.AdmissionRequest, o metav1.Object) error {
	if req.Namespace == "" {
		return errors.New("the request names no namespace, and this kind is namespaced")
	}
	switch o.GetNamespace() {
	case "":
		o.SetNamespace(req.Namespace)
	case req.Namespace:
	default:
		return errNamespace
	}
	return nil
}

// errOutside answers a lookup outside the request's namespace. The checks
// never ask one once the object is in that namespace; this is the second
// lock.
var errOutside = errors.New("the webhook reads only the namespace of the request")

// namespaced confines lookups to one namespace.
func namespaced(l validation.Lookups, ns string) validation.Lookups {
	return scopedLookups{l: l, ns: ns}
}

type scopedLookups struct {
	l  validation.Lookups
	ns string
}

func (s scopedLookups) VirtualService(ctx context.Context, ns, name string) (*istiov1.VirtualService, error) {
	if ns != s.ns {
		return nil, errOutside
	}
	return s.l.VirtualService(ctx, ns, name)
}

func (s scopedLookups) DestinationRule(ctx context.Context, ns, name string) (*istiov1.DestinationRule, error) {
	if ns != s.ns {
		return nil, errOutside
	}
	return s.l.DestinationRule(ctx, ns, name)
}

func (s scopedLookups) MetricTemplate(ctx context.Context, ns, name string) (*v1alpha1.MetricTemplate, error) {
	if ns != s.ns {
		return nil, errOutside
	}
	return s.l.MetricTemplate(ctx, ns, name)
}

func (s scopedLookups) ModelRollouts(ctx context.Context, ns string) ([]v1alpha1.ModelRollout, error) {
	if ns != s.ns {
		return nil, errOutside
	}
	return s.l.ModelRollouts(ctx, ns)
}
