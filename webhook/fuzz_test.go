package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/webhook"
)

// askedLookups records the namespaces the webhook reads.
type askedLookups struct {
	*memLookups
	mu  sync.Mutex
	nss []string
}

func (a *askedLookups) ask(ns string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nss = append(a.nss, ns)
}

func (a *askedLookups) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.nss
	a.nss = nil
	return out
}

func (a *askedLookups) VirtualService(ctx context.Context, ns, name string) (*istiov1.VirtualService, error) {
	a.ask(ns)
	return a.memLookups.VirtualService(ctx, ns, name)
}

func (a *askedLookups) DestinationRule(ctx context.Context, ns, name string) (*istiov1.DestinationRule, error) {
	a.ask(ns)
	return a.memLookups.DestinationRule(ctx, ns, name)
}

func (a *askedLookups) MetricTemplate(ctx context.Context, ns, name string) (*v1alpha1.MetricTemplate, error) {
	a.ask(ns)
	return a.memLookups.MetricTemplate(ctx, ns, name)
}

func (a *askedLookups) ModelRollouts(ctx context.Context, ns string) ([]v1alpha1.ModelRollout, error) {
	a.ask(ns)
	return a.memLookups.ModelRollouts(ctx, ns)
}

// FuzzAdmissionReview sends arbitrary bodies to every webhook path. Whatever
// the body, the server answers 200 with an admission.k8s.io/v1 review for
// the request's uid (a denial carries a status) or 400, and it reads only
// the namespace the request names (issue 14, finding 8).
func FuzzAdmissionReview(f *testing.F) {
	old := benchRollout("fraud")
	old.Status.Phase = v1alpha1.PhaseProgressing
	moved := old.DeepCopy()
	moved.Spec.Candidate = "v9"
	moved.Spec.Intent = &v1alpha1.Intent{ID: "p1", Action: v1alpha1.IntentPause, Actor: "bob"}
	elsewhere := old.DeepCopy()
	elsewhere.Namespace = "victim"
	for _, seed := range []struct {
		path uint8
		body []byte
	}{
		{0, review(f, admissionv1.Create, "alice", mrKind, old, nil)},
		{0, review(f, admissionv1.Update, "alice", mrKind, moved, old)},
		{0, review(f, admissionv1.Update, webhook.DefaultFulcrumUser, mrKind, moved, old)},
		{0, review(f, admissionv1.Create, "mallory", mrKind, elsewhere, nil)},
		{0, review(f, admissionv1.Delete, "alice", mrKind, nil, old)},
		{1, review(f, admissionv1.Create, "alice", mrKind, &v1alpha1.MetricTemplate{}, nil)},
		{2, review(f, admissionv1.Update, "alice", vsKind, fraudVS(50, 50), fraudVS(100, 0))},
		{2, review(f, admissionv1.Update, "alice", vsKind, fraudVS(50, 50), nil)},
		{0, []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","namespace":"","operation":"CREATE","object":{}}}`)},
		{0, []byte(`{"request":{"uid":"x","namespace":"ml","operation":"UPDATE","object":{"metadata":{"namespace":"other"}},"oldObject":null}}`)},
		{2, []byte(`{"request":{"uid":"x","namespace":"ml","operation":"UPDATE","kind":{"group":"networking.istio.io","version":"v1","kind":"VirtualService"},"object":{"spec":{"http":[{"route":[{"weight":-1}]}]}},"oldObject":{"spec":{"http":[null]}}}}`)},
		{0, []byte(`{`)},
		{1, []byte(`null`)},
		{2, []byte(`{"request":{}}`)},
	} {
		f.Add(seed.path, seed.body)
	}
	l := &askedLookups{memLookups: memCluster()}
	s, err := webhook.NewServer(webhook.Config{Lookups: l, CertDir: certDir(f)})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	paths := []string{webhook.PathModelRollouts, webhook.PathMetricTemplates, webhook.PathVirtualServices}
	f.Fuzz(func(t *testing.T, path uint8, body []byte) {
		l.take()
		req := httptest.NewRequest(http.MethodPost, paths[int(path)%len(paths)], bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		asked := l.take()
		if rec.Code == http.StatusBadRequest {
			if len(asked) > 0 {
				t.Fatalf("a review refused as malformed read namespaces %q", asked)
			}
			return
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
		}
		var in admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
			t.Fatalf("answered 200 to a body that is no review (%v): %s", err, rec.Body)
		}
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("the answer is no JSON: %v: %s", err, rec.Body)
		}
		if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil || out.Request != nil {
			t.Fatalf("the answer is no admission.k8s.io/v1 response: %s", rec.Body)
		}
		if out.Response.UID != in.Request.UID {
			t.Fatalf("response uid %q, request uid %q", out.Response.UID, in.Request.UID)
		}
		if !out.Response.Allowed && out.Response.Result == nil {
			t.Fatalf("a denial without a status: %s", rec.Body)
		}
		for _, ns := range asked {
			if ns != in.Request.Namespace {
				t.Fatalf("the request is about namespace %q, the webhook read %q", in.Request.Namespace, ns)
			}
		}
	})
}
