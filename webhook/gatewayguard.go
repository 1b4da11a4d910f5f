package webhook

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
	"github.com/fulcrum-ml/fulcrum/router/gatewayapi"
	"github.com/fulcrum-ml/fulcrum/validation"
)

// admitGatewayRoute guards the weights of the managed rules of an
// HTTPRoute or GRPCRoute, as admitVirtualService does for a
// VirtualService's routes: an edit by someone other than Fulcrum that
// changes them, or removes a managed rule, is denied (or admitted with a
// warning in warn mode). The weights are read through the same router the
// controller writes them with.
func (s *Server) admitGatewayRoute(r *http.Request, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Operation != admissionv1.Update || s.isFulcrum(req.UserInfo.Username) {
		return allow()
	}
	kind := req.Kind.Kind
	if req.Kind.Group != gatewayapi.Group || req.Kind.Version != gatewayapi.Version || (kind != v1alpha1.RouteKindHTTPRoute && kind != v1alpha1.RouteKindGRPCRoute) {
		return allow(fmt.Sprintf("Fulcrum's route guard does not know %s; weights of managed rules were not checked", req.Kind))
	}
	var old, now unstructured.Unstructured
	if err := old.UnmarshalJSON(req.OldObject.Raw); err != nil {
		return badRequest(fmt.Errorf("decode old %s: %w", kind, err))
	}
	if err := now.UnmarshalJSON(req.Object.Raw); err != nil {
		return badRequest(fmt.Errorf("decode %s: %w", kind, err))
	}
	for _, o := range []metav1.Object{&old, &now} {
		if err := inRequestNamespace(req, o); err != nil {
			return badRequest(err)
		}
	}
	rollouts, err := namespaced(s.lookups, req.Namespace).ModelRollouts(r.Context(), req.Namespace)
	if err != nil {
		logr.FromContextOrDiscard(r.Context()).Error(err, "list ModelRollouts for the route guard", "route", req.Namespace+"/"+req.Name)
		return allow("Fulcrum could not check whether this edit changes weights it manages: " + err.Error())
	}
	rt := gatewayapi.New(gatewayapi.Config{Kind: kind})
	msgs := gatewayRouteChanges(rt, &old, &now, rollouts)
	if len(msgs) == 0 {
		return allow()
	}
	msg := strings.Join(msgs, "; ")
	if s.cfg.GuardMode == GuardWarn {
		return allow(msg + " (allowed: the guard is in warn mode; Fulcrum will put its weights back)")
	}
	return deny(metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg})
}

// gatewayRouteChanges explains each managed rule whose weights the edit
// changes or which it removes, with the command that does it properly.
func gatewayRouteChanges(rt router.Router, old, now *unstructured.Unstructured, rollouts []v1alpha1.ModelRollout) []string {
	var out []string
	for i := range rollouts {
		mr := &rollouts[i]
		ref := mr.Spec.RouteRef()
		if ref.Kind != old.GetKind() || ref.Name != old.GetName() || mr.Namespace != old.GetNamespace() || !validation.ManagesRoutes(mr) {
			continue
		}
		before, err := rt.Weights(old, ref.Routes)
		if err != nil {
			continue // the rollout's own validation reports a broken reference
		}
		after, err := rt.Weights(now, ref.Routes)
		where := fmt.Sprintf("%s %s/%s", ref.Kind, old.GetNamespace(), old.GetName())
		if err != nil {
			out = append(out, fmt.Sprintf(
				"the managed rules of %s are managed by %s and after this edit they no longer resolve (%v): keep the rules and their Service backendRefs, or delete the rollout first with `kubectl -n %s delete modelrollout %s`",
				where, owner(mr), err, mr.Namespace, mr.Name))
			continue
		}
		for _, key := range sortedKeys(before) {
			if router.WeightsEqual(before[key], after[key]) {
				continue
			}
			out = append(out, fmt.Sprintf(
				"the weights of rule %q of %s are managed by %s: to pin weights run `fulcrumctl -n %s split %s %s`, to end the rollout `fulcrumctl -n %s rollback %s`; other fields and rules of this route may be edited freely",
				key, where, owner(mr), mr.Namespace, mr.Name, splitArgs(asWeights(after[key]), mr), mr.Namespace, mr.Name))
		}
	}
	return out
}

func sortedKeys(m router.RouteWeights) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// asWeights lists a rule's weights, largest first, for a split command.
func asWeights(m map[string]int32) []v1alpha1.SubsetWeight {
	var out []v1alpha1.SubsetWeight
	for k, v := range m {
		out = append(out, v1alpha1.SubsetWeight{Subset: k, Weight: v})
	}
	slices.SortFunc(out, func(a, b v1alpha1.SubsetWeight) int {
		if a.Weight != b.Weight {
			return int(b.Weight - a.Weight)
		}
		return strings.Compare(a.Subset, b.Subset)
	})
	return out
}
