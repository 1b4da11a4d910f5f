package rig

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/dataplane"
	"github.com/fulcrum-ml/fulcrum/router/gatewayapi"
)

// A model with ModelConfig.Router HTTPRoute has no DestinationRule or
// VirtualService: each version is a Service NAME-VERSION selecting its
// pods, and an HTTPRoute NAME attached to the model's Service splits its
// "predict" rule between them (100% on the first version), as Istio's
// ambient mode routes it. Tests still name versions v1, v2: VersionName
// maps them to the Services, and Weights back.

// gatewayRouted reports whether the model is routed by an HTTPRoute.
func (m *Model) gatewayRouted() bool { return m.Router == v1alpha1.RouteKindHTTPRoute }

// VersionName is what a rollout of the model calls version v: v itself
// (a subset), or the version's Service when routed by an HTTPRoute.
func (m *Model) VersionName(v string) string {
	if m.gatewayRouted() && v != "" {
		return m.Name + "-" + v
	}
	return v
}

// versionOf is VersionName backwards.
func (m *Model) versionOf(name string) string {
	if m.gatewayRouted() {
		return strings.TrimPrefix(name, m.Name+"-")
	}
	return name
}

func newHTTPRoute() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gatewayapi.New(gatewayapi.Config{Kind: v1alpha1.RouteKindHTTPRoute}).Kind())
	return u
}

// createHTTPRoute creates the version Services and the HTTPRoute, and
// waits until the proxy routes by it.
func (e *Env) createHTTPRoute(ctx context.Context, m *Model, versions []Version) error {
	var refs []any
	for i, v := range versions {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: m.VersionName(v.Name), Namespace: m.NS},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": m.Name, "version": v.Name},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		}
		if _, err := e.Kube.Client.CoreV1().Services(m.NS).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return err
		}
		w := int64(0)
		if i == 0 {
			w = 100
		}
		refs = append(refs, map[string]any{"name": svc.Name, "port": int64(80), "weight": w})
	}
	hr := newHTTPRoute()
	hr.SetNamespace(m.NS)
	hr.SetName(m.Name)
	hr.Object["spec"] = map[string]any{
		"parentRefs": []any{map[string]any{"group": "", "kind": "Service", "name": m.Name, "port": int64(80)}},
		"rules":      []any{map[string]any{"name": "predict", "backendRefs": refs}},
	}
	if err := e.Client.Create(ctx, hr); err != nil {
		return fmt.Errorf("create HTTPRoute %s/%s: %w", m.NS, m.Name, err)
	}
	err := poll(ctx, 20*time.Millisecond, 30*time.Second, func() bool {
		v, _ := m.Proxy.Table().RouteVersion(dataplane.KindHTTPRoute, m.NS, m.Name)
		return v == hr.GetResourceVersion()
	})
	if err != nil {
		return fmt.Errorf("proxy never saw HTTPRoute %s/%s: %w", m.NS, m.Name, err)
	}
	return nil
}

// httpRouteWeights reads the weights of the HTTPRoute's "predict" rule by
// version (v1, v2), through the router Fulcrum writes them with.
func (m *Model) httpRouteWeights(ctx context.Context) (map[string]int32, error) {
	hr := newHTTPRoute()
	if err := m.env.Client.Get(ctx, types.NamespacedName{Namespace: m.NS, Name: m.Name}, hr); err != nil {
		return nil, err
	}
	rw, err := gatewayapi.New(gatewayapi.Config{Kind: v1alpha1.RouteKindHTTPRoute}).Weights(hr, []string{"predict"})
	if err != nil {
		return nil, err
	}
	out := map[string]int32{}
	for name, w := range rw["predict"] {
		out[m.versionOf(name)] = w
	}
	return out, nil
}

// GatewayMetrics are StandardMetrics for a model routed by an HTTPRoute:
// errors and p99 latency by destination_service_name (the gateway-*
// templates). Drift is left out: the score histograms label versions by
// the pods' version label, not by Service.
func GatewayMetrics() []v1alpha1.Metric {
	var out []v1alpha1.Metric
	for _, m := range StandardMetrics() {
		if strings.HasPrefix(m.Template, "istio-") {
			m.Template = "gateway-" + strings.TrimPrefix(m.Template, "istio-")
			out = append(out, m)
		}
	}
	return out
}

// ProxyCurrent returns a check that the proxy routes by the model's route
// object (VirtualService or HTTPRoute) as it is now.
func (m *Model) ProxyCurrent(ctx context.Context) (func() bool, error) {
	if m.gatewayRouted() {
		hr := newHTTPRoute()
		if err := m.env.Client.Get(ctx, types.NamespacedName{Namespace: m.NS, Name: m.Name}, hr); err != nil {
			return nil, err
		}
		return func() bool {
			v, _ := m.Proxy.Table().RouteVersion(dataplane.KindHTTPRoute, m.NS, m.Name)
			return v == hr.GetResourceVersion()
		}, nil
	}
	vs, err := m.Istio.NetworkingV1().VirtualServices(m.NS).Get(ctx, m.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return func() bool {
		v, _ := m.Proxy.Table().VirtualServiceVersion(m.NS, m.Name)
		return v == vs.ResourceVersion
	}, nil
}
