package istiod

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

const routeType = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"

// RouteWatch is an ADS stream that asks istiod, as the Envoy sidecar of a
// workload in a namespace would, for one outbound RouteConfiguration (Istio
// names them by port: "80"), and keeps every version istiod pushes.
type RouteWatch struct {
	conn *grpc.ClientConn

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every push
	pushes  []Push
	err     error
}

// Push is one RouteConfiguration istiod sent, with when it arrived.
type Push struct {
	At    time.Time
	Route *routev3.RouteConfiguration
}

// WatchSidecarRoute opens the stream and returns once the first
// RouteConfiguration has arrived.
func (d *Istiod) WatchSidecarRoute(ctx context.Context, namespace, routeName string) (*RouteWatch, error) {
	conn, err := grpc.NewClient(d.XDSAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ADS stream to istiod at %s: %w", d.XDSAddr, err)
	}
	meta, err := structpb.NewStruct(map[string]any{
		"NAMESPACE":     namespace,
		"CLUSTER_ID":    "Kubernetes",
		"ISTIO_VERSION": "1.31.0",
		"LABELS":        map[string]any{"app": "route-probe"},
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	// The node's address only names it; nothing dials it.
	node := &corev3.Node{Id: "sidecar~127.0.0.1~route-probe." + namespace + "~" + namespace + ".svc.cluster.local", Metadata: meta}
	req := &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: routeType, ResourceNames: []string{routeName}}
	if err := stream.Send(req); err != nil {
		conn.Close()
		return nil, err
	}
	w := &RouteWatch{conn: conn, changed: make(chan struct{})}
	go w.receive(stream, req)
	if _, err := w.WaitFor(ctx, 30*time.Second, func(*routev3.RouteConfiguration) bool { return true }); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func (w *RouteWatch) receive(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, req *discoveryv3.DiscoveryRequest) {
	for {
		resp, err := stream.Recv()
		if err == nil {
			req = &discoveryv3.DiscoveryRequest{Node: nil, TypeUrl: routeType, ResourceNames: req.ResourceNames,
				VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce}
			err = stream.Send(req) // ACK, or istiod stops pushing
		}
		var rc *routev3.RouteConfiguration
		if err == nil {
			for _, r := range resp.Resources {
				c := &routev3.RouteConfiguration{}
				if err = r.UnmarshalTo(c); err != nil {
					break
				}
				rc = c
			}
		}
		w.mu.Lock()
		if err != nil {
			w.err = err
		} else if rc != nil {
			w.pushes = append(w.pushes, Push{At: time.Now(), Route: rc})
		}
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Pushes are the RouteConfigurations received so far, oldest first.
func (w *RouteWatch) Pushes() []Push {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.pushes)
}

// WaitFor waits until the latest RouteConfiguration satisfies ok, and
// returns that push.
func (w *RouteWatch) WaitFor(ctx context.Context, limit time.Duration, ok func(*routev3.RouteConfiguration) bool) (Push, error) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		w.mu.Lock()
		ch, err, n := w.changed, w.err, len(w.pushes)
		var last Push
		if n > 0 {
			last = w.pushes[n-1]
		}
		w.mu.Unlock()
		if n > 0 && ok(last.Route) {
			return last, nil
		}
		if err != nil {
			return Push{}, fmt.Errorf("ADS stream ended: %w", err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Push{}, ctx.Err()
		case <-timer.C:
			return Push{}, fmt.Errorf("no matching RouteConfiguration from istiod within %s (%d received)", limit, n)
		}
	}
}

// Close ends the stream.
func (w *RouteWatch) Close() { w.conn.Close() }

// Weights are the shares Envoy would give each subset of service (the
// destination host, an FQDN) on the route named name (the VirtualService's
// HTTP route name; "" when the virtual host has one route) of the virtual
// host for domain (the VirtualService's host), read from the route's
// weighted_clusters, or its single cluster (Istio drops destinations of
// weight 0 and collapses one left into a plain cluster). Clusters are
// Istio's outbound|PORT|SUBSET|HOST.
func Weights(rc *routev3.RouteConfiguration, domain, service, name string) (map[string]uint32, error) {
	r, err := findRoute(rc, domain, name)
	if err != nil {
		return nil, err
	}
	out := map[string]uint32{}
	action := r.GetRoute()
	if action == nil {
		return nil, fmt.Errorf("route %q of %s does not forward (%T)", name, domain, r.GetAction())
	}
	if c := action.GetCluster(); c != "" {
		s, err := subsetOf(c, service)
		if err != nil {
			return nil, err
		}
		out[s] = 100
		return out, nil
	}
	for _, c := range action.GetWeightedClusters().GetClusters() {
		s, err := subsetOf(c.GetName(), service)
		if err != nil {
			return nil, err
		}
		out[s] += c.GetWeight().GetValue()
	}
	return out, nil
}

// subsetOf reads the subset from outbound|PORT|SUBSET|HOST.
func subsetOf(cluster, host string) (string, error) {
	p := strings.Split(cluster, "|")
	if len(p) != 4 || p[0] != "outbound" || p[3] != host {
		return "", fmt.Errorf("cluster %q is not an outbound cluster of %s", cluster, host)
	}
	return p[2], nil
}

// Mirror is one request mirror policy of a route: the cluster requests are
// copied to and the share copied, in percent.
type Mirror struct {
	Subset  string
	Percent float64
}

// Mirrors are the request mirror policies of the route named name of the
// virtual host for domain (see Weights), with the subsets of service they
// copy to.
func Mirrors(rc *routev3.RouteConfiguration, domain, service, name string) ([]Mirror, error) {
	r, err := findRoute(rc, domain, name)
	if err != nil {
		return nil, err
	}
	var out []Mirror
	for _, p := range r.GetRoute().GetRequestMirrorPolicies() {
		s, err := subsetOf(p.GetCluster(), service)
		if err != nil {
			return nil, err
		}
		pct := 100.0
		if f := p.GetRuntimeFraction().GetDefaultValue(); f != nil {
			den := map[string]float64{"HUNDRED": 100, "TEN_THOUSAND": 10000, "MILLION": 1000000}[f.GetDenominator().String()]
			pct = float64(f.GetNumerator()) / den * 100
		}
		out = append(out, Mirror{Subset: s, Percent: pct})
	}
	return out, nil
}

// findRoute is the route named name ("" when the virtual host has one
// route) of the virtual host for domain.
func findRoute(rc *routev3.RouteConfiguration, domain, name string) (*routev3.Route, error) {
	var vh *routev3.VirtualHost
	for _, v := range rc.GetVirtualHosts() {
		if slices.Contains(v.GetDomains(), domain) {
			vh = v
			break
		}
	}
	if vh == nil {
		return nil, fmt.Errorf("route configuration %q has no virtual host for %s", rc.GetName(), domain)
	}
	var names []string
	for _, x := range vh.GetRoutes() {
		names = append(names, x.GetName())
		if x.GetName() == name || (name == "" && len(vh.GetRoutes()) == 1) {
			return x, nil
		}
	}
	return nil, fmt.Errorf("virtual host %s has no route %q (routes: %q)", vh.GetName(), name, names)
}
