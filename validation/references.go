package validation

import (
	"context"
	"fmt"
	"slices"
	"strings"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

var (
	specPath  = field.NewPath("spec")
	vsPath    = specPath.Child("virtualService")
	drPath    = specPath.Child("destinationRule")
	stablePth = specPath.Child("stable")
	candPath  = specPath.Child("candidate")
	metricsP  = specPath.Child("analysis", "metrics")
)

// checkVirtualService checks that the VirtualService exists and has the
// managed routes, each with destinations to weigh, and that no other rollout
// manages them.
func checkVirtualService(ctx context.Context, l Lookups, mr *v1alpha1.ModelRollout) (*istiov1.VirtualService, field.ErrorList, []string) {
	ref := *mr.Spec.VirtualService
	vs, err := l.VirtualService(ctx, mr.Namespace, ref.Name)
	if apierrors.IsNotFound(err) {
		return nil, field.ErrorList{field.Invalid(vsPath.Child("name"), ref.Name, fmt.Sprintf(
			"VirtualService %s/%s does not exist: create it before the ModelRollout, or fix the name", mr.Namespace, ref.Name))}, nil
	}
	if err != nil {
		return nil, field.ErrorList{field.InternalError(vsPath.Child("name"), fmt.Errorf("read VirtualService %s/%s: %w", mr.Namespace, ref.Name, err))}, nil
	}
	routes, errs := ManagedRoutes(vs, ref, vsPath)
	for _, r := range routes {
		if len(vs.Spec.GetHttp()[r.Index].GetRoute()) == 0 {
			errs = append(errs, field.Invalid(routePath(ref, r), r.Key(), fmt.Sprintf(
				"HTTP route %s of VirtualService %s/%s has no route destinations (a redirect or direct response has no weights); give it destinations with the model's subsets",
				r, vs.Namespace, vs.Name)))
		}
	}
	errs = append(errs, checkRouteConflicts(ctx, l, mr, vs, routes)...)
	return vs, errs, shadowMirrorWarnings(mr, vs, routes)
}

// shadowMirrorWarnings warns when a rollout with a shadow stage manages a
// route that already mirrors requests somewhere other than its candidate:
// Fulcrum never overwrites a mirror it did not set, so the stage would stop
// the rollout (Failed) until that mirror is gone.
func shadowMirrorWarnings(mr *v1alpha1.ModelRollout, vs *istiov1.VirtualService, routes []ManagedRoute) []string {
	c := mr.Spec.Strategy.Canary
	if c == nil || c.Shadow == nil {
		return nil
	}
	var warns []string
	for _, r := range routes {
		route := vs.Spec.GetHttp()[r.Index]
		m := route.GetMirror()
		if m == nil && len(route.GetMirrors()) == 0 {
			continue
		}
		if len(route.GetMirrors()) == 0 && m.GetSubset() != "" && m.GetSubset() == mr.Spec.Candidate {
			continue // the shadow stage's own mirror, already written
		}
		target := "mirrors[]"
		if m != nil {
			target = m.GetHost()
			if m.GetSubset() != "" {
				target += " subset " + m.GetSubset()
			}
		}
		warns = append(warns, fmt.Sprintf("spec.strategy.canary.shadow: HTTP route %s of VirtualService %s/%s already mirrors requests to %s; Fulcrum never overwrites a mirror it did not set, so the shadow stage will stop the rollout (Failed) until that mirror is removed",
			r, vs.Namespace, vs.Name, target))
	}
	return warns
}

func routePath(ref v1alpha1.VirtualServiceRef, r ManagedRoute) *field.Path {
	if i := slices.Index(ref.Routes, r.Name); r.Name != "" && i >= 0 {
		return vsPath.Child("routes").Index(i)
	}
	return vsPath.Child("routes")
}

// checkRouteConflicts rejects a route that another rollout of the namespace
// already manages: two controllers of one weight would fight.
func checkRouteConflicts(ctx context.Context, l Lookups, mr *v1alpha1.ModelRollout, vs *istiov1.VirtualService, routes []ManagedRoute) field.ErrorList {
	if len(routes) == 0 {
		return nil
	}
	others, err := l.ModelRollouts(ctx, mr.Namespace)
	if err != nil {
		return field.ErrorList{field.InternalError(vsPath, fmt.Errorf("list ModelRollouts in %s: %w", mr.Namespace, err))}
	}
	var errs field.ErrorList
	for i := range others {
		o := &others[i]
		if o.Name == mr.Name || o.DeletionTimestamp != nil || o.Spec.VirtualService == nil || o.Spec.VirtualService.Name != mr.Spec.VirtualService.Name {
			continue
		}
		theirs, _ := ManagedRoutes(vs, *o.Spec.VirtualService, vsPath)
		for _, r := range routes {
			if slices.ContainsFunc(theirs, func(t ManagedRoute) bool { return t.Key() == r.Key() }) {
				errs = append(errs, field.Invalid(routePath(*mr.Spec.VirtualService, r), r.Key(), fmt.Sprintf(
					"HTTP route %s of VirtualService %s/%s is already managed by ModelRollout %s/%s; one route has one rollout: use that rollout, or name another route",
					r, vs.Namespace, vs.Name, o.Namespace, o.Name)))
			}
		}
	}
	return errs
}

// checkDestinationRule checks that the DestinationRule exists and defines
// every subset the rollout names: stable and candidate (errs), and the
// weights of a split intent (splitErrs, kept apart so that a broken
// DestinationRule never blocks a pause or a rollback).
func checkDestinationRule(ctx context.Context, l Lookups, mr *v1alpha1.ModelRollout, vs *istiov1.VirtualService, domain istio.ClusterDomain) (errs, splitErrs field.ErrorList, warns []string) {
	hasSplit := mr.Spec.Intent != nil && len(mr.Spec.Intent.Weights) > 0
	dr, err := l.DestinationRule(ctx, mr.Namespace, mr.Spec.DestinationRule)
	if err != nil {
		var e *field.Error
		if apierrors.IsNotFound(err) {
			e = field.Invalid(drPath, mr.Spec.DestinationRule, fmt.Sprintf(
				"DestinationRule %s/%s does not exist: create it with one subset per model version (stable %q and candidate), or fix the name",
				mr.Namespace, mr.Spec.DestinationRule, mr.Spec.Stable))
		} else {
			e = field.InternalError(drPath, fmt.Errorf("read DestinationRule %s/%s: %w", mr.Namespace, mr.Spec.DestinationRule, err))
		}
		errs = field.ErrorList{e}
		if hasSplit {
			splitErrs = field.ErrorList{e}
		}
		return errs, splitErrs, nil
	}
	var subsets []string
	for _, s := range dr.Spec.GetSubsets() {
		subsets = append(subsets, s.GetName())
	}
	missing := func(p *field.Path, subset, role string) *field.Error {
		return field.Invalid(p, subset, fmt.Sprintf(
			"%s subset %q is not defined in DestinationRule %s/%s (it defines: %s); add the subset or name one that exists",
			role, subset, dr.Namespace, dr.Name, listOrNone(subsets)))
	}
	if !slices.Contains(subsets, mr.Spec.Stable) {
		errs = append(errs, missing(stablePth, mr.Spec.Stable, "stable"))
	}
	if c := mr.Spec.Candidate; c != "" && !slices.Contains(subsets, c) {
		errs = append(errs, missing(candPath, c, "candidate"))
	}
	errs = append(errs, checkExperiment(ctx, l, mr, subsets)...)
	if in := mr.Spec.Intent; in != nil {
		for i, w := range in.Weights {
			if !slices.Contains(subsets, w.Subset) {
				splitErrs = append(splitErrs, missing(specPath.Child("intent", "weights").Index(i).Child("subset"), w.Subset, "split"))
			}
		}
	}
	if vs != nil {
		host := istio.Host{Name: dr.Spec.GetHost(), Namespace: dr.Namespace}
		routes, _ := ManagedRoutes(vs, *mr.Spec.VirtualService, vsPath)
		for _, r := range routes {
			for _, d := range vs.Spec.GetHttp()[r.Index].GetRoute() {
				if h := d.GetDestination().GetHost(); !domain.Same(istio.Host{Name: h, Namespace: vs.Namespace}, host) {
					warns = append(warns, fmt.Sprintf(
						"HTTP route %s of VirtualService %s/%s sends traffic to host %q, but DestinationRule %s/%s is for host %q (Istio reads them as %s and %s in cluster domain %s): its subsets will not apply to that destination; write the DestinationRule's host, or its short name",
						r, vs.Namespace, vs.Name, h, dr.Namespace, dr.Name, dr.Spec.GetHost(),
						domain.FQDN(h, vs.Namespace), domain.FQDN(host.Name, host.Namespace), domain))
				}
			}
		}
	}
	return errs, splitErrs, warns
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
