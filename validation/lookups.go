package validation

import (
	"context"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Lookups reads the objects a ModelRollout refers to. Get methods return an
// error for which apierrors.IsNotFound is true when the object does not
// exist; any other error is reported as an internal error, never as a verdict
// on the rollout.
type Lookups interface {
	VirtualService(ctx context.Context, namespace, name string) (*istiov1.VirtualService, error)
	DestinationRule(ctx context.Context, namespace, name string) (*istiov1.DestinationRule, error)
	MetricTemplate(ctx context.Context, namespace, name string) (*v1alpha1.MetricTemplate, error)
	// ModelRollouts lists the rollouts of a namespace.
	ModelRollouts(ctx context.Context, namespace string) ([]v1alpha1.ModelRollout, error)
}

// InProgress reports whether a rollout of this phase is moving or holding
// traffic on a candidate: Progressing, Paused or ManualSplit. While it is,
// spec.stable must not change.
func InProgress(phase v1alpha1.Phase) bool {
	switch phase {
	case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseManualSplit:
		return true
	}
	return false
}

// ManagesRoutes reports whether Fulcrum owns the weights of the rollout's
// routes: every rollout that is not being deleted and has not Failed (a
// Failed rollout cannot act: its references are missing or broken). Idle
// (Stable, Promoted, RolledBack) rollouts still hold stable at 100%, so their
// routes stay managed; to take them back, delete the ModelRollout.
func ManagesRoutes(mr *v1alpha1.ModelRollout) bool {
	return mr.DeletionTimestamp == nil && mr.Status.Phase != v1alpha1.PhaseFailed
}
