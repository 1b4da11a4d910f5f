package controller

import (
	"context"
	"strings"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router/istio"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
	"github.com/fulcrum-ml/fulcrum/controller/warmup"
)

// gatherWarmth reads the candidate's latency over the warm-up window, and
// what the warm-up sender did, when a warm-up gate may hold this round. A
// latency that cannot be read is a Problem of the reading: the gate holds.
func (r *Reconciler) gatherWarmth(ctx context.Context, mr *v1alpha1.ModelRollout, w *world) {
	subset := rollout.WarmupSubset(mr)
	if subset == "" {
		return
	}
	g := rollout.WarmupSpec(mr)
	wm := &rollout.Warmth{}
	w.observed.Warmth = wm
	if r.warmup != nil {
		if c, ok := r.warmup.Counts(rolloutKey(mr)); ok {
			wm.Sent, wm.Failed = c.Sent, c.Failed
			if c.LastError != "" && c.Sent > 0 && c.Failed*2 > c.Sent {
				wm.Problem = "most warm-up requests fail: " + c.LastError
			}
		}
	}
	if r.traffic == nil {
		wm.Problem = "no Prometheus is configured (--prometheus-url), so the warm-up gate (spec.readiness.warmup) cannot read the candidate's latency"
		return
	}
	svc := r.service(mr, w.dr)
	p99, n, err := r.traffic.Warmth(ctx, mr.Namespace, svc, subset, g.Window.Duration, w.observed.Now)
	if err != nil {
		wm.Problem = err.Error()
		return
	}
	wm.P99, wm.Requests = p99, n
}

func rolloutKey(mr *v1alpha1.ModelRollout) types.NamespacedName {
	return types.NamespacedName{Namespace: mr.Namespace, Name: mr.Name}
}

// warmupRoute is the warm-up route the decided status needs on the mesh, or
// nil: present exactly while the gate holds and sends requests.
func warmupRoute(mr *v1alpha1.ModelRollout, decided *v1alpha1.ModelRolloutStatus) *istio.WarmupRoute {
	ws := rollout.WarmupSending(mr, decided)
	if ws == nil {
		return nil
	}
	return &istio.WarmupRoute{Name: istio.WarmupRouteName(mr.Name), Header: warmup.HeaderName, Subset: ws.Subset}
}

// applyWarmupRoute writes the warm-up route, or removes the rollout's when
// none is wanted and clear says so, on top of weights already computed.
func applyWarmupRoute(vs *unstructured.Unstructured, changed bool, t istio.Target, rollout string, want *istio.WarmupRoute, clear bool) (*unstructured.Unstructured, bool, error) {
	var next *unstructured.Unstructured
	var c bool
	var err error
	switch {
	case want != nil:
		next, c, err = istio.SetWarmupRoute(vs, t, *want)
	case !clear:
		return vs, changed, nil
	default:
		next, c, err = istio.ClearWarmupRoute(vs, istio.WarmupRouteName(rollout))
	}
	if err != nil {
		return nil, false, err
	}
	return next, changed || c, nil
}

// steerWarmup starts, keeps or stops the rollout's warm-up sender after the
// decision's writes. A sender that cannot start (a missing ConfigMap, a URL
// the controller refuses) says why in status.warmup.message; the gate keeps
// holding until its timeout.
func (r *Reconciler) steerWarmup(ctx context.Context, mr *v1alpha1.ModelRollout, w *world, decided *v1alpha1.ModelRolloutStatus) {
	if r.warmup == nil {
		return
	}
	key := rolloutKey(mr)
	ws := rollout.WarmupSending(mr, decided)
	if ws == nil || w.dr == nil {
		r.warmup.Stop(key)
		return
	}
	g := rollout.WarmupSpec(mr)
	err := r.warmup.CheckURL(g.Requests.URL, modelHosts(w.vs, w.dr, r.domain))
	if err == nil {
		err = r.warmup.Ensure(ctx, warmup.Job{
			Rollout: key, Subset: ws.Subset, Spec: *g.Requests,
			Deadline: ws.Since.Add(g.Timeout.Duration + 10*time.Second),
		})
	}
	if err != nil {
		r.warmup.Stop(key)
		ctrl.LoggerFrom(ctx).Info("warm-up requests cannot be sent", "reason", err.Error())
		decided.Warmup.Message = v1alpha1.CutText("warm-up requests cannot be sent: "+err.Error()+"; "+decided.Warmup.Message, 512)
	}
}

// modelHosts are the host names a warm-up URL may name: every DNS name of
// the DestinationRule's host (a URL is resolved by DNS, so "fraud.ml"
// reaches the Service too), and the VirtualService's hosts.
func modelHosts(vs *unstructured.Unstructured, dr *networkingv1.DestinationRule, domain istio.ClusterDomain) []string {
	out := domain.DNSNames(dr.Spec.GetHost(), dr.Namespace)
	if vs != nil {
		hosts, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "hosts")
		for _, h := range hosts {
			if h != "*" && !strings.HasPrefix(h, "*.") {
				out = append(out, strings.ToLower(h))
			}
		}
	}
	return out
}
