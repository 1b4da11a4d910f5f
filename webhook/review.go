package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxReviewBytes bounds a request body: objects are at most ~3 MiB in etcd,
// and an update review carries two of them.
const maxReviewBytes = 7 << 20

// admitFunc decides one admission request.
type admitFunc func(r *http.Request, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse

// serveReview decodes an admission.k8s.io/v1 AdmissionReview, runs admit
// and writes the response review. Malformed requests get HTTP 400, which
// the API server treats as a call failure (and applies the failure policy).
func (s *Server) serveReview(name string, admit admitFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		log := s.log.WithValues("webhook", name)
		if r.Method != http.MethodPost {
			http.Error(w, "admission reviews are POSTed", http.StatusMethodNotAllowed)
			return
		}
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
			http.Error(w, "content type must be application/json", http.StatusUnsupportedMediaType)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
		if err != nil || len(body) > maxReviewBytes {
			http.Error(w, "request body unreadable or too large", http.StatusBadRequest)
			return
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, fmt.Sprintf("not an admission.k8s.io/v1 AdmissionReview: %v", err), http.StatusBadRequest)
			return
		}
		req := review.Request
		resp := admit(r.WithContext(logr.NewContext(r.Context(), log)), req)
		resp.UID = req.UID
		out := admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Response: resp,
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(&out); err != nil {
			log.Error(err, "write admission response")
		}
		result := resultOf(resp)
		s.metrics.observe(name, result, time.Since(start))
		if result != resultAllowed {
			log.V(1).Info("admission decided", "object", req.Namespace+"/"+req.Name, "operation", req.Operation,
				"user", req.UserInfo.Username, "result", result, "dryRun", req.DryRun != nil && *req.DryRun)
		}
	})
}

const (
	resultAllowed = "allowed"
	resultWarned  = "warned"
	resultDenied  = "denied"
)

func resultOf(resp *admissionv1.AdmissionResponse) string {
	switch {
	case !resp.Allowed:
		return resultDenied
	case len(resp.Warnings) > 0:
		return resultWarned
	}
	return resultAllowed
}

func allow(warnings ...string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: true, Warnings: warnings}
}

func deny(status metav1.Status, warnings ...string) *admissionv1.AdmissionResponse {
	status.Status = metav1.StatusFailure
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &status, Warnings: warnings}
}
