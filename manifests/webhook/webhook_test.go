package webhook_test

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	manifests "github.com/fulcrum-ml/fulcrum/manifests/webhook"
	"github.com/fulcrum-ml/fulcrum/webhook"
)

func configs(t *testing.T, variant string) map[string]*admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	objs, err := manifests.Objects(variant)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*admissionregistrationv1.ValidatingWebhookConfiguration{}
	for _, o := range objs {
		if o.GetKind() != "ValidatingWebhookConfiguration" {
			continue
		}
		c := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, c, true); err != nil {
			t.Fatalf("%s: %v", o.GetName(), err)
		}
		out[c.Name] = c
	}
	return out
}

func TestWebhookPoliciesAndPaths(t *testing.T) {
	want := map[string]struct {
		policy admissionregistrationv1.FailurePolicyType
		path   string
	}{
		"modelrollouts.fulcrum.dev":         {admissionregistrationv1.Fail, webhook.PathModelRollouts},
		"metrictemplates.fulcrum.dev":       {admissionregistrationv1.Fail, webhook.PathMetricTemplates},
		"virtualservices.guard.fulcrum.dev": {admissionregistrationv1.Ignore, webhook.PathVirtualServices},
		"gatewayroutes.guard.fulcrum.dev":   {admissionregistrationv1.Ignore, webhook.PathGatewayRoutes},
	}
	cs := configs(t, manifests.SelfManaged)
	if cs[webhook.ConfigModelRollouts] == nil || cs[webhook.ConfigVirtualServices] == nil || len(cs) != 2 {
		t.Fatalf("configurations: %v", cs)
	}
	seen := 0
	for _, c := range cs {
		for _, w := range c.Webhooks {
			exp, ok := want[w.Name]
			if !ok {
				t.Errorf("unexpected webhook %s", w.Name)
				continue
			}
			seen++
			if *w.FailurePolicy != exp.policy || w.ClientConfig.Service == nil || *w.ClientConfig.Service.Path != exp.path {
				t.Errorf("%s: policy %s path %v, want %s %s", w.Name, *w.FailurePolicy, w.ClientConfig.Service, exp.policy, exp.path)
			}
			if *w.TimeoutSeconds > 5 || *w.SideEffects != admissionregistrationv1.SideEffectClassNone {
				t.Errorf("%s: timeout %d, sideEffects %s", w.Name, *w.TimeoutSeconds, *w.SideEffects)
			}
			if w.NamespaceSelector == nil || len(w.NamespaceSelector.MatchExpressions) == 0 {
				t.Errorf("%s: needs a namespaceSelector", w.Name)
			}
			for _, r := range w.Rules {
				for _, op := range r.Operations {
					if op == admissionregistrationv1.Delete || op == admissionregistrationv1.OperationAll {
						t.Errorf("%s: must not intercept %s", w.Name, op)
					}
				}
			}
		}
	}
	if seen != len(want) {
		t.Errorf("saw %d webhooks, want %d", seen, len(want))
	}
	guard := cs[webhook.ConfigVirtualServices].Webhooks[0]
	if len(guard.MatchConditions) == 0 || guard.MatchConditions[0].Expression != "request.userInfo.username != '"+webhook.DefaultFulcrumUser+"'" {
		t.Errorf("guard must skip Fulcrum's own service account in a matchCondition: %+v", guard.MatchConditions)
	}
}

func TestCertManagerVariantMatches(t *testing.T) {
	self := configs(t, manifests.SelfManaged)
	cm := configs(t, manifests.CertManager)
	for name, s := range self {
		c := cm[name]
		if c == nil {
			t.Fatalf("cert-manager variant lacks %s", name)
		}
		if got := c.Annotations["cert-manager.io/inject-ca-from"]; got != "fulcrum-system/fulcrum-webhook" {
			t.Errorf("%s: inject-ca-from = %q", name, got)
		}
		if !equality.Semantic.DeepEqual(s.Webhooks, c.Webhooks) {
			t.Errorf("%s: webhooks differ between variants", name)
		}
	}
	objs, _ := manifests.Objects(manifests.CertManager)
	found := false
	for _, o := range objs {
		if o.GetKind() == "Certificate" {
			found = true
			if s, _, _ := unstructuredString(o.Object, "spec", "secretName"); s != "fulcrum-webhook-tls" {
				t.Errorf("Certificate secretName = %q, want the Deployment's fulcrum-webhook-tls", s)
			}
		}
	}
	if !found {
		t.Error("cert-manager variant has no Certificate")
	}
}

func unstructuredString(obj map[string]any, fields ...string) (string, bool, error) {
	return unstructured.NestedString(obj, fields...)
}
