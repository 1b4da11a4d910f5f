package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

var allPhases = []v1alpha1.Phase{
	v1alpha1.PhaseStable, v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseManualSplit,
	v1alpha1.PhasePromoted, v1alpha1.PhaseRolledBack, v1alpha1.PhaseFailed,
}

// Metrics are the controller's Prometheus series.
type Metrics struct {
	weight   *prometheus.GaugeVec
	phase    *prometheus.GaugeVec
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	writes   *prometheus.CounterVec
	verdicts *prometheus.CounterVec
	ready    *prometheus.GaugeVec
	gateRuns *prometheus.CounterVec
	gateTime *prometheus.HistogramVec
}

// NewMetrics creates the controller's metrics and registers them with reg
// (controller-runtime's metrics.Registry in the binary, so they are served
// on --metrics-bind-address beside the workqueue and client metrics).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fulcrum_rollout_weight",
			Help: "Percent of traffic the controller set on a subset of a rollout's managed routes.",
		}, []string{"namespace", "rollout", "subset"}),
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fulcrum_rollout_phase",
			Help: "1 for the phase a rollout is in, 0 for the others.",
		}, []string{"namespace", "rollout", "phase"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fulcrum_rollout_duration_seconds",
			Help:    "Time from the start of a rollout to its promotion or rollback.",
			Buckets: prometheus.ExponentialBuckets(30, 2, 12), // 30s .. ~17h
		}, []string{"outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulcrum_reconcile_errors_total",
			Help: "Reconcile errors by the stage that failed (read, analysis, virtualservice, spec, status).",
		}, []string{"stage"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulcrum_controller_writes_total",
			Help: "Writes the controller made to the API server, by kind (virtualservice, spec, status) and result.",
		}, []string{"kind", "result"}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulcrum_analysis_verdicts_total",
			Help: "Verdicts of analysis rounds per metric (Pass, Fail, Inconclusive, Error).",
		}, []string{"namespace", "rollout", "metric", "verdict"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fulcrum_rollout_ready_pods",
			Help: "Ready pods the controller counted for a subset of a rollout (role stable, candidate or other); a stable at 0 holds every rollout on it.",
		}, []string{"namespace", "rollout", "subset", "role"}),
		gateRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulcrum_gate_runs_total",
			Help: "Finished runs of spec.gates by hook (PreStart, EachStep, PrePromote, PostPromote, OnRollback), type (HTTP, Job, Approval) and outcome (Passed, Failed, TimedOut, Cancelled, Approved).",
		}, []string{"namespace", "rollout", "hook", "type", "outcome"}),
		gateTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fulcrum_gate_run_duration_seconds",
			Help:    "Time from a gate run's start to its outcome, by hook and type: how long rollouts wait for their gates.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 16), // 1s .. ~9h
		}, []string{"hook", "type"}),
	}
	for _, c := range []prometheus.Collector{m.weight, m.phase, m.duration, m.errors, m.writes, m.verdicts, m.ready, m.gateRuns, m.gateTime} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(mr *v1alpha1.ModelRollout) {
	if m == nil {
		return
	}
	m.weight.DeletePartialMatch(prometheus.Labels{"namespace": mr.Namespace, "rollout": mr.Name})
	for _, w := range mr.Status.Weights {
		m.weight.WithLabelValues(mr.Namespace, mr.Name, w.Subset).Set(float64(w.Weight))
	}
	for _, p := range allPhases {
		v := 0.0
		if mr.Status.Phase == p {
			v = 1
		}
		m.phase.WithLabelValues(mr.Namespace, mr.Name, string(p)).Set(v)
	}
}

func (m *Metrics) forget(namespace, name string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"namespace": namespace, "rollout": name}
	m.weight.DeletePartialMatch(l)
	m.phase.DeletePartialMatch(l)
	m.verdicts.DeletePartialMatch(l)
	m.ready.DeletePartialMatch(l)
	m.gateRuns.DeletePartialMatch(l)
}

// gateResults counts the gate runs that finished with the status write
// from before to after: results whose run id before did not list.
func (m *Metrics) gateResults(before, after *v1alpha1.ModelRollout) {
	if m == nil || after.Status.Gates == nil {
		return
	}
	seen := map[string]bool{}
	if g := before.Status.Gates; g != nil {
		for _, r := range g.Results {
			seen[r.ID] = true
		}
	}
	for _, r := range after.Status.Gates.Results {
		if seen[r.ID] {
			continue
		}
		m.gateRuns.WithLabelValues(after.Namespace, after.Name, string(r.At), string(r.Type), string(r.Outcome)).Inc()
		if d := r.FinishedAt.Sub(r.StartedAt.Time); d >= 0 && !r.StartedAt.IsZero() {
			m.gateTime.WithLabelValues(string(r.At), string(r.Type)).Observe(d.Seconds())
		}
	}
}

// readyPods records the Ready pods counted per subset this reconcile.
func (m *Metrics) readyPods(mr *v1alpha1.ModelRollout, pods map[string]int32) {
	if m == nil || pods == nil {
		return
	}
	m.ready.DeletePartialMatch(prometheus.Labels{"namespace": mr.Namespace, "rollout": mr.Name})
	for subset, n := range pods {
		role := "other"
		switch subset {
		case mr.Spec.Stable:
			role = "stable"
		case mr.Status.Candidate, mr.Spec.Candidate:
			role = "candidate"
		}
		m.ready.WithLabelValues(mr.Namespace, mr.Name, subset, role).Set(float64(n))
	}
}

// judged counts the verdict of every metric of an analysis round.
func (m *Metrics) judged(mr *v1alpha1.ModelRollout, round *v1alpha1.AnalysisRound) {
	if m == nil || round == nil {
		return
	}
	for _, res := range round.Metrics {
		m.verdicts.WithLabelValues(mr.Namespace, mr.Name, res.Name, string(res.Verdict)).Inc()
	}
}

func (m *Metrics) ended(outcome string, seconds float64) {
	if m != nil && outcome != "" {
		m.duration.WithLabelValues(outcome).Observe(seconds)
	}
}

func (m *Metrics) failed(stage string) {
	if m != nil {
		m.errors.WithLabelValues(stage).Inc()
	}
}

func (m *Metrics) wrote(kind string, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.writes.WithLabelValues(kind, result).Inc()
}
