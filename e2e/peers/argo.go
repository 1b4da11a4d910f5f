package peers

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
)

var (
	rolloutGVR          = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}
	analysisTemplateGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "analysistemplates"}
)

// Argo runs Argo Rollouts with Istio subset-level traffic routing, as its
// documentation sets it up: a Rollout owns the model's ReplicaSets and sets
// the weights of route "predict" between DestinationRule subsets "stable"
// and "canary" (it pins them to pod-template hashes); steps of 10% each
// paused for the interval; a background analysis from an AnalysisTemplate
// with a Prometheus provider runs Flagger's success-rate query on the
// canary's workload (the ReplicaSet fraud-HASH) every interval.
type Argo struct {
	Peer
}

// Name is the table's column name.
func (a *Argo) Name() string { return "Argo Rollouts " + a.Version }

type argoRollout struct {
	m          *Model
	proc       *process
	stableHash string
}

// successRateQuery is Flagger's request-success-rate query as a fraction,
// for the workload named by the canary's pod-template hash.
func successRateQuery(ns string) string {
	sel := fmt.Sprintf(`reporter="destination",destination_workload_namespace=%q,destination_workload="%s-{{args.canary-hash}}"`, ns, modelName)
	return fmt.Sprintf(`sum(rate(istio_requests_total{%s,response_code!~"5.*"}[%s])) / sum(rate(istio_requests_total{%s}[%s]))`,
		sel, QueryWindow, sel, QueryWindow)
}

// Setup creates the Service, DestinationRule, VirtualService (stable 100%),
// the AnalysisTemplate and the Rollout (v1), starts the controller, and
// returns once the Rollout is Healthy and v1 serves.
func (a *Argo) Setup(ctx context.Context, c Cleaner, m *Model, p Profile) (Rollout, error) {
	if _, err := m.Kube.CoreV1().Services(m.NS).Create(ctx, m.Service(m.Name, m.Name), metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	dr := &istionetv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.NS},
		Spec: networking.DestinationRule{Host: m.Name, Subsets: []*networking.Subset{{Name: "stable"}, {Name: "canary"}}}}
	if _, err := m.Istio.NetworkingV1().DestinationRules(m.NS).Create(ctx, dr, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	vs := &istionetv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.NS},
		Spec: networking.VirtualService{Hosts: []string{m.Name}, Http: []*networking.HTTPRoute{{Name: "predict", Route: []*networking.HTTPRouteDestination{
			{Destination: &networking.Destination{Host: m.Name, Subset: "stable"}, Weight: 100},
			{Destination: &networking.Destination{Host: m.Name, Subset: "canary"}, Weight: 0},
		}}}}}
	if _, err := m.Istio.NetworkingV1().VirtualServices(m.NS).Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	tmpl := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
		"metadata": map[string]any{"name": "success-rate", "namespace": m.NS},
		"spec": map[string]any{
			"args": []any{map[string]any{"name": "canary-hash"}},
			"metrics": []any{map[string]any{
				"name":             "success-rate",
				"interval":         Interval.String(),
				"failureLimit":     int64(ArgoFailureLimit),
				"successCondition": "result[0] >= " + strconv.FormatFloat(MinSuccessRate, 'f', -1, 64),
				"provider": map[string]any{"prometheus": map[string]any{
					"address": m.Env.Kube.PrometheusURL,
					"query":   successRateQuery(m.NS),
				}},
			}},
		},
	}}
	if _, err := m.Dynamic.Resource(analysisTemplateGVR).Namespace(m.NS).Create(ctx, tmpl, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create AnalysisTemplate: %w", err)
	}
	var steps []any
	for w := StepWeight; w <= MaxWeight; w += StepWeight {
		steps = append(steps, map[string]any{"setWeight": int64(w)}, map[string]any{"pause": map[string]any{"duration": Interval.String()}})
	}
	template, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ptrTo(m.PodTemplate(m.Name, StableVersion)))
	if err != nil {
		return nil, err
	}
	ro := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": m.Name, "namespace": m.NS},
		"spec": map[string]any{
			"replicas": int64(1),
			"selector": map[string]any{"matchLabels": map[string]any{"app": m.Name}},
			"template": template,
			"strategy": map[string]any{"canary": map[string]any{
				"trafficRouting": map[string]any{"istio": map[string]any{
					"virtualService":  map[string]any{"name": m.Name, "routes": []any{"predict"}},
					"destinationRule": map[string]any{"name": m.Name, "canarySubsetName": "canary", "stableSubsetName": "stable"},
				}},
				"analysis": map[string]any{
					"templates": []any{map[string]any{"templateName": "success-rate"}},
					"args": []any{map[string]any{"name": "canary-hash",
						"valueFrom": map[string]any{"podTemplateHashValue": "Latest"}}},
				},
				"steps": steps,
			}},
		},
	}}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	hport, err := freePort()
	if err != nil {
		return nil, err
	}
	proc, err := startProcess(c, "argo-rollouts", a.Bin, filepath.Join(m.Env.Dir, "argo-rollouts-"+m.NS+".log"),
		[]string{"POD_NAMESPACE=" + m.NS}, // where it looks for its notification configuration
		"--kubeconfig="+m.Env.Kube.Kubeconfig,
		"--namespaced", "--namespace="+m.NS,
		"--leader-elect=false",
		"--metricsport="+strconv.Itoa(port),
		"--healthzPort="+strconv.Itoa(hport),
		"--loglevel=info",
	)
	if err != nil {
		return nil, err
	}
	if _, err := m.Dynamic.Resource(rolloutGVR).Namespace(m.NS).Create(ctx, ro, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create Rollout: %w", err)
	}
	r := &argoRollout{m: m, proc: proc}
	var o Observation
	err = poll(ctx, 250*time.Millisecond, 2*time.Minute, func() bool {
		var err error
		o, err = r.Observe(ctx)
		return err == nil && o.Phase == "Healthy"
	})
	if err != nil {
		if perr := proc.exited(); perr != nil {
			return nil, perr
		}
		return nil, fmt.Errorf("Rollout %s/%s not Healthy (phase %q; see %s): %w", m.NS, m.Name, o.Phase, proc.log, err)
	}
	u, err := m.Dynamic.Resource(rolloutGVR).Namespace(m.NS).Get(ctx, m.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	r.stableHash, _, _ = unstructured.NestedString(u.Object, "status", "stableRS")
	return r, m.WaitServing(ctx, StableVersion, time.Minute)
}

func ptrTo[T any](v T) *T { return &v }

// Start releases v2 as an Argo Rollouts user does: a new pod template on
// the Rollout.
func (r *argoRollout) Start(ctx context.Context) error {
	m := r.m
	template, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ptrTo(m.PodTemplate(m.Name, CandidateVersion)))
	if err != nil {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := m.Dynamic.Resource(rolloutGVR).Namespace(m.NS).Get(ctx, m.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		u = u.DeepCopy()
		if err := unstructured.SetNestedMap(u.Object, template, "spec", "template"); err != nil {
			return err
		}
		_, err = m.Dynamic.Resource(rolloutGVR).Namespace(m.NS).Update(ctx, u, metav1.UpdateOptions{})
		return err
	})
}

// Observe reads the Rollout's phase and canary weight: an abort is a
// rollback; a new stable ReplicaSet that is the current one, Healthy, is a
// promotion.
func (r *argoRollout) Observe(ctx context.Context) (Observation, error) {
	if err := r.proc.exited(); err != nil {
		return Observation{}, err
	}
	u, err := r.m.Dynamic.Resource(rolloutGVR).Namespace(r.m.NS).Get(ctx, r.m.Name, metav1.GetOptions{})
	if err != nil {
		return Observation{}, err
	}
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	abort, _, _ := unstructured.NestedBool(u.Object, "status", "abort")
	stable, _, _ := unstructured.NestedString(u.Object, "status", "stableRS")
	current, _, _ := unstructured.NestedString(u.Object, "status", "currentPodHash")
	w, _, _ := unstructured.NestedInt64(u.Object, "status", "canary", "weights", "canary", "weight")
	o := Observation{Phase: phase, Weight: int(w)}
	switch {
	case abort:
		o.Outcome = RolledBack
		o.Phase = phase + " (aborted)"
	case r.stableHash != "" && stable != r.stableHash && stable == current && phase == "Healthy":
		o.Outcome = Promoted
	}
	return o, nil
}
