package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
	"github.com/fulcrum-ml/fulcrum/controller/warmup"
	"github.com/fulcrum-ml/fulcrum/router/istio"
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
	svc := w.service(mr)
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
	if ws == nil || w.st == nil || w.st.Object == nil {
		r.warmup.Stop(key)
		return
	}
	g := rollout.WarmupSpec(mr)
	err := r.warmup.CheckURL(g.Requests.URL, w.st.Hosts)
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
