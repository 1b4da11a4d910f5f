package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

// GuardMode says what the VirtualService guard does with an edit of a
// managed route's weights or steering by someone other than Fulcrum.
type GuardMode string

const (
	// GuardDeny rejects the edit.
	GuardDeny GuardMode = "deny"
	// GuardWarn admits it with a warning (the controller then puts the
	// weights back).
	GuardWarn GuardMode = "warn"
)

// VirtualService versions the guard decodes. Their spec is one schema, so
// each decodes into the v1 type.
var guardedVersions = []string{"v1", "v1beta1", "v1alpha3"}

// admitVirtualService guards the weights and the steering of managed routes.
func (s *Server) admitVirtualService(r *http.Request, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Operation != admissionv1.Update || s.isFulcrum(req.UserInfo.Username) {
		return allow()
	}
	if req.Kind.Group != "networking.istio.io" || req.Kind.Kind != "VirtualService" || !slices.Contains(guardedVersions, req.Kind.Version) {
		return allow(fmt.Sprintf("Fulcrum's VirtualService guard does not know %s; weights of managed routes were not checked", req.Kind))
	}
	var old, vs istiov1.VirtualService
	if err := json.Unmarshal(req.OldObject.Raw, &old); err != nil {
		return badRequest(fmt.Errorf("decode old VirtualService: %w", err))
	}
	if err := json.Unmarshal(req.Object.Raw, &vs); err != nil {
		return badRequest(fmt.Errorf("decode VirtualService: %w", err))
	}
	// The steering checks read the objects as written, like the router.
	var oldU, vsU unstructured.Unstructured
	if err := oldU.UnmarshalJSON(req.OldObject.Raw); err != nil {
		return badRequest(fmt.Errorf("decode old VirtualService: %w", err))
	}
	if err := vsU.UnmarshalJSON(req.Object.Raw); err != nil {
		return badRequest(fmt.Errorf("decode VirtualService: %w", err))
	}
	for _, o := range []metav1.Object{&old, &vs, &oldU, &vsU} {
		if err := inRequestNamespace(req, o); err != nil {
			return badRequest(err)
		}
	}
	rollouts, err := namespaced(s.lookups, req.Namespace).ModelRollouts(r.Context(), req.Namespace)
	if err != nil {
		// Fail open, like the Ignore failure policy: the guard must never
		// block mesh configuration because Fulcrum cannot read.
		logr.FromContextOrDiscard(r.Context()).Error(err, "list ModelRollouts for the VirtualService guard", "virtualService", req.Namespace+"/"+req.Name)
		return allow("Fulcrum could not check whether this edit changes weights it manages: " + err.Error())
	}
	changes := validation.ManagedRouteChanges(&old, &vs, rollouts)
	var blocking, released []validation.SteeringChange
	for _, c := range validation.ManagedRouteSteering(&oldU, &vsU, rollouts) {
		if c.Blocks() {
			blocking = append(blocking, c)
		}
		if len(c.Released) > 0 {
			released = append(released, c)
		}
	}
	var notes []string
	if len(released) > 0 {
		notes = append(notes, ReleaseMessage(&vs, released))
	}
	if len(changes) == 0 && len(blocking) == 0 {
		return allow(notes...)
	}
	var msgs, warns []string
	if len(changes) > 0 {
		msg := GuardMessage(&vs, changes)
		msgs = append(msgs, msg)
		warns = append(warns, msg+" (allowed: the guard is in warn mode; Fulcrum will put its weights back)")
	}
	if len(blocking) > 0 {
		msg := SteeringMessage(&vs, blocking)
		msgs = append(msgs, msg)
		warns = append(warns, msg+" (allowed: the guard is in warn mode; Fulcrum does not undo this change)")
	}
	if s.cfg.GuardMode == GuardWarn {
		return allow(append(warns, notes...)...)
	}
	return deny(metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: strings.Join(msgs, "; ")}, notes...)
}

// owner names the rollout that manages a route, with its phase.
func owner(mr *v1alpha1.ModelRollout) string {
	o := fmt.Sprintf("ModelRollout %s/%s", mr.Namespace, mr.Name)
	if mr.Status.Phase != "" {
		o += fmt.Sprintf(" (%s)", mr.Status.Phase)
	}
	return o
}

// GuardMessage explains which rollouts own the edited routes and which
// fulcrumctl command does what the edit tried to do.
func GuardMessage(vs *istiov1.VirtualService, changes []validation.RouteChange) string {
	var parts []string
	for _, c := range changes {
		mr := c.Rollout
		if c.Removed {
			parts = append(parts, fmt.Sprintf(
				"HTTP route %s of VirtualService %s/%s is managed by %s and this edit removes or renames it: keep the route, or delete the rollout first with `kubectl -n %s delete modelrollout %s`",
				c.Route, vs.Namespace, vs.Name, owner(mr), mr.Namespace, mr.Name))
			continue
		}
		parts = append(parts, fmt.Sprintf(
			"the weights of HTTP route %s of VirtualService %s/%s are managed by %s: to pin weights run `fulcrumctl -n %s split %s %s`, to end the rollout `fulcrumctl -n %s rollback %s`; other fields and routes of this VirtualService may be edited freely",
			c.Route, vs.Namespace, vs.Name, owner(mr), mr.Namespace, mr.Name, splitArgs(c.New, mr), mr.Namespace, mr.Name))
	}
	return strings.Join(parts, "; ")
}

// SteeringMessage explains, per managed route, which steering fields the
// edit changes or which route in front now catches all of its traffic, who
// manages the route, and the fix.
func SteeringMessage(vs *istiov1.VirtualService, changes []validation.SteeringChange) string {
	var parts []string
	for _, c := range changes {
		mr := c.Rollout
		route := fmt.Sprintf("HTTP route %s of VirtualService %s/%s is managed by %s", c.Route, vs.Namespace, vs.Name, owner(mr))
		if len(c.Fields) > 0 {
			var what []string
			for _, f := range c.Fields {
				what = append(what, f.Field+" "+f.Change)
			}
			parts = append(parts, fmt.Sprintf(
				"%s and this edit changes who gets its traffic or what they get back (%s): undo that change, put the new behaviour on a separate route with a narrower match in front of it, or delete the rollout first with `kubectl -n %s delete modelrollout %s`",
				route, strings.Join(what, ", "), mr.Namespace, mr.Name))
		}
		if c.Shadow != nil {
			parts = append(parts, fmt.Sprintf("%s and after this edit %s", route, c.Shadow))
		}
	}
	return strings.Join(parts, "; ")
}

// ReleaseMessage tells that the edit removes steering fields that only
// sent a managed route's traffic elsewhere, and that this is admitted.
func ReleaseMessage(vs *istiov1.VirtualService, changes []validation.SteeringChange) string {
	var parts []string
	for _, c := range changes {
		var what []string
		for _, f := range c.Released {
			what = append(what, f.Field)
		}
		parts = append(parts, fmt.Sprintf("this edit removes %s from HTTP route %s of VirtualService %s/%s, managed by %s: admitted, the route sends its traffic to its destinations again",
			strings.Join(what, ", "), c.Route, vs.Namespace, vs.Name, owner(c.Rollout)))
	}
	return strings.Join(parts, "; ")
}

// splitArgs renders the weights the user tried to set as fulcrumctl split
// arguments, or a template when they do not form a valid split.
func splitArgs(ws []v1alpha1.SubsetWeight, mr *v1alpha1.ModelRollout) string {
	var args []string
	sum := int32(0)
	for _, w := range ws {
		if w.Subset == "" {
			args = nil
			break
		}
		args = append(args, fmt.Sprintf("%s=%d", w.Subset, w.Weight))
		sum += w.Weight
	}
	if len(args) < 2 || sum != 100 {
		cand := mr.Spec.Candidate
		if cand == "" {
			cand = "CANDIDATE"
		}
		return fmt.Sprintf("%s=N %s=M", mr.Spec.Stable, cand)
	}
	return strings.Join(args, " ")
}
