package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// These tests scale real Deployments and HPAs: the environment's
// kube-controller-manager runs the deployment, replicaset and HPA
// controllers, and kwok makes the pods they create Ready.

// constTraffic is a model that always serves the same requests/s.
type constTraffic float64

func (c constTraffic) TrafficRate(context.Context, string, string, time.Time) (float64, error) {
	return float64(c), nil
}

// Warmth is never asked: these rollouts have no warm-up gate.
func (c constTraffic) Warmth(context.Context, string, string, string, time.Duration, time.Time) (float64, float64, error) {
	return 0, 0, errors.New("constTraffic reads no latency")
}

// deployment creates fraud-VERSION with replicas pods of that version, on
// the kwok node.
func (f *fixture) deployment(version string, replicas int32) {
	labels := map[string]string{"app": "fraud", "version": version}
	f.create(&appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud-" + version, Namespace: f.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeName:    env.NodeName,
					Containers:  []corev1.Container{{Name: "model", Image: "model:" + version}},
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
				},
			},
		},
	})
}

// hpa creates an HPA fraud-VERSION targeting that version's Deployment.
func (f *fixture) hpa(version string, min, max int32) {
	f.create(&autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud-" + version, Namespace: f.ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "fraud-" + version},
			MinReplicas:    ptr.To(min), MaxReplicas: max,
		},
	})
}

func (f *fixture) getHPA(version string) *autoscalingv2.HorizontalPodAutoscaler {
	f.t.Helper()
	h := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := f.c.Get(f.ctx(), types.NamespacedName{Namespace: f.ns, Name: "fraud-" + version}, h); err != nil {
		f.t.Fatal(err)
	}
	return h
}

func (f *fixture) replicas(version string) int32 {
	f.t.Helper()
	d := &appsv1.Deployment{}
	if err := f.c.Get(f.ctx(), types.NamespacedName{Namespace: f.ns, Name: "fraud-" + version}, d); err != nil {
		f.t.Fatal(err)
	}
	return *d.Spec.Replicas
}

// readyPods counts the Ready, not deleted pods of a version.
func (f *fixture) readyPods(version string) (int32, error) {
	var pods corev1.PodList
	if err := f.c.List(f.ctx(), &pods, client.InNamespace(f.ns), client.MatchingLabels{"app": "fraud", "version": version}); err != nil {
		return 0, err
	}
	var n int32
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
				n++
			}
		}
	}
	return n, nil
}

func (f *fixture) waitReadyPods(version string, want int32) {
	f.t.Helper()
	f.eventually(fmt.Sprintf("%d Ready pods of %s", want, version), func() bool {
		n, err := f.readyPods(version)
		return err == nil && n == want
	})
}

// overload watches a rollout's candidate weight and the candidate's Ready
// pods, and returns every moment its share of rate was above what the
// pods carry at perPod each. Weights are read before pods: pods only grow
// while it runs, so a sample can miss an overload but never invent one.
func overload(f *fixture, name, subset string, rate, perPod float64) (stop func() []string) {
	var seen []string
	halt := pollVirtualService(f, name, func(vs map[string]any) {
		w := routeWeight(vs, subset)
		n, err := f.readyPods(subset)
		if share := rate * float64(w) / 100; err == nil && share > float64(n)*perPod {
			seen = append(seen, fmt.Sprintf("%s at %d%% (%.0f requests/s) with %d Ready pods", subset, w, share, n))
		}
	})
	return func() []string {
		halt()
		return seen
	}
}

func lastOf(mr *v1alpha1.ModelRollout, typ string) *v1alpha1.HistoryEntry {
	for i := len(mr.Status.History) - 1; i >= 0; i-- {
		if mr.Status.History[i].Type == typ {
			return &mr.Status.History[i]
		}
	}
	return nil
}

// Given 40 requests/s, 10 per pod and v2's Deployment at 1 replica under
// an HPA (min 1, max 10): the first step (10%, 4 requests/s) goes ahead;
// for the second (60%, 24 requests/s) Fulcrum raises the HPA's minReplicas
// to 3, the HPA controller scales the Deployment, and the weight moves only
// once 3 pods are Ready. A rollback puts minReplicas back to 1.
func TestScaleAheadRaisesHPAThenRollbackRestores(t *testing.T) {
	f := newFixture(t)
	if err := f.c.Delete(f.ctx(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "fraud-v2", Namespace: f.ns}}, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	f.deployment("v2", 1)
	f.hpa("v2", 1, 10)
	f.waitReadyPods("v2", 1)
	a := &scripted{verdict: func(_ string, w int32) v1alpha1.Verdict {
		if w >= 60 {
			return v1alpha1.VerdictInconclusive // hold at 60% for the rollback
		}
		return v1alpha1.VerdictPass
	}}
	startControllerWith(f, a, constTraffic(40))
	stop := overload(f, "fraud", "v2", 40, 10)
	f.rollout("fraud", withAnalysis, func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Strategy.Canary.Steps = []int32{10, 60, 100}
		mr.Spec.Readiness.RequestsPerPod = ptr.To(10.0)
		mr.Spec.Scaling = &v1alpha1.Scaling{DeploymentName: "fraud-{{subset}}", ScaleAhead: true}
	})

	f.waitWeights("fraud", map[string]int32{"v1": 90, "v2": 10})
	f.eventually("HPA fraud-v2 minReplicas raised to 3", func() bool { return *f.getHPA("v2").Spec.MinReplicas == 3 })
	f.waitWeights("fraud", map[string]int32{"v1": 40, "v2": 60})
	if n, _ := f.readyPods("v2"); n < 3 {
		t.Fatalf("60%% applied with %d Ready pods of v2, want 3", n)
	}
	mr := f.get("fraud")
	h := lastOf(mr, v1alpha1.HistoryScaledUp)
	want := "step 2 (60%) needs 3 Ready pods of v2 at 10 requests/s each (24 of 40 requests/s); it had 1: raised HPA fraud-v2 minReplicas 1→3"
	if h == nil || h.Reason != want || h.Actor != "fulcrum" {
		t.Fatalf("ScaledUp entry %+v, want reason %q", h, want)
	}
	if c := mr.Status.Scaling.Changes; len(c) != 1 || c[0].Kind != v1alpha1.KindHPA || c[0].Original != 1 || c[0].Set != 3 {
		t.Fatalf("status.scaling.changes %+v", c)
	}
	if got := f.getHPA("v2").Spec.MaxReplicas; got != 10 {
		t.Fatalf("maxReplicas %d, want 10 untouched", got)
	}

	f.intent("fraud", "rb-1", v1alpha1.IntentRollback)
	f.waitWeights("fraud", map[string]int32{"v1": 100, "v2": 0})
	f.eventually("HPA fraud-v2 minReplicas back to 1", func() bool { return *f.getHPA("v2").Spec.MinReplicas == 1 })
	f.eventually("status.scaling cleared once the restore is seen", func() bool { return f.get("fraud").Status.Scaling == nil })
	mr = f.get("fraud")
	if h := lastOf(mr, v1alpha1.HistoryScaleRestored); h == nil || !strings.Contains(h.Reason, "put back HPA fraud-v2 minReplicas 3→1") {
		t.Fatalf("ScaleRestored entry %+v in %v", h, historyTypes(mr))
	}
	if bad := stop(); len(bad) > 0 {
		t.Fatalf("traffic above Ready capacity: %v", bad)
	}
}

// After a promotion with scaleDownAfter 3s, the old version's Deployment
// (no HPA) goes from 2 replicas to 0, not before its time, and its pods go;
// deleting the rollout (onDelete RestoreStable) puts the 2 replicas back.
func TestOldVersionScaledDownAfterPromotion(t *testing.T) {
	f := newFixture(t)
	f.deployment("v1", 2)
	f.waitReadyPods("v1", 3) // the fixture's pod and the Deployment's two
	startController(f, nil)
	f.rollout("fraud", func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Strategy.Canary.Steps = []int32{50, 100}
		mr.Spec.Scaling = &v1alpha1.Scaling{DeploymentName: "fraud-{{subset}}", ScaleDownAfter: &metav1.Duration{Duration: 3 * time.Second}}
	})
	mr := f.waitPhase("fraud", v1alpha1.PhasePromoted)
	promoted := lastOf(mr, v1alpha1.HistoryPromoted)
	sd := mr.Status.Scaling.ScaleDown
	if sd == nil || sd.Subset != "v1" || !sd.At.Time.Equal(promoted.Time.Add(3*time.Second)) || sd.Replicas != 0 {
		t.Fatalf("pending scale-down %+v, want v1 to 0 three seconds after %s", sd, promoted.Time)
	}
	if n := f.replicas("v1"); n != 2 {
		t.Fatalf("v1 at %d replicas right after the promotion, want 2 until the scale-down's time", n)
	}

	f.eventually("Deployment fraud-v1 at 0 replicas", func() bool { return f.replicas("v1") == 0 })
	f.waitReadyPods("v1", 1) // the Deployment's pods are gone
	mr = f.get("fraud")
	h := lastOf(mr, v1alpha1.HistoryScaledDown)
	want := "v1 scaled down 3s after v2 was promoted (spec.scaling.scaleDownAfter): Deployment fraud-v1 replicas 2→0"
	if h == nil || h.Reason != want {
		t.Fatalf("ScaledDown entry %+v, want reason %q", h, want)
	}
	if h.Time.Before(&sd.At) {
		t.Fatalf("scaled down at %s, before its time %s", h.Time, sd.At)
	}
	if c := mr.Status.Scaling.Changes; len(c) != 1 || c[0].Original != 2 || c[0].Set != 0 || mr.Status.Scaling.ScaleDown != nil {
		t.Fatalf("status.scaling %+v", mr.Status.Scaling)
	}

	if err := f.c.Delete(f.ctx(), mr); err != nil {
		t.Fatal(err)
	}
	f.eventually("Deployment fraud-v1 back at 2 replicas after deletion", func() bool { return f.replicas("v1") == 2 })
}
