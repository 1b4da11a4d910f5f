package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/fulcrum-ml/fulcrum/analysis"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/gates"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
	"github.com/fulcrum-ml/fulcrum/controller/warmup"
	"github.com/fulcrum-ml/fulcrum/router"
	"github.com/fulcrum-ml/fulcrum/router/gatewayapi"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

// EventRecorder is the part of client-go's events.EventRecorder the
// reconciler uses.
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...interface{})
}

// Config holds the reconciler's collaborators.
type Config struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads the API server directly; used for the fresh read
	// after a write conflict.
	APIReader client.Reader
	// Recorder records Kubernetes Events.
	Recorder EventRecorder
	// Clock is injected so tests control time; nil means the real clock.
	Clock clock.PassiveClock
	// Analyzer judges analysis rounds. Nil is allowed: rollouts with metrics
	// then get Error rounds saying no analyzer is configured (never Pass).
	Analyzer analysis.Analyzer
	// IstioVersion is the networking.istio.io version to use ("v1",
	// "v1beta1"); see DetectIstioVersion. Empty means v1.
	IstioVersion string
	// Metrics, if set, receive the controller's Prometheus series.
	Metrics *Metrics
	// Traffic reads the model's request rate for capacity checks
	// (spec.readiness.requestsPerPod). Nil: a rollout that asks for them
	// holds rising weights, saying no traffic reader is configured.
	Traffic analysis.TrafficReader
	// Rewards reads experiments' rewards (spec.strategy.experiment). Nil:
	// an experiment runs undecided, saying no Prometheus is configured.
	Rewards analysis.RewardReader
	// Warmup sends warm-up requests (spec.readiness.warmup.requests); it
	// runs with the manager (SetupWithManager adds it). Nil: such a gate
	// holds on the candidate's own traffic only.
	Warmup *warmup.Sender
	// Capacity measures one pod's capacity for rollouts with
	// spec.readiness.requestsPerPodQuery. Nil: such rollouts hold rising
	// weights, saying no Prometheus is configured.
	Capacity analysis.CapacityReader
	// ClusterDomain is the cluster's DNS domain (--cluster-domain):
	// short hosts expand into it and full hosts are compared in it.
	// Empty means cluster.local.
	ClusterDomain string
	// Notifier tells people about each history entry written (package
	// notify). Nil: nobody is told.
	Notifier Notifier
	// Gates makes the HTTP calls of spec.gates in the background; it runs
	// with the manager (SetupWithManager adds it). Nil: a runner with the
	// defaults (the rollout's own namespace's Services only).
	Gates *gates.Runner
	// GatewayKinds are the Gateway API route kinds the cluster serves at
	// gateway.networking.k8s.io/v1 (HTTPRoute, GRPCRoute; see
	// gatewayapi.Served). Rollouts on a kind not listed fail, saying so.
	GatewayKinds []string
}

// Reconciler reconciles ModelRollouts.
type Reconciler struct {
	client   client.Client
	reader   client.Reader
	recorder EventRecorder
	clock    clock.PassiveClock
	analyzer analysis.Analyzer
	traffic  analysis.TrafficReader
	warmup   *warmup.Sender
	rewards  analysis.RewardReader
	capacity analysis.CapacityReader
	gates    *gates.Runner
	metrics  *Metrics
	notifier Notifier
	// notifyEvents carry NotifyChanged's requests into the controller.
	notifyEvents chan event.GenericEvent
	// istio is the Istio router; routers picks each rollout's.
	istio   *istio.Router
	gateway []*gatewayapi.Router
	routers *router.Set
}

// New returns a Reconciler; register it with SetupWithManager.
func New(cfg Config) (*Reconciler, error) {
	if cfg.Client == nil {
		return nil, errors.New("controller: Config.Client is required")
	}
	r := &Reconciler{
		client: cfg.Client, reader: cfg.APIReader, recorder: cfg.Recorder, clock: cfg.Clock,
		analyzer: cfg.Analyzer, traffic: cfg.Traffic, capacity: cfg.Capacity, warmup: cfg.Warmup, rewards: cfg.Rewards,
		metrics: cfg.Metrics, notifier: cfg.Notifier, notifyEvents: make(chan event.GenericEvent, 256), gates: cfg.Gates,
	}
	if r.gates == nil {
		r.gates = gates.NewRunner(gates.Config{Hosts: gates.Hosts{ClusterDomain: cfg.ClusterDomain}})
	}
	domain := istio.ClusterDomain(cfg.ClusterDomain)
	if err := domain.Check(); err != nil {
		return nil, fmt.Errorf("controller: Config.ClusterDomain: %w", err)
	}
	if r.reader == nil {
		r.reader = cfg.Client
	}
	if r.clock == nil {
		r.clock = clock.RealClock{}
	}
	r.istio = istio.New(istio.Config{
		Reader: cfg.Client, Writer: cfg.Client, Fresh: r.reader, Version: cfg.IstioVersion, Domain: domain,
		OnWrite: func(err error) { r.metrics.wrote("virtualservice", err) },
	})
	routers := []router.Router{r.istio}
	for _, kind := range cfg.GatewayKinds {
		g := gatewayapi.New(gatewayapi.Config{
			Kind: kind, Reader: cfg.Client, Writer: cfg.Client, Fresh: r.reader,
			OnWrite: func(err error) { r.metrics.wrote(strings.ToLower(kind), err) },
		})
		r.gateway = append(r.gateway, g)
		routers = append(routers, g)
	}
	r.routers = router.NewSet(routers...)
	return r, nil
}

// NoAnalyzerMessage is the Error round's message when metrics are configured
// but the binary runs without an analysis engine.
const NoAnalyzerMessage = "no analysis engine configured: start fulcrum with --prometheus-url to judge rollouts that have metrics"

// Reconcile gathers, decides and writes one rollout.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx).WithValues("modelrollout", req.NamespacedName.String())
	ctx = ctrl.LoggerInto(ctx, log)

	mr := &v1alpha1.ModelRollout{}
	if err := r.client.Get(ctx, req.NamespacedName, mr); err != nil {
		if apierrors.IsNotFound(err) {
			r.metrics.forget(req.Namespace, req.Name)
			if r.notifier != nil {
				r.notifier.Forget(req.Namespace, req.Name)
			}
			if r.warmup != nil {
				r.warmup.Stop(req.NamespacedName)
			}
			r.gates.ForgetRollout(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		r.metrics.failed("read")
		return ctrl.Result{}, fmt.Errorf("get ModelRollout %s: %w", req.NamespacedName, err)
	}
	if !mr.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, mr)
	}
	if next, err := r.ensureFinalizer(ctx, mr); err != nil {
		return r.conflictOr(ctx, err, "finalizer")
	} else {
		mr = next
	}
	w, err := r.gather(ctx, mr)
	if err != nil {
		r.metrics.failed("read")
		return ctrl.Result{}, err
	}
	// A rollback waits for nothing: not for Prometheus either.
	if w.observed.Problem == "" && !rollbackPending(mr) && rollout.AnalysisDue(mr, w.observed.Now) {
		w.observed.Round = r.guardrails(ctx, mr, w)
	}
	d := rollout.Decide(mr, w.observed)
	r.notifiedCondition(mr, &d.Status, metav1.NewTime(w.observed.Now))

	// A promotion is written to the spec before the mesh: should the spec
	// update conflict (this reconcile read a stale copy), nothing has moved
	// and the next reconcile decides again. Written after, a conflict left
	// the candidate at 100% with a status that still said the last step,
	// and the next reconcile put the step's weights back as drift. Should
	// the mesh write fail instead, the next reconcile finds spec.stable
	// naming the candidate and completes the promotion (completePromotion).
	cur := mr
	if d.Promote {
		next, err := r.promote(ctx, mr, d.Status.Candidate)
		if err != nil {
			r.metrics.failed("spec")
			return r.conflictOr(ctx, err, "promote")
		}
		cur = next
	}
	if d.Weights != nil {
		m := mirrorChange(mr, &d.Status)
		m.warmup = warmupRoute(mr, &d.Status)
		m.experiment = experimentEdit(mr, &d.Status)
		// Only what the status read says Fulcrum wrote is taken away: a
		// reconcile that read a stale rollout (its cache behind the status
		// written a moment ago) must not strip the routes a fresh decision
		// just put on the mesh.
		m.clearWarmup = mr.Status.Warmup != nil
		m.clearExperiment = mr.Status.Experiment != nil
		if err := r.writeWeights(ctx, mr, w, d.Weights, m); err != nil {
			r.metrics.failed("virtualservice")
			return ctrl.Result{}, err
		}
	}
	// Warm-up requests start once their route is on the mesh.
	r.steerWarmup(ctx, mr, w, &d.Status)
	// Scale writes come after the weights: a rollback reaches the mesh
	// before its replicas are put back, and a write that fails is asked
	// for again by the next reconcile (status keeps what should be there).
	// Raising replicas never moves traffic: the gate waits for the pods.
	requeue := d.RequeueAfter
	if len(d.Scale) > 0 && !r.applyScale(ctx, cur, d.Scale) {
		requeue = minRequeue(requeue, scaleRetryDelay)
	}
	if !equality.Semantic.DeepEqual(mr.Status, d.Status) {
		upd, err := r.writeStatus(ctx, cur, d.Status)
		if err != nil {
			r.metrics.failed("status")
			return r.conflictOr(ctx, err, "status")
		}
		r.publish(mr, upd)
		r.metrics.gateResults(mr, upd)
		cur = upd
	}
	// Gate runs start once the status that records them is written.
	r.steerGates(ctx, cur, &mr.Status, w.service(mr))
	for _, e := range d.Events {
		if r.recorder != nil {
			r.recorder.Eventf(cur, nil, e.Type, e.Reason, "Reconcile", "%s", e.Message)
		}
		log.Info(e.Message, "reason", e.Reason, "type", e.Type)
	}
	r.metrics.ended(d.Outcome, d.Duration.Seconds())
	r.metrics.observe(cur)
	r.metrics.readyPods(cur, w.observed.ReadyPods)
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// scaleRetryDelay is how soon a failed scale write is tried again.
const scaleRetryDelay = 5 * time.Second

func minRequeue(a, b time.Duration) time.Duration {
	if a <= 0 || b < a {
		return b
	}
	return a
}

// rollbackPending reports whether a rollback intent waits to be applied.
func rollbackPending(mr *v1alpha1.ModelRollout) bool {
	in := mr.Spec.Intent
	return in != nil && in.ID != mr.Status.ObservedIntent && in.Action == v1alpha1.IntentRollback
}

// writeStatus writes the decided status. Should the API server refuse it as
// invalid or too large (a bound the decider missed), it writes the same
// decision with the bulky parts shrunk rather than not at all: an unwritten
// rollback would be decided again, from stale status, on every reconcile.
//
// A conflict means someone changed the object (its spec, labels, intent)
// since this reconcile read it. The status is the controller's alone, so if
// nobody else wrote it the decision still describes what was just written
// to the mesh, and it is written onto the fresh copy: lost, the first step
// of a canary would look like weights to adopt, and a step like drift to
// revert. The next reconcile decides on the new spec.
func (r *Reconciler) writeStatus(ctx context.Context, cur *v1alpha1.ModelRollout, st v1alpha1.ModelRolloutStatus) (*v1alpha1.ModelRollout, error) {
	upd, err := r.updateStatus(ctx, cur, st)
	if apierrors.IsConflict(err) {
		fresh := &v1alpha1.ModelRollout{}
		if gerr := r.reader.Get(ctx, client.ObjectKeyFromObject(cur), fresh); gerr == nil &&
			fresh.UID == cur.UID && equality.Semantic.DeepEqual(fresh.Status, cur.Status) {
			cur = fresh
			upd, err = r.updateStatus(ctx, cur, st)
		}
	}
	if err != nil && (apierrors.IsInvalid(err) || apierrors.IsRequestEntityTooLargeError(err)) {
		ctrl.LoggerFrom(ctx).Error(err, "status refused; writing it again with analysis messages and old history trimmed")
		upd, err = r.updateStatus(ctx, cur, shrinkStatus(st))
	}
	if err != nil {
		return nil, err
	}
	return upd, nil
}

func (r *Reconciler) updateStatus(ctx context.Context, cur *v1alpha1.ModelRollout, st v1alpha1.ModelRolloutStatus) (*v1alpha1.ModelRollout, error) {
	upd := cur.DeepCopy()
	upd.Status = st
	err := r.client.Status().Update(ctx, upd)
	r.metrics.wrote("status", err)
	return upd, err
}

// shrinkStatus keeps every decision (phase, weights, step, counts, newest
// history) and drops the evidence text that made the status too big.
func shrinkStatus(st v1alpha1.ModelRolloutStatus) v1alpha1.ModelRolloutStatus {
	out := *st.DeepCopy()
	if a := out.Analysis; a != nil {
		if n := len(a.RecentRounds); n > 1 {
			a.RecentRounds = a.RecentRounds[n-1:]
		}
		for i := range a.RecentRounds {
			for j := range a.RecentRounds[i].Metrics {
				m := &a.RecentRounds[i].Metrics[j]
				m.Message = v1alpha1.CutText(m.Message, 64)
			}
		}
	}
	const keep = 20
	if n := len(out.History); n > keep {
		out.HistoryDropped += int64(n - keep)
		out.History = out.History[n-keep:]
	}
	for i := range out.History {
		out.History[i].Reason = v1alpha1.CutText(out.History[i].Reason, 256)
	}
	out.Message = v1alpha1.CutText(out.Message, 256)
	for i := range out.Conditions {
		out.Conditions[i].Message = v1alpha1.CutText(out.Conditions[i].Message, 256)
	}
	return out
}

// conflictRetryDelay spaces the re-decision after a conflict a little, so a
// busy writer does not make the controller spin.
const conflictRetryDelay = 200 * time.Millisecond

// conflictOr turns a write conflict into an immediate requeue: the rollout
// changed under us (a new intent, say), so the decision must be made again on
// a fresh copy rather than retried blindly. The VirtualService write that may
// have preceded it is idempotent.
func (r *Reconciler) conflictOr(ctx context.Context, err error, what string) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		ctrl.LoggerFrom(ctx).V(1).Info("write conflict; deciding again on a fresh copy", "write", what)
		return ctrl.Result{RequeueAfter: conflictRetryDelay}, nil
	}
	return ctrl.Result{}, fmt.Errorf("update %s: %w", what, err)
}

func (r *Reconciler) analyze(ctx context.Context, mr *v1alpha1.ModelRollout, w *world) *v1alpha1.AnalysisRound {
	now := w.observed.Now
	errRound := func(msg string) *v1alpha1.AnalysisRound {
		return &v1alpha1.AnalysisRound{Verdict: v1alpha1.VerdictError, Metrics: []v1alpha1.MetricResult{{Name: "analysis", Verdict: v1alpha1.VerdictError, Message: msg}}}
	}
	if r.analyzer == nil {
		return errRound(NoAnalyzerMessage)
	}
	weights := map[string]int32{}
	for _, sw := range mr.Status.Weights {
		// An experiment's other arms are judged in rounds of their own
		// (guardrails): a round weighs the control and its candidate only.
		if mr.Status.Experiment == nil || sw.Subset == mr.Spec.Stable || sw.Subset == mr.Status.Candidate {
			weights[sw.Subset] = sw.Weight
		}
	}
	if sh := mr.Status.Shadow; sh != nil && sh.StartedAt != nil {
		// In shadow the candidate answers copies: for every 100 requests
		// stable serves, it gets Percent of them.
		weights = map[string]int32{mr.Spec.Stable: 100, sh.Subset: sh.Percent}
	}
	req := analysis.Request{
		Namespace: mr.Namespace, Name: mr.Name,
		Service: mr.Spec.Service, Stable: mr.Spec.Stable, Candidate: mr.Status.Candidate,
		Weights: weights, Spec: mr.Spec.Analysis, Now: now,
	}
	if req.Service == "" {
		req.Service = w.service(mr)
	}
	if mr.Status.StepStartedAt != nil {
		req.WindowStart = mr.Status.StepStartedAt.Time
	}
	if mr.Status.Step != nil {
		// The round and each sequential metric's step counts are labelled
		// with the step they judge.
		req.Step = *mr.Status.Step
	}
	if a := mr.Status.Analysis; a != nil && len(a.RecentRounds) > 0 {
		last := a.RecentRounds[len(a.RecentRounds)-1]
		if mr.Status.Step != nil && last.Step == *mr.Status.Step {
			req.Previous = last.Metrics
		}
	}
	// Sequential metrics continue one test over the rollout's completed
	// steps (see package analysis/stats).
	req.Evidence = rollout.CompletedEvidence(mr)
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	round, err := r.analyzer.Analyze(actx, req)
	if err != nil {
		r.metrics.failed("analysis")
		return errRound(fmt.Sprintf("analysis could not start: %v", err))
	}
	r.metrics.judged(mr, &round)
	return &round
}

// mirrorEdit is what the shadow stage and the warm-up gate change on the
// managed routes besides weights: the mirror to set (nil: none), the subset
// of a mirror Fulcrum set before that must go ("" : none), and the warm-up
// route to keep (nil: the rollout's warm-up route, if any, goes).
type mirrorEdit struct {
	set        *router.Mirror
	clear      string
	warmup     *router.WarmupRoute
	experiment *router.Experiment
	// clearWarmup and clearExperiment remove the rollout's warm-up route
	// and experiment stickiness when warmup and experiment are nil.
	clearWarmup, clearExperiment bool
}

// mirrorChange compares the mirror the previous status recorded with the
// one the decided status wants.
func mirrorChange(mr *v1alpha1.ModelRollout, decided *v1alpha1.ModelRolloutStatus) mirrorEdit {
	var e mirrorEdit
	if want := rollout.MirrorWanted(decided); want != nil {
		e.set = &router.Mirror{Subset: want.Subset, Percent: want.Percent}
	}
	if had := mr.Status.Shadow; had != nil && (e.set == nil || e.set.Subset != had.Subset) {
		e.clear = had.Subset
	}
	return e
}

// writeWeights makes the route object carry the weights (and the shadow
// stage's mirror, the warm-up route and the experiment's stickiness). The
// router re-reads the object on a conflict and computes the change again,
// so someone else's concurrent edit of other fields survives.
func (r *Reconciler) writeWeights(ctx context.Context, mr *v1alpha1.ModelRollout, w *world, weights []v1alpha1.SubsetWeight, m mirrorEdit) error {
	want := router.Desired{
		Weights: weights, Mirror: m.set, ClearMirror: m.clear,
		Warmup: m.warmup, ClearWarmup: m.clearWarmup,
		Experiment: m.experiment, ClearExperiment: m.clearExperiment,
	}
	if spec := rollout.ExperimentSpec(mr); spec != nil {
		want.ClearCookie = spec.Stickiness.CookieName
	}
	_, err := w.route.Write(ctx, mr, w.st, want)
	return err
}

// promote moves the candidate into spec.stable and clears spec.candidate in
// one update, with the resourceVersion the decision was made on.
func (r *Reconciler) promote(ctx context.Context, mr *v1alpha1.ModelRollout, candidate string) (*v1alpha1.ModelRollout, error) {
	upd := mr.DeepCopy()
	upd.Spec.Stable = candidate
	upd.Spec.Candidate = ""
	// A Start intent (the admin API's way to begin this rollout) needs
	// spec.candidate by the CRD's rule, so clearing the candidate alone is
	// refused and the promotion never completes. The intent has done its
	// job: its id stays in status.observedIntent and history, which is what
	// idempotency and fulcrumctl --wait look at.
	if upd.Spec.Intent != nil && upd.Spec.Intent.Action == v1alpha1.IntentStart {
		upd.Spec.Intent = nil
	}
	err := r.client.Update(ctx, upd)
	r.metrics.wrote("spec", err)
	if err != nil {
		return nil, err
	}
	// The status write that follows needs the new resourceVersion and must
	// carry the decided status, not the one the update returned.
	upd.Status = mr.Status
	return upd, nil
}
