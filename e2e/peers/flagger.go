package peers

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
)

var canaryGVR = schema.GroupVersionResource{Group: "flagger.app", Version: "v1beta1", Resource: "canaries"}

// Flagger runs Flagger with the Istio provider, as its documentation sets
// it up: a Canary targets the model's Deployment; Flagger creates the
// primary Deployment, the Services, the VirtualService and the
// DestinationRules, and judges the canary workload with its built-in
// request-success-rate check (istio_requests_total by destination_workload,
// reporter="destination"), which the data-plane stand-in's labels satisfy.
// One Flagger process per run, limited to the run's namespace.
type Flagger struct {
	Peer
}

// Name is the table's column name.
func (f *Flagger) Name() string { return "Flagger " + f.Version }

type flaggerRollout struct {
	m    *Model
	proc *process
}

// Setup deploys Deployment "fraud" (v1), starts Flagger and creates the
// Canary; it returns once Flagger has initialised it and v1 serves through
// Flagger's routing.
func (f *Flagger) Setup(ctx context.Context, c Cleaner, m *Model, p Profile) (Rollout, error) {
	if _, err := m.Kube.AppsV1().Deployments(m.NS).Create(ctx, m.Deployment(m.Name, m.Name, StableVersion, nil), metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	proc, err := startProcess(c, "flagger", f.Bin, filepath.Join(m.Env.Dir, "flagger-"+m.NS+".log"), nil,
		"--kubeconfig="+m.Env.Kube.Kubeconfig,
		"--metrics-server="+m.Env.Kube.PrometheusURL,
		"--mesh-provider=istio",
		"--namespace="+m.NS,
		"--port="+strconv.Itoa(port),
		"--log-level=info",
		"--zap-encoding=console",
	)
	if err != nil {
		return nil, err
	}
	r := &flaggerRollout{m: m, proc: proc}
	canary := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "flagger.app/v1beta1",
		"kind":       "Canary",
		"metadata":   map[string]any{"name": m.Name, "namespace": m.NS},
		"spec": map[string]any{
			"provider":                "istio",
			"targetRef":               map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": m.Name},
			"progressDeadlineSeconds": int64(300),
			"service":                 map[string]any{"port": int64(80)},
			"analysis": map[string]any{
				"interval":   Interval.String(),
				"threshold":  int64(FlaggerThreshold),
				"maxWeight":  int64(MaxWeight),
				"stepWeight": int64(StepWeight),
				"metrics": []any{map[string]any{
					"name":           "request-success-rate",
					"thresholdRange": map[string]any{"min": MinSuccessRate * 100},
					"interval":       QueryWindow,
				}},
			},
		},
	}}
	if _, err := m.Dynamic.Resource(canaryGVR).Namespace(m.NS).Create(ctx, canary, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create Canary: %w", err)
	}
	var phase string
	err = poll(ctx, 250*time.Millisecond, 2*time.Minute, func() bool {
		o, err := r.Observe(ctx)
		phase = o.Phase
		return err == nil && phase == "Initialized"
	})
	if err != nil {
		if perr := proc.exited(); perr != nil {
			return nil, perr
		}
		return nil, fmt.Errorf("flagger: Canary %s/%s not Initialized (phase %q; see %s): %w", m.NS, m.Name, phase, proc.log, err)
	}
	return r, m.WaitServing(ctx, StableVersion, time.Minute)
}

// Start releases v2 as a Flagger user does: a new pod template on the
// target Deployment.
func (r *flaggerRollout) Start(ctx context.Context) error {
	m := r.m
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := m.Kube.AppsV1().Deployments(m.NS).Get(ctx, m.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		d = d.DeepCopy()
		d.Spec.Template = m.PodTemplate(m.Name, CandidateVersion)
		_, err = m.Kube.AppsV1().Deployments(m.NS).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
}

// Observe reads the Canary's phase and canary weight: Succeeded is a
// promotion, Failed a rollback.
func (r *flaggerRollout) Observe(ctx context.Context) (Observation, error) {
	m := r.m
	if err := r.proc.exited(); err != nil {
		return Observation{}, err
	}
	u, err := m.Dynamic.Resource(canaryGVR).Namespace(m.NS).Get(ctx, m.Name, metav1.GetOptions{})
	if err != nil {
		return Observation{}, err
	}
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	w, _, _ := unstructured.NestedInt64(u.Object, "status", "canaryWeight")
	o := Observation{Phase: phase, Weight: int(w)}
	switch phase {
	case "Succeeded":
		o.Outcome = Promoted
	case "Failed":
		o.Outcome = RolledBack
	}
	return o, nil
}
