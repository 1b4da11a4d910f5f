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

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

// GuardMode says what the VirtualService guard does with a weight edit of a
// managed route by someone other than Fulcrum.
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

// admitVirtualService guards the weights of managed routes.
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
	for _, o := range []*istiov1.VirtualService{&old, &vs} {
		if o.Namespace == "" {
			o.Namespace = req.Namespace
		}
	}
	rollouts, err := s.lookups.ModelRollouts(r.Context(), req.Namespace)
	if err != nil {
		// Fail open, like the Ignore failure policy: the guard must never
		// block mesh configuration because Fulcrum cannot read.
		logr.FromContextOrDiscard(r.Context()).Error(err, "list ModelRollouts for the VirtualService guard", "virtualService", req.Namespace+"/"+req.Name)
		return allow("Fulcrum could not check whether this edit changes weights it manages: " + err.Error())
	}
	changes := validation.ManagedRouteChanges(&old, &vs, rollouts)
	if len(changes) == 0 {
		return allow()
	}
	msg := GuardMessage(&vs, changes)
	if s.cfg.GuardMode == GuardWarn {
		return allow(msg + " (allowed: the guard is in warn mode; Fulcrum will put its weights back)")
	}
	return deny(metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg})
}

// GuardMessage explains which rollouts own the edited routes and which
// fulcrumctl command does what the edit tried to do.
func GuardMessage(vs *istiov1.VirtualService, changes []validation.RouteChange) string {
	var parts []string
	for _, c := range changes {
		mr := c.Rollout
		owner := fmt.Sprintf("ModelRollout %s/%s", mr.Namespace, mr.Name)
		if mr.Status.Phase != "" {
			owner += fmt.Sprintf(" (%s)", mr.Status.Phase)
		}
		if c.Removed {
			parts = append(parts, fmt.Sprintf(
				"HTTP route %s of VirtualService %s/%s is managed by %s and this edit removes or renames it: keep the route, or delete the rollout first with `kubectl -n %s delete modelrollout %s`",
				c.Route, vs.Namespace, vs.Name, owner, mr.Namespace, mr.Name))
			continue
		}
		parts = append(parts, fmt.Sprintf(
			"the weights of HTTP route %s of VirtualService %s/%s are managed by %s: to pin weights run `fulcrumctl -n %s split %s %s`, to end the rollout `fulcrumctl -n %s rollback %s`; other fields and routes of this VirtualService may be edited freely",
			c.Route, vs.Namespace, vs.Name, owner, mr.Namespace, mr.Name, splitArgs(c.New, mr), mr.Namespace, mr.Name))
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
