package faults

import (
	"fmt"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// restoreFinalizer is the finalizer that returns a deleted rollout's
// routes to stable (spec.onDelete RestoreStable).
const restoreFinalizer = "fulcrum.dev/restore-stable"

var stableOnly = map[string]int32{"v1": 100}

// Given a canary serving 30% with live traffic, when its ModelRollout is
// deleted (spec.onDelete left to its default, RestoreStable), then the
// managed route is at stable 100% before the object is gone, and the data
// plane sends nothing to the candidate later than reactBound after the
// delete.
func TestDeleteRestoresStable(t *testing.T) {
	c := given(t, caseConfig{})
	c.startFulcrum("fulcrum")
	c.canary(at30(), split70)
	mr := c.rollout()
	if mr.Spec.OnDelete != v1alpha1.OnDeleteRestoreStable || !slices.Contains(mr.Finalizers, restoreFinalizer) {
		t.Fatalf("spec.onDelete %q, finalizers %v; want RestoreStable by default and %s", mr.Spec.OnDelete, mr.Finalizers, restoreFinalizer)
	}

	// When
	deleted := c.deleteRollout()

	// Then
	c.goneWithRoutes(deleted, finalizerBound, stableOnly)
	c.safeWithin("v2", deleted, reactBound)
	c.logEvents()
	c.servedShare("v1", 100, 600)
}

// Given a canary serving 30% whose spec.onDelete is Keep, when the
// ModelRollout is deleted, then the object goes and the weights stay 70/30:
// the candidate keeps its share of live traffic.
func TestDeleteKeepLeavesWeights(t *testing.T) {
	c := given(t, caseConfig{})
	c.startFulcrum("fulcrum")
	c.canary(at30(), split70, func(mr *v1alpha1.ModelRollout) { mr.Spec.OnDelete = v1alpha1.OnDeleteKeep })

	// When
	deleted := c.deleteRollout()

	// Then
	c.goneWithRoutes(deleted, finalizerBound, split70)
	c.logEvents()
	c.holds("70/30 once the rollout is gone", 2*time.Second, func() bool { return sameWeights(c.weights(), split70) })
	c.servedShare("v2", 30, 1500)
}

// Given a canary serving 30%, when its VirtualService is deleted and then
// the ModelRollout, then the ModelRollout still goes (the finalizer has no
// route to restore and must not wait for one).
func TestDeleteWithMissingVirtualService(t *testing.T) {
	c := given(t, caseConfig{noLoad: true})
	c.startFulcrum("fulcrum")
	c.canary(at30(), split70)

	// When
	if err := c.model.Istio.NetworkingV1().VirtualServices(c.model.NS).Delete(c.ctx, c.model.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted := c.deleteRollout()

	// Then
	c.goneWithin(deleted, finalizerBound)
	c.logEvents()
}

// Given a canary serving 30%, when its ModelRollout is deleted and the
// fulcrum process is killed (SIGKILL) right away, in the middle of the
// finalizer's work, and a new process is started, then the routes still end
// at stable 100% before the object goes, and the data plane sends nothing
// to the candidate later than finalizerBound after the new process is up.
func TestControllerKilledDuringFinalizer(t *testing.T) {
	c := given(t, caseConfig{})
	first := c.startFulcrum("fulcrum-1")
	c.canary(at30(), split70)

	// When
	deleted := c.deleteRollout()
	first.Kill()
	killed := time.Now()
	t.Logf("killed %s after the delete; then: VirtualService %v, %s", killed.Sub(deleted).Round(time.Microsecond), c.weights(), c.finalizerState())
	c.startFulcrum("fulcrum-2")
	restarted := time.Now()

	// Then
	c.goneWithRoutes(restarted, finalizerBound, stableOnly)
	c.safeWithin("v2", restarted, finalizerBound)
	c.logEvents()
	c.servedShare("v1", 100, 600)
}

// deleteRollout deletes the case's ModelRollout and returns when the API
// server accepted it.
func (c *faultCase) deleteRollout() time.Time {
	c.t.Helper()
	if err := env.Client.Delete(c.ctx, c.rollout()); err != nil {
		c.t.Fatalf("delete ModelRollout: %v", err)
	}
	return time.Now()
}

// goneWithin waits until the ModelRollout is gone, failing the case if it
// is still there bound after since.
func (c *faultCase) goneWithin(since time.Time, bound time.Duration) {
	c.t.Helper()
	for {
		_, err := c.model.Rollout(c.ctx)
		if apierrors.IsNotFound(err) {
			c.t.Logf("ModelRollout gone %s after %s", time.Since(since).Round(time.Millisecond), since.Format("15:04:05.000"))
			return
		}
		if time.Since(since) > bound {
			c.t.Fatalf("ModelRollout still there %s later (bound %s): %s; %s", time.Since(since).Round(time.Millisecond), bound, c.finalizerState(), c.state())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// goneWithRoutes is goneWithin, then checks that the routes were at want
// when the object went: read after the object is seen gone, the
// VirtualService shows every write made before the finalizer came off.
func (c *faultCase) goneWithRoutes(since time.Time, bound time.Duration, want map[string]int32) {
	c.t.Helper()
	c.goneWithin(since, bound)
	if w := c.weights(); !sameWeights(w, want) {
		c.t.Fatalf("ModelRollout gone with the VirtualService at %v, want %v", w, want)
	}
}

// finalizerState says whether the rollout is still there, with which
// finalizers, for logs and failure messages.
func (c *faultCase) finalizerState() string {
	mr, err := c.model.Rollout(c.ctx)
	switch {
	case apierrors.IsNotFound(err):
		return "rollout gone"
	case err != nil:
		return "rollout: " + err.Error()
	}
	return fmt.Sprintf("rollout there, phase %s, finalizers %v", mr.Status.Phase, mr.Finalizers)
}
