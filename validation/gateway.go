package validation

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
)

// gatewayChecks are the reference checks of a rollout on a Gateway API
// route: the route and its managed rules resolve (through the same router
// the controller uses), the versions' Services exist, and no other rollout
// manages the same rules.
func gatewayChecks(ctx context.Context, l Lookups, mr *v1alpha1.ModelRollout, opts Options) []check {
	ref := mr.Spec.RouteRef()
	refPath := field.NewPath("spec", map[string]string{v1alpha1.RouteKindHTTPRoute: "httpRoute", v1alpha1.RouteKindGRPCRoute: "grpcRoute"}[ref.Kind])
	routeChanged := func(o, n *v1alpha1.ModelRollout) bool {
		return !equality.Semantic.DeepEqual(o.Spec.RouteRef(), n.Spec.RouteRef()) || o.Spec.Stable != n.Spec.Stable || o.Spec.Candidate != n.Spec.Candidate
	}
	if opts.Routers == nil {
		return []check{{warns: []string{fmt.Sprintf("%s was not checked: this webhook has no Gateway API router", ref)}, changed: routeChanged}}
	}
	rt, err := opts.Routers.Kind(ref.Kind)
	if err != nil {
		return []check{{errs: field.ErrorList{field.Invalid(refPath, ref.Name, err.Error())}, changed: routeChanged}}
	}
	st, err := rt.Read(ctx, mr)
	if err != nil {
		return []check{{errs: field.ErrorList{field.InternalError(refPath, err)}, changed: routeChanged}}
	}
	var errs, splitErrs field.ErrorList
	if st.Problem != "" {
		p := refPath.Child("name")
		if st.Object != nil {
			p = refPath.Child("rules")
		}
		errs = append(errs, field.Invalid(p, ref.Name, st.Problem))
	}
	missing := func(p *field.Path, name, role string) *field.Error {
		return field.Invalid(p, name, fmt.Sprintf(
			"%s version %q has no Service in namespace %s: with a Gateway API route each version is a Service (whose selector picks its pods); create it or name one that exists",
			role, name, mr.Namespace))
	}
	if _, ok := st.Versions[mr.Spec.Stable]; !ok && st.Versions != nil {
		errs = append(errs, missing(stablePth, mr.Spec.Stable, "stable"))
	}
	if c := mr.Spec.Candidate; c != "" && st.Versions != nil {
		if _, ok := st.Versions[c]; !ok {
			errs = append(errs, missing(candPath, c, "candidate"))
		}
	}
	if in := mr.Spec.Intent; in != nil && st.Versions != nil {
		for i, w := range in.Weights {
			if _, ok := st.Versions[w.Subset]; !ok {
				splitErrs = append(splitErrs, missing(specPath.Child("intent", "weights").Index(i).Child("subset"), w.Subset, "split"))
			}
		}
	}
	if st.Object != nil && st.Problem == "" {
		errs = append(errs, gatewayConflicts(ctx, l, mr, rt, st, refPath)...)
	}
	return []check{
		{errs: errs, changed: routeChanged},
		{errs: splitErrs, changed: func(o, n *v1alpha1.ModelRollout) bool {
			return !equality.Semantic.DeepEqual(splitWeights(o), splitWeights(n))
		}},
	}
}

// gatewayConflicts rejects a rule that another rollout of the namespace
// already manages.
func gatewayConflicts(ctx context.Context, l Lookups, mr *v1alpha1.ModelRollout, rt router.Router, st *router.State, refPath *field.Path) field.ErrorList {
	ref := mr.Spec.RouteRef()
	others, err := l.ModelRollouts(ctx, mr.Namespace)
	if err != nil {
		return field.ErrorList{field.InternalError(refPath, fmt.Errorf("list ModelRollouts in %s: %w", mr.Namespace, err))}
	}
	var errs field.ErrorList
	for i := range others {
		o := &others[i]
		oref := o.Spec.RouteRef()
		if o.Name == mr.Name || o.DeletionTimestamp != nil || oref.Kind != ref.Kind || oref.Name != ref.Name {
			continue
		}
		theirs, err := rt.Weights(st.Object, oref.Routes)
		if err != nil {
			continue
		}
		for key := range st.Weights {
			if _, ok := theirs[key]; ok {
				p := refPath.Child("rules")
				if i := slices.Index(ref.Routes, key); i >= 0 {
					p = p.Index(i)
				}
				errs = append(errs, field.Invalid(p, key, fmt.Sprintf(
					"rule %q of %s %s/%s is already managed by ModelRollout %s/%s; one rule has one rollout: use that rollout, or name another rule",
					key, ref.Kind, mr.Namespace, ref.Name, o.Namespace, o.Name)))
			}
		}
	}
	return errs
}
