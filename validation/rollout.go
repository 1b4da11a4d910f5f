package validation

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/analysis/templates"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

// ValidateRollout checks a new ModelRollout against the cluster. Errors
// reject it; warnings are risky but legal settings (and references that
// merely look odd). Of opts only AllowInlineQueries and ClusterDomain
// apply.
func ValidateRollout(ctx context.Context, l Lookups, mr *v1alpha1.ModelRollout, opts Options) (field.ErrorList, []string) {
	var errs field.ErrorList
	var warns []string
	for _, c := range referenceChecks(ctx, l, mr, opts) {
		errs = append(errs, c.errs...)
		warns = append(warns, c.warns...)
	}
	return errs, append(warns, RiskWarnings(mr)...)
}

// Options adjust the checks to the installation and the requester. The
// zero value is the strictest.
type Options struct {
	// AllowStableChange lets spec.stable move during a rollout (updates
	// only). Only Fulcrum's own controller gets it: promotion makes the
	// candidate stable.
	AllowStableChange bool
	// AllowInlineQueries accepts spec.analysis.metrics[].query: Fulcrum
	// runs with --allow-inline-queries.
	AllowInlineQueries bool
	// ClusterDomain is the cluster's DNS domain (--cluster-domain), in
	// which the VirtualService's destinations and the DestinationRule's
	// host are compared; empty means cluster.local.
	ClusterDomain string
	// Routers read Gateway API routes for rollouts that name one; nil:
	// such rollouts are admitted with a warning that they were not
	// checked.
	Routers *router.Set
}

// UpdateOptions is the name Options had when it held AllowStableChange
// only.
type UpdateOptions = Options

// ValidateRolloutUpdate checks a changed ModelRollout. References are
// checked where the spec changed them; a reference that was already broken
// and did not change is a warning, not an error, so that a broken rollout
// can still be paused, rolled back or fixed one field at a time. A rollout
// being deleted, or whose spec did not change (metadata, finalizers), is
// not checked at all.
func ValidateRolloutUpdate(ctx context.Context, l Lookups, old, mr *v1alpha1.ModelRollout, opts Options) (field.ErrorList, []string) {
	if mr.DeletionTimestamp != nil || equality.Semantic.DeepEqual(old.Spec, mr.Spec) {
		return nil, nil
	}
	var errs field.ErrorList
	if !opts.AllowStableChange {
		errs = append(errs, ValidateStableChange(old, mr)...)
	}
	var warns []string
	for _, c := range referenceChecks(ctx, l, mr, opts) {
		if c.changed(old, mr) {
			errs = append(errs, c.errs...)
		} else {
			for _, e := range c.errs {
				warns = append(warns, "unchanged but still wrong: "+e.Error())
			}
		}
		warns = append(warns, c.warns...)
	}
	return errs, append(warns, RiskWarnings(mr)...)
}

// ValidateStableChange forbids moving spec.stable while a rollout is in
// progress (status.phase Progressing, Paused or ManualSplit): the stable
// subset is the baseline analysis compares against and where a rollback
// sends traffic.
func ValidateStableChange(old, mr *v1alpha1.ModelRollout) field.ErrorList {
	if old.Spec.Stable == mr.Spec.Stable || !InProgress(old.Status.Phase) {
		return nil
	}
	return field.ErrorList{field.Forbidden(stablePth, fmt.Sprintf(
		"cannot change from %q to %q while the rollout is %s: run `fulcrumctl -n %s promote %s` to make the candidate stable, or `fulcrumctl -n %s rollback %s` to end the rollout, then edit spec.stable",
		old.Spec.Stable, mr.Spec.Stable, old.Status.Phase, mr.Namespace, mr.Name, mr.Namespace, mr.Name))}
}

// check is one group of reference checks and the spec fields it depends on.
type check struct {
	errs    field.ErrorList
	warns   []string
	changed func(old, mr *v1alpha1.ModelRollout) bool
}

func referenceChecks(ctx context.Context, l Lookups, mr *v1alpha1.ModelRollout, opts Options) []check {
	return append(routeChecks(ctx, l, mr, opts), gateChecks(mr))
}

func routeChecks(ctx context.Context, l Lookups, mr *v1alpha1.ModelRollout, opts Options) []check {
	if mr.Spec.GatewayRouted() {
		return append(gatewayChecks(ctx, l, mr, opts), metricChecks(ctx, l, mr, opts)...)
	}
	if mr.Spec.VirtualService == nil {
		// The CRD refuses this; the check stands for callers without it.
		return append([]check{{errs: field.ErrorList{field.Required(vsPath, "name the routes Fulcrum manages: spec.virtualService (with spec.destinationRule), spec.httpRoute or spec.grpcRoute")},
			changed: func(o, n *v1alpha1.ModelRollout) bool { return true }}}, metricChecks(ctx, l, mr, opts)...)
	}
	vs, vsErrs, vsWarns := checkVirtualService(ctx, l, mr)
	drErrs, splitErrs, drWarns := checkDestinationRule(ctx, l, mr, vs, istio.ClusterDomain(opts.ClusterDomain))
	return append([]check{
		{errs: vsErrs, warns: vsWarns, changed: func(o, n *v1alpha1.ModelRollout) bool {
			return !equality.Semantic.DeepEqual(o.Spec.VirtualService, n.Spec.VirtualService)
		}},
		{errs: drErrs, warns: drWarns, changed: func(o, n *v1alpha1.ModelRollout) bool {
			return o.Spec.DestinationRule != n.Spec.DestinationRule || o.Spec.Stable != n.Spec.Stable || o.Spec.Candidate != n.Spec.Candidate ||
				!equality.Semantic.DeepEqual(o.Spec.Strategy.Experiment, n.Spec.Strategy.Experiment)
		}},
		{errs: splitErrs, changed: func(o, n *v1alpha1.ModelRollout) bool {
			return !equality.Semantic.DeepEqual(splitWeights(o), splitWeights(n))
		}},
	}, metricChecks(ctx, l, mr, opts)...)
}

// metricChecks are the checks of the analysis and capacity queries.
func metricChecks(ctx context.Context, l Lookups, mr *v1alpha1.ModelRollout, opts Options) []check {
	return []check{
		{errs: checkMetrics(ctx, l, mr, opts), changed: func(o, n *v1alpha1.ModelRollout) bool {
			return !equality.Semantic.DeepEqual(o.Spec.Analysis, n.Spec.Analysis)
		}},
		{errs: checkCapacityQuery(mr, opts), changed: func(o, n *v1alpha1.ModelRollout) bool {
			return o.Spec.Readiness.RequestsPerPodQuery != n.Spec.Readiness.RequestsPerPodQuery
		}},
	}
}

// checkCapacityQuery: spec.readiness.requestsPerPodQuery is an inline
// query, admitted on the same terms as a metric's.
func checkCapacityQuery(mr *v1alpha1.ModelRollout, opts Options) field.ErrorList {
	q := mr.Spec.Readiness.RequestsPerPodQuery
	if q == "" {
		return nil
	}
	p := specPath.Child("readiness", "requestsPerPodQuery")
	if !opts.AllowInlineQueries {
		return field.ErrorList{field.Forbidden(p, templates.ErrInlineQueriesOff.Error())}
	}
	return ValidateQuery(p, q)
}

func splitWeights(mr *v1alpha1.ModelRollout) []v1alpha1.SubsetWeight {
	if mr.Spec.Intent == nil {
		return nil
	}
	return mr.Spec.Intent.Weights
}
