package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/webhook"
)

// memLookups serves fixed objects of namespace "ml".
type memLookups struct {
	vs   map[string]*istiov1.VirtualService
	dr   map[string]*istiov1.DestinationRule
	mrs  []v1alpha1.ModelRollout
	fail error
}

func nf(name string) error { return apierrors.NewNotFound(schema.GroupResource{}, name) }

func (m *memLookups) VirtualService(_ context.Context, _, name string) (*istiov1.VirtualService, error) {
	if v, ok := m.vs[name]; ok {
		return v, nil
	}
	return nil, nf(name)
}

func (m *memLookups) DestinationRule(_ context.Context, _, name string) (*istiov1.DestinationRule, error) {
	if v, ok := m.dr[name]; ok {
		return v, nil
	}
	return nil, nf(name)
}

func (m *memLookups) MetricTemplate(_ context.Context, _, name string) (*v1alpha1.MetricTemplate, error) {
	return nil, nf(name)
}

func (m *memLookups) ModelRollouts(context.Context, string) ([]v1alpha1.ModelRollout, error) {
	return m.mrs, m.fail
}

func fraudVS(w1, w2 int32) *istiov1.VirtualService {
	return &istiov1.VirtualService{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.istio.io/v1", Kind: "VirtualService"},
		ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: "ml"},
		Spec: networking.VirtualService{Hosts: []string{"fraud"}, Http: []*networking.HTTPRoute{{
			Name: "predict",
			Route: []*networking.HTTPRouteDestination{
				{Destination: &networking.Destination{Host: "fraud", Subset: "v1"}, Weight: w1},
				{Destination: &networking.Destination{Host: "fraud", Subset: "v2"}, Weight: w2},
			},
		}}},
	}
}

func memCluster() *memLookups {
	dr := &istiov1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: "ml"}}
	dr.Spec.Host = "fraud"
	dr.Spec.Subsets = []*networking.Subset{{Name: "v1"}, {Name: "v2"}}
	mr := benchRollout("fraud")
	mr.Status.Phase = v1alpha1.PhaseProgressing
	return &memLookups{
		vs:  map[string]*istiov1.VirtualService{"fraud": fraudVS(100, 0)},
		dr:  map[string]*istiov1.DestinationRule{"fraud": dr},
		mrs: []v1alpha1.ModelRollout{*mr},
	}
}

func benchRollout(name string) *v1alpha1.ModelRollout {
	return &v1alpha1.ModelRollout{
		TypeMeta:   metav1.TypeMeta{APIVersion: "fulcrum.dev/v1alpha1", Kind: "ModelRollout"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ml"},
		Spec: v1alpha1.ModelRolloutSpec{
			VirtualService: &v1alpha1.VirtualServiceRef{Name: "fraud", Routes: []string{"predict"}}, DestinationRule: "fraud",
			Stable: "v1", Candidate: "v2",
			Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{Steps: []int32{5, 25, 50, 100}}},
			Analysis: &v1alpha1.Analysis{MinSamples: 200, FailureLimit: 2, Metrics: []v1alpha1.Metric{
				{Name: "errors", Template: "istio-error-rate", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.01, Confidence: 0.99}},
				{Name: "custom", Query: `sum by (destination_version) (rate(x{ns="{{.Namespace}}"}[{{.Window}}]))`, Threshold: &v1alpha1.ThresholdJudge{Max: new(float64)}},
			}},
		},
	}
}

func review(t testing.TB, op admissionv1.Operation, user string, kind metav1.GroupVersionKind, obj, old runtime.Object) []byte {
	t.Helper()
	raw := func(o runtime.Object) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID("u-1"), Kind: kind, Namespace: "ml", Name: "fraud", Operation: op,
			UserInfo: authenticationv1.UserInfo{Username: user}, Object: raw(obj), OldObject: raw(old),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	vsKind = metav1.GroupVersionKind{Group: "networking.istio.io", Version: "v1beta1", Kind: "VirtualService"}
	mrKind = metav1.GroupVersionKind{Group: "fulcrum.dev", Version: "v1alpha1", Kind: "ModelRollout"}
)

func call(t *testing.T, h http.Handler, path string, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("bad review %s: %v", rec.Body, err)
	}
	if out.Response.UID != "u-1" || out.APIVersion != "admission.k8s.io/v1" {
		t.Errorf("response uid %q apiVersion %q", out.Response.UID, out.APIVersion)
	}
	return out.Response
}

func newHandler(t testing.TB, l *memLookups, mode webhook.GuardMode) http.Handler {
	t.Helper()
	s, err := webhook.NewServer(webhook.Config{Lookups: l, GuardMode: mode, CertDir: certDir(t), AllowInlineQueries: true})
	if err != nil {
		t.Fatal(err)
	}
	return s.Handler()
}

func TestGuardHandler(t *testing.T) {
	edited := fraudVS(50, 50)
	tests := []struct {
		name     string
		mode     webhook.GuardMode
		user     string
		fail     error
		kind     metav1.GroupVersionKind
		allowed  bool
		wantText string // in the denial or the warning
	}{
		{"deny mode denies", webhook.GuardDeny, "alice", nil, vsKind, false, "`fulcrumctl -n ml split fraud v1=50 v2=50`"},
		{"warn mode warns", webhook.GuardWarn, "alice", nil, vsKind, true, "(allowed: the guard is in warn mode; Fulcrum will put its weights back)"},
		{"Fulcrum itself passes", webhook.GuardDeny, webhook.DefaultFulcrumUser, nil, vsKind, true, ""},
		{"lookup failure fails open", webhook.GuardDeny, "alice", errors.New("etcd down"), vsKind, true, "Fulcrum could not check whether this edit changes weights it manages: etcd down"},
		{"unknown version passes with a warning", webhook.GuardDeny, "alice", nil, metav1.GroupVersionKind{Group: "networking.istio.io", Version: "v2", Kind: "VirtualService"}, true, "does not know networking.istio.io/v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := memCluster()
			l.fail = tt.fail
			resp := call(t, newHandler(t, l, tt.mode), webhook.PathVirtualServices, review(t, admissionv1.Update, tt.user, tt.kind, edited, fraudVS(100, 0)))
			if resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v (%+v)", resp.Allowed, tt.allowed, resp.Result)
			}
			text := strings.Join(resp.Warnings, "\n")
			if resp.Result != nil {
				text += resp.Result.Message
			}
			if tt.wantText == "" && text != "" {
				t.Errorf("unexpected text %q", text)
			}
			if !strings.Contains(text, tt.wantText) {
				t.Errorf("text %q lacks %q", text, tt.wantText)
			}
			if !tt.allowed && (resp.Result.Code != http.StatusForbidden || resp.Result.Reason != metav1.StatusReasonForbidden) {
				t.Errorf("denial status %+v", resp.Result)
			}
		})
	}
}

func TestRolloutHandlerStableChangeByFulcrum(t *testing.T) {
	h := newHandler(t, memCluster(), "")
	old := benchRollout("fraud")
	old.Status.Phase = v1alpha1.PhasePaused
	promoted := old.DeepCopy()
	promoted.Spec.Stable, promoted.Spec.Candidate = "v2", ""
	if r := call(t, h, webhook.PathModelRollouts, review(t, admissionv1.Update, "alice", mrKind, promoted, old)); r.Allowed ||
		!strings.Contains(r.Result.Message, "spec.stable: Forbidden") || r.Result.Reason != metav1.StatusReasonInvalid {
		t.Errorf("alice moving stable: %+v", r.Result)
	}
	if r := call(t, h, webhook.PathModelRollouts, review(t, admissionv1.Update, webhook.DefaultFulcrumUser, mrKind, promoted, old)); !r.Allowed {
		t.Errorf("Fulcrum's promotion denied: %+v", r.Result)
	}
}

func TestMalformedReviewsAreHTTPErrors(t *testing.T) {
	h := newHandler(t, memCluster(), "")
	for _, tt := range []struct {
		name, method, ctype, body string
		code                      int
	}{
		{"GET", http.MethodGet, "application/json", "", http.StatusMethodNotAllowed},
		{"wrong content type", http.MethodPost, "text/plain", "{}", http.StatusUnsupportedMediaType},
		{"no request", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest},
		{"not json", http.MethodPost, "application/json", `{`, http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, webhook.PathModelRollouts, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.ctype)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Errorf("HTTP %d, want %d", rec.Code, tt.code)
			}
		})
	}
}

func TestNewServerRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]webhook.Config{
		"no certificates":    {Lookups: memCluster()},
		"bad guard mode":     {Lookups: memCluster(), CertDir: certDir(t), GuardMode: "block"},
		"missing files":      {Lookups: memCluster(), CertDir: t.TempDir()},
		"no lookups":         {CertDir: certDir(t)},
		"bad cluster domain": {Lookups: memCluster(), CertDir: certDir(t), ClusterDomain: "svc.cluster.local"},
	} {
		if _, err := webhook.NewServer(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRolloutHandlerClusterDomain: the webhook compares hosts in the
// cluster domain it is given, as the controller does: a DestinationRule
// written fraud.ml.svc.corp.internal is the host of the VirtualService's
// "fraud" in corp.internal only.
func TestRolloutHandlerClusterDomain(t *testing.T) {
	l := memCluster()
	l.dr["fraud"].Spec.Host = "fraud.ml.svc.corp.internal"
	l.mrs = nil // the rollout is new: no other manages its route
	mr := benchRollout("fraud")
	for domain, warned := range map[string]bool{"corp.internal": false, "": true} {
		s, err := webhook.NewServer(webhook.Config{Lookups: l, CertDir: certDir(t), AllowInlineQueries: true, ClusterDomain: domain})
		if err != nil {
			t.Fatal(err)
		}
		r := call(t, s.Handler(), webhook.PathModelRollouts, review(t, admissionv1.Create, "alice", mrKind, mr, nil))
		if !r.Allowed {
			t.Fatalf("domain %q: denied: %+v", domain, r.Result)
		}
		got := strings.Contains(strings.Join(r.Warnings, "\n"), `sends traffic to host "fraud", but DestinationRule ml/fraud is for host "fraud.ml.svc.corp.internal"`)
		if got != warned {
			t.Errorf("domain %q: host warning %t, want %t; warnings %q", domain, got, warned, r.Warnings)
		}
	}
}
