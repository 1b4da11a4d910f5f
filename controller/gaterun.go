package controller

import (
	"context"
	"fmt"
	"net/http"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/gates"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
)

// The reconciler's part of spec.gates: read what the runs that status
// records have done (gatherGates, before Decide), and after the decided
// status is written start the runs it added and stop those it dropped
// (steerGates). Runs start only once recorded, so a status write that
// fails never leaves a Job or a call that no status knows.

// gateRuns are the runs a status records: the pending one and those in
// the background.
func gateRuns(st *v1alpha1.ModelRolloutStatus) []v1alpha1.GateRun {
	gs := st.Gates
	if gs == nil {
		return nil
	}
	var out []v1alpha1.GateRun
	if gs.Pending != nil && gs.Pending.Type != v1alpha1.GateTypeApproval {
		out = append(out, *gs.Pending)
	}
	return append(out, gs.Background...)
}

// gatherGates reads each running HTTP or Job gate: the runner's result, or
// the Job from the cache.
func (r *Reconciler) gatherGates(ctx context.Context, mr *v1alpha1.ModelRollout, w *world) error {
	runs := gateRuns(&mr.Status)
	if len(runs) == 0 {
		return nil
	}
	obs := map[string]rollout.GateObservation{}
	for _, run := range runs {
		if run.Type == v1alpha1.GateTypeJob {
			job := &batchv1.Job{}
			err := r.client.Get(ctx, types.NamespacedName{Namespace: mr.Namespace, Name: run.Job}, job)
			switch {
			case err == nil:
				obs[run.ID] = gates.Observe(job)
				continue
			case !apierrors.IsNotFound(err):
				return fmt.Errorf("get Job %s/%s of gate %s: %w", mr.Namespace, run.Job, run.Name, err)
			}
		}
		// An HTTP run's result, or why a Job is not there.
		if res, ok := r.gates.Result(run.ID); ok {
			obs[run.ID] = res
		}
	}
	w.observed.Gates = obs
	return nil
}

// steerGates starts the runs of the written status (decided) that are not
// running, and stops those of the previous status (had) it dropped: their
// gate passed, failed or was cancelled. A cancelled Job that still runs is
// deleted; a finished one stays for its logs (its TTL removes it).
func (r *Reconciler) steerGates(ctx context.Context, mr *v1alpha1.ModelRollout, had *v1alpha1.ModelRolloutStatus, service string) {
	want := map[string]bool{}
	for _, run := range gateRuns(&mr.Status) {
		want[run.ID] = true
		g := rollout.FindGate(mr, run.Name)
		if g == nil {
			continue // removed from the spec: the decider ends the run
		}
		p := gates.NewPayload(mr, &run, service)
		switch run.Type {
		case v1alpha1.GateTypeHTTP:
			r.startHTTPGate(ctx, mr, g, &run, p)
		case v1alpha1.GateTypeJob:
			r.startJobGate(ctx, mr, g, &run, p)
		}
	}
	for _, run := range gateRuns(had) {
		if want[run.ID] {
			continue
		}
		r.gates.Forget(run.ID)
		if run.Type == v1alpha1.GateTypeJob {
			r.stopJob(ctx, mr, run.Job)
		}
	}
}

// startHTTPGate hands the run to the runner, once: the URL must be one the
// controller may call (a refusal fails the gate), and its headers' Secrets
// must exist (until they do, the run waits, saying so).
func (r *Reconciler) startHTTPGate(ctx context.Context, mr *v1alpha1.ModelRollout, g *v1alpha1.Gate, run *v1alpha1.GateRun, p gates.Payload) {
	key := rolloutKey(mr)
	if r.gates.Started(run.ID) {
		return
	}
	if err := r.gates.Hosts().Check(g.HTTP.URL, mr.Namespace); err != nil {
		r.gates.Note(run.ID, key, rollout.GateObservation{Done: true, Message: "not called: " + err.Error()})
		return
	}
	headers, err := r.gateHeaders(ctx, mr, g)
	if err != nil {
		r.gates.Note(run.ID, key, rollout.GateObservation{Message: "not called yet: " + err.Error()})
		return
	}
	err = r.gates.Ensure(gates.Call{Key: run.ID, Rollout: key, Spec: *g.HTTP, Headers: headers, Payload: p, Deadline: deadlineOf(run)})
	if err != nil {
		ctrl.LoggerFrom(ctx).Info("gate not started", "gate", run.Name, "reason", err.Error())
	}
}

// gateHeaders resolves a gate's headers, reading Secrets by name (a direct
// GET: the controller never lists or caches Secrets).
func (r *Reconciler) gateHeaders(ctx context.Context, mr *v1alpha1.ModelRollout, g *v1alpha1.Gate) (http.Header, error) {
	h := http.Header{}
	for _, hd := range g.HTTP.Headers {
		if hd.Value != nil {
			h.Set(hd.Name, *hd.Value)
			continue
		}
		ref := hd.ValueFrom
		sec := &corev1.Secret{}
		if err := r.reader.Get(ctx, types.NamespacedName{Namespace: mr.Namespace, Name: ref.Name}, sec); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("the Secret %s/%s (header %s) does not exist", mr.Namespace, ref.Name, hd.Name)
			}
			return nil, fmt.Errorf("read Secret %s/%s (header %s): %w", mr.Namespace, ref.Name, hd.Name, err)
		}
		v, ok := sec.Data[ref.Key]
		if !ok {
			return nil, fmt.Errorf("the Secret %s/%s has no key %s (header %s)", mr.Namespace, ref.Name, ref.Key, hd.Name)
		}
		h.Set(hd.Name, string(v))
	}
	return h, nil
}

// startJobGate creates the run's Job unless it exists. The name is the
// run's: after a restart, or a create whose answer was lost, the Job is
// found rather than made twice. A Job the API server refuses as invalid
// fails the gate with its message; other errors are retried.
func (r *Reconciler) startJobGate(ctx context.Context, mr *v1alpha1.ModelRollout, g *v1alpha1.Gate, run *v1alpha1.GateRun, p gates.Payload) {
	have := &batchv1.Job{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: mr.Namespace, Name: run.Job}, have); err == nil {
		return
	}
	if res, ok := r.gates.Result(run.ID); ok && res.Done {
		return
	}
	job := gates.BuildJob(mr, g, run, p)
	err := r.client.Create(ctx, job)
	switch {
	case err == nil, apierrors.IsAlreadyExists(err):
		r.gates.Clear(run.ID)
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		r.gates.Note(run.ID, rolloutKey(mr), rollout.GateObservation{Done: true, Message: fmt.Sprintf("the API server refused Job %s: %v", run.Job, err)})
	default:
		r.gates.Note(run.ID, rolloutKey(mr), rollout.GateObservation{Message: fmt.Sprintf("Job %s not created yet: %v", run.Job, err)})
		ctrl.LoggerFrom(ctx).Info("gate Job not created", "job", mr.Namespace+"/"+run.Job, "reason", err.Error())
	}
}

// stopJob deletes a Job whose run ended before it finished (cancelled or
// timed out), with its pods.
func (r *Reconciler) stopJob(ctx context.Context, mr *v1alpha1.ModelRollout, name string) {
	job := &batchv1.Job{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: mr.Namespace, Name: name}, job); err != nil || gates.Finished(job) {
		return
	}
	err := r.client.Delete(ctx, job, client.PropagationPolicy("Background"))
	if err != nil && !apierrors.IsNotFound(err) {
		ctrl.LoggerFrom(ctx).Info("gate Job not deleted", "job", mr.Namespace+"/"+name, "reason", err.Error())
	}
}

func deadlineOf(run *v1alpha1.GateRun) time.Time {
	if run.Deadline != nil {
		return run.Deadline.Time
	}
	return run.StartedAt.Add(rollout.DefaultHTTPGateTimeout)
}
