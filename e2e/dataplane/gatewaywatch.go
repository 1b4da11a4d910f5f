package dataplane

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
	gatewaylisters "sigs.k8s.io/gateway-api/pkg/client/listers/apis/v1"
)

// gatewayWatch follows the Gateway API routes (gateway.networking.k8s.io/v1
// HTTPRoutes and GRPCRoutes) the API server serves.
type gatewayWatch struct {
	factory    gatewayinformers.SharedInformerFactory
	informers  []cache.SharedIndexInformer
	httpRoutes gatewaylisters.HTTPRouteLister // nil when not served
	grpcRoutes gatewaylisters.GRPCRouteLister // nil when not served
	// missing names the kinds the API server does not serve, which are not
	// watched (a cluster without the Gateway API CRDs routes as before).
	missing []string
}

// newGatewayWatch asks discovery which route kinds are served and makes
// informers for those; nothing is started yet.
func newGatewayWatch(rc *rest.Config, dc discovery.DiscoveryInterface, namespace string) (*gatewayWatch, error) {
	served := map[string]bool{}
	gv := gatewayv1.GroupVersion.String()
	list, err := dc.ServerResourcesForGroupVersion(gv)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("dataplane watch: discover %s: %w", gv, err)
	default:
		for _, r := range list.APIResources {
			served[r.Name] = true
		}
	}
	gc, err := gatewayclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("dataplane watch: gateway client: %w", err)
	}
	g := &gatewayWatch{factory: gatewayinformers.NewSharedInformerFactoryWithOptions(gc, 0, gatewayinformers.WithNamespace(namespace))}
	v1 := g.factory.Gateway().V1()
	if served["httproutes"] {
		i := v1.HTTPRoutes()
		g.httpRoutes = i.Lister()
		g.informers = append(g.informers, i.Informer())
	} else {
		g.missing = append(g.missing, gv+" httproutes")
	}
	if served["grpcroutes"] {
		i := v1.GRPCRoutes()
		g.grpcRoutes = i.Lister()
		g.informers = append(g.informers, i.Informer())
	} else {
		g.missing = append(g.missing, gv+" grpcroutes")
	}
	return g, nil
}

// list returns the routes in the informers' caches (none of a kind that is
// not watched).
func (g *gatewayWatch) list() ([]*gatewayv1.HTTPRoute, []*gatewayv1.GRPCRoute, error) {
	var hrs []*gatewayv1.HTTPRoute
	var grs []*gatewayv1.GRPCRoute
	var err error
	if g.httpRoutes != nil {
		if hrs, err = g.httpRoutes.List(labels.Everything()); err != nil {
			return nil, nil, fmt.Errorf("list HTTPRoutes: %w", err)
		}
	}
	if g.grpcRoutes != nil {
		if grs, err = g.grpcRoutes.List(labels.Everything()); err != nil {
			return nil, nil, fmt.Errorf("list GRPCRoutes: %w", err)
		}
	}
	return hrs, grs, nil
}
