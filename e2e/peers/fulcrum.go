package peers

import (
	"context"
	"fmt"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// Fulcrum runs the real fulcrum binary (controller only, limited to the
// run's namespace, with the shipped RBAC) on the model's own routing
// objects: a Deployment per version, DestinationRule subsets v1 and v2 and
// route "predict" of the VirtualService, judged by the built-in
// istio-error-rate template with the sequential judge at the peers'
// tolerance.
type Fulcrum struct {
	// SpecYAML, when set, is YAML of a ModelRollout spec merged over the
	// benchmark's (FulcrumSpec), to measure other strategies or analysis
	// settings.
	SpecYAML []byte
}

// Name is the table's column name.
func (f *Fulcrum) Name() string { return "Fulcrum" }

// FulcrumSpec is the benchmark's ModelRollout spec: the peers' steps and
// interval, each step at least one interval long, and the error-rate
// test at the peers' tolerance and 99% confidence. Other analysis settings
// keep their defaults (the README's configuration).
func FulcrumSpec(name string) v1alpha1.ModelRolloutSpec {
	var steps []int32
	for w := StepWeight; w <= MaxWeight; w += StepWeight {
		steps = append(steps, int32(w))
	}
	steps = append(steps, 100)
	return v1alpha1.ModelRolloutSpec{
		VirtualService:  &v1alpha1.VirtualServiceRef{Name: name, Routes: []string{"predict"}},
		DestinationRule: name,
		Service:         name,
		Stable:          StableVersion,
		// minStepDuration unset: the steps follow the evidence (at least
		// analysis.MinDwell each), as a user who asks for speed would set it.
		Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{Steps: steps}},
		Analysis: &v1alpha1.Analysis{
			Interval: metav1.Duration{Duration: Interval},
			Metrics: []v1alpha1.Metric{{Name: "error-rate", Template: "istio-error-rate",
				Sequential: &v1alpha1.SequentialJudge{MaxIncrease: Tolerance, Confidence: 0.99}}},
		},
	}
}

type fulcrumRollout struct {
	m    *Model
	proc *rig.Fulcrum
}

// Setup creates the Service, DestinationRule, VirtualService (v1 100%),
// both Deployments, a fulcrum process and an idle ModelRollout, and returns
// once the rollout is Stable and v1 serves.
func (f *Fulcrum) Setup(ctx context.Context, c Cleaner, m *Model, p Profile) (Rollout, error) {
	if _, err := m.Kube.CoreV1().Services(m.NS).Create(ctx, m.Service(m.Name, m.Name), metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	dr := &istionetv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.NS}, Spec: networking.DestinationRule{Host: m.Name}}
	vs := &istionetv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.NS},
		Spec: networking.VirtualService{Hosts: []string{m.Name}, Http: []*networking.HTTPRoute{{Name: "predict"}}}}
	for _, v := range []string{StableVersion, CandidateVersion} {
		dr.Spec.Subsets = append(dr.Spec.Subsets, &networking.Subset{Name: v, Labels: map[string]string{"version": v}})
		w := int32(0)
		if v == StableVersion {
			w = 100
		}
		vs.Spec.Http[0].Route = append(vs.Spec.Http[0].Route, &networking.HTTPRouteDestination{
			Destination: &networking.Destination{Host: m.Name, Subset: v}, Weight: w})
		d := m.Deployment(m.Name+"-"+v, m.Name, v, map[string]string{"version": v})
		if _, err := m.Kube.AppsV1().Deployments(m.NS).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}
	if _, err := m.Istio.NetworkingV1().DestinationRules(m.NS).Create(ctx, dr, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	if _, err := m.Istio.NetworkingV1().VirtualServices(m.NS).Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	proc, err := m.Env.StartFulcrum(ctx, c, rig.FulcrumConfig{Name: "fulcrum-" + m.NS, Namespaces: []string{m.NS}, Controller: true})
	if err != nil {
		return nil, err
	}
	mr := &v1alpha1.ModelRollout{ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.NS}, Spec: FulcrumSpec(m.Name)}
	if len(f.SpecYAML) > 0 {
		if err := yaml.Unmarshal(f.SpecYAML, &mr.Spec); err != nil {
			return nil, fmt.Errorf("fulcrum spec override: %w", err)
		}
		mr.Spec.Candidate = ""
	}
	if err := m.Env.Client.Create(ctx, mr); err != nil {
		return nil, fmt.Errorf("create ModelRollout: %w", err)
	}
	r := &fulcrumRollout{m: m, proc: proc}
	var o Observation
	err = poll(ctx, 250*time.Millisecond, 2*time.Minute, func() bool {
		o, err = r.Observe(ctx)
		return err == nil && o.Phase == string(v1alpha1.PhaseStable)
	})
	if err != nil {
		return nil, fmt.Errorf("ModelRollout %s/%s not Stable (phase %q; see %s): %w", m.NS, m.Name, o.Phase, proc.Log, err)
	}
	return r, m.WaitServing(ctx, StableVersion, time.Minute)
}

// Start sets spec.candidate, as `fulcrumctl start` does through the admin
// API.
func (r *fulcrumRollout) Start(ctx context.Context) error {
	mr := &v1alpha1.ModelRollout{ObjectMeta: metav1.ObjectMeta{Name: r.m.Name, Namespace: r.m.NS}}
	patch := []byte(fmt.Sprintf(`{"spec":{"candidate":%q}}`, CandidateVersion))
	return r.m.Env.Client.Patch(ctx, mr, client.RawPatch(types.MergePatchType, patch))
}

// Observe reads the ModelRollout's phase and candidate weight.
func (r *fulcrumRollout) Observe(ctx context.Context) (Observation, error) {
	select {
	case <-r.proc.Done():
		return Observation{}, fmt.Errorf("%w: fulcrum; see %s", errControllerExited, r.proc.Log)
	default:
	}
	var mr v1alpha1.ModelRollout
	if err := r.m.Env.Client.Get(ctx, types.NamespacedName{Namespace: r.m.NS, Name: r.m.Name}, &mr); err != nil {
		return Observation{}, err
	}
	o := Observation{Phase: string(mr.Status.Phase)}
	for _, w := range mr.Status.Weights {
		if w.Subset == CandidateVersion {
			o.Weight = int(w.Weight)
		}
	}
	switch mr.Status.Phase {
	case v1alpha1.PhasePromoted:
		o.Outcome = Promoted
	case v1alpha1.PhaseRolledBack, v1alpha1.PhaseFailed:
		o.Outcome = RolledBack
	case v1alpha1.PhasePaused:
		o.Outcome = Paused
	}
	return o, nil
}
