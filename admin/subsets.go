package admin

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
	"github.com/fulcrum-ml/fulcrum/router/gatewayapi"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

// readOnlyRouters are the routers the admin API reads with, at the Istio
// version and Gateway API kinds the cluster serves.
func readOnlyRouters(r client.Reader, istioVersion string, gatewayKinds []string, domain string) (*router.Set, *istio.Router) {
	is := istio.New(istio.Config{Reader: r, Version: istioVersion, Domain: istio.ClusterDomain(domain)})
	rs := []router.Router{is}
	for _, k := range gatewayKinds {
		rs = append(rs, gatewayapi.New(gatewayapi.Config{Kind: k, Reader: r}))
	}
	return router.NewSet(rs...), is
}

// RouterVersions lists a rollout's versions through its router: the
// subsets of its DestinationRule, or, for a Gateway API route, the
// Services of its namespace (any of them can become a backendRef).
type RouterVersions struct {
	Istio  *istio.Router
	Reader client.Reader
}

// Versions implements VersionLookup. A missing DestinationRule or route
// object is a NotFound error whose message says which.
func (v RouterVersions) Versions(ctx context.Context, mr *v1alpha1.ModelRollout) ([]string, error) {
	ref := mr.Spec.RouteRef()
	if ref.Kind != v1alpha1.RouteKindVirtualService {
		var svcs corev1.ServiceList
		if err := v.Reader.List(ctx, &svcs, client.InNamespace(mr.Namespace)); err != nil {
			return nil, fmt.Errorf("list Services in %s: %w", mr.Namespace, err)
		}
		out := make([]string, 0, len(svcs.Items))
		for _, s := range svcs.Items {
			if len(s.Spec.Selector) > 0 {
				out = append(out, s.Name)
			}
		}
		sort.Strings(out)
		return out, nil
	}
	versions, problem, err := v.Istio.Versions(ctx, mr)
	if err != nil {
		return nil, err
	}
	if versions == nil {
		nf := apierrors.NewNotFound(schema.GroupResource{Group: istio.Group, Resource: "destinationrules"}, mr.Spec.DestinationRule)
		nf.ErrStatus.Message = problem
		return nil, nf
	}
	out := make([]string, 0, len(versions))
	for name := range versions {
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}

// offStable reports whether a managed route of the rollout sends any
// weight to a version other than spec.stable right now. It is asked only
// when status says there is nothing to roll back; a read that fails
// answers false, leaving the table's answer in place.
func offStable(ctx context.Context, routers *router.Set, mr *v1alpha1.ModelRollout) bool {
	rt, err := routers.For(mr)
	if err != nil {
		return false
	}
	st, err := rt.Read(ctx, mr)
	if err != nil || st.Object == nil {
		return false
	}
	// Read resolves the routes and checks them against the versions; the
	// weights alone are what matters here, even on a route it finds wrong.
	rw, err := rt.Weights(st.Object, mr.Spec.RouteRef().Routes)
	if err != nil {
		return false
	}
	for _, route := range rw {
		for version, w := range route {
			if w > 0 && version != mr.Spec.Stable {
				return true
			}
		}
	}
	return false
}
