package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

// admitRollout validates ModelRollout creates and updates.
func (s *Server) admitRollout(r *http.Request, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return allow()
	}
	var mr v1alpha1.ModelRollout
	if err := json.Unmarshal(req.Object.Raw, &mr); err != nil {
		return badRequest(fmt.Errorf("decode ModelRollout: %w", err))
	}
	if err := inRequestNamespace(req, &mr); err != nil {
		return badRequest(err)
	}
	// Whatever the review says, the checks read the request's namespace
	// only, so their messages describe nothing outside it.
	l := namespaced(s.lookups, req.Namespace)
	fulcrum := s.isFulcrum(req.UserInfo.Username)
	var errs field.ErrorList
	var warns []string
	if req.Operation == admissionv1.Create {
		errs, warns = validation.ValidateRollout(r.Context(), l, &mr, validation.Options{AllowInlineQueries: s.cfg.AllowInlineQueries, ClusterDomain: s.cfg.ClusterDomain, Routers: s.routers})
		if !fulcrum {
			errs = append(errs, validation.ValidateIntentRequester(nil, &mr, req.UserInfo.Username)...)
		}
	} else {
		var old v1alpha1.ModelRollout
		if err := json.Unmarshal(req.OldObject.Raw, &old); err != nil {
			return badRequest(fmt.Errorf("decode old ModelRollout: %w", err))
		}
		if err := inRequestNamespace(req, &old); err != nil {
			return badRequest(err)
		}
		errs, warns = validation.ValidateRolloutUpdate(r.Context(), l, &old, &mr,
			validation.Options{AllowStableChange: fulcrum, AllowInlineQueries: s.cfg.AllowInlineQueries, ClusterDomain: s.cfg.ClusterDomain, Routers: s.routers})
		// Fulcrum's own service account writes intents for the users the
		// admin API authenticated, and names them as actors.
		if !fulcrum && mr.DeletionTimestamp == nil {
			errs = append(errs, validation.ValidateIntentRequester(&old, &mr, req.UserInfo.Username)...)
		}
	}
	if len(errs) > 0 {
		return deny(apierrors.NewInvalid(v1alpha1.GroupVersion.WithKind("ModelRollout").GroupKind(), name(req, mr.ObjectMeta), errs).ErrStatus, warns...)
	}
	return allow(warns...)
}

// admitMetricTemplate checks that a MetricTemplate's queries render and parse.
func (s *Server) admitMetricTemplate(_ *http.Request, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return allow()
	}
	var mt v1alpha1.MetricTemplate
	if err := json.Unmarshal(req.Object.Raw, &mt); err != nil {
		return badRequest(fmt.Errorf("decode MetricTemplate: %w", err))
	}
	if mt.DeletionTimestamp != nil {
		return allow()
	}
	if errs := validation.ValidateMetricTemplate(&mt); len(errs) > 0 {
		return deny(apierrors.NewInvalid(v1alpha1.GroupVersion.WithKind("MetricTemplate").GroupKind(), name(req, mt.ObjectMeta), errs).ErrStatus)
	}
	if a := s.cfg.ProviderAddresses; a != nil && mt.Spec.Provider.Address != "" {
		if err := a.Check(mt.Spec.Provider.Address); err != nil {
			return allow(fmt.Sprintf("MetricTemplate %s/%s: %v; until then its metrics get Error rounds", req.Namespace, name(req, mt.ObjectMeta), err))
		}
	}
	return allow()
}

func (s *Server) isFulcrum(username string) bool {
	return slices.Contains(s.cfg.FulcrumUsers, username)
}

func name(req *admissionv1.AdmissionRequest, meta metav1.ObjectMeta) string {
	if req.Name != "" {
		return req.Name
	}
	return meta.GenerateName
}

func badRequest(err error) *admissionv1.AdmissionResponse {
	return deny(apierrors.NewBadRequest(err.Error()).ErrStatus)
}
