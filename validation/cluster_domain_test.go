package validation_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router/istio"
	"github.com/fulcrum-ml/fulcrum/validation"
)

// TestCustomClusterDomain: in a cluster whose DNS domain is corp.internal,
// a rollout whose DestinationRule and VirtualService spell the model's host
// fraud.ml.svc.corp.internal (and "fraud") is admitted without a host
// warning and its weights are read by the router, when Fulcrum is told the
// domain. Under the default domain the same objects name two hosts: the
// webhook warns and the router refuses the route.
func TestCustomClusterDomain(t *testing.T) {
	const host = "fraud.ml.svc.corp.internal"
	corpDest := func(subset string, weight int32) *networking.HTTPRouteDestination {
		return &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: host, Subset: subset}, Weight: weight}
	}
	// "fraud" for v1 (dest's host), the full name for v2.
	vs := virtualService("corp", httpRoute("predict", dest("v1", 90), corpDest("v2", 10)))
	dr := destinationRule("corp", host, "v1", "v2")
	l := &fakeLookups{
		vs: map[string]*istiov1.VirtualService{"corp": vs},
		dr: map[string]*istiov1.DestinationRule{"corp": dr},
	}
	mr := rollout(func(mr *v1alpha1.ModelRollout) {
		mr.Spec.VirtualService = &v1alpha1.VirtualServiceRef{Name: "corp", Routes: []string{"predict"}}
		mr.Spec.DestinationRule = "corp"
		mr.Spec.Analysis = nil // no MetricTemplates in this namespace
	})
	target := istio.Target{Routes: mr.Spec.VirtualService.Routes, DestinationRule: dr}

	t.Run("told corp.internal", func(t *testing.T) {
		errs, warns := validation.ValidateRollout(context.Background(), l, mr, validation.Options{ClusterDomain: "corp.internal"})
		assertErrors(t, errs, nil)
		for _, w := range warns {
			if strings.Contains(w, "host") {
				t.Errorf("unexpected host warning: %s", w)
			}
		}
		target.Domain = "corp.internal"
		rw, err := istio.ReadWeights(toUnstructured(t, vs), target)
		if err != nil {
			t.Fatalf("router: %v", err)
		}
		if got := rw["predict"]; got["v1"] != 90 || got["v2"] != 10 {
			t.Errorf("router read %v, want v1 90, v2 10", got)
		}
	})

	t.Run("default domain", func(t *testing.T) {
		errs, warns := validation.ValidateRollout(context.Background(), l, mr, validation.Options{})
		assertErrors(t, errs, nil)
		want := `sends traffic to host "fraud", but DestinationRule ml/corp is for host "fraud.ml.svc.corp.internal" (Istio reads them as fraud.ml.svc.cluster.local and fraud.ml.svc.corp.internal in cluster domain cluster.local)`
		if !strings.Contains(strings.Join(warns, "\n"), want) {
			t.Errorf("warnings %q\nwant one containing %q", warns, want)
		}
		target.Domain = ""
		if _, err := istio.ReadWeights(toUnstructured(t, vs), target); err == nil || !strings.Contains(err.Error(), `points at host "fraud", not the model's host`) {
			t.Errorf("router error = %v, want a host mismatch", err)
		}
	})
}

// toUnstructured is the VirtualService as the controller reads it.
func toUnstructured(t *testing.T, vs *istiov1.VirtualService) *unstructured.Unstructured {
	t.Helper()
	raw, err := json.Marshal(vs)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(raw, &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetAPIVersion("networking.istio.io/v1")
	u.SetKind("VirtualService")
	return u
}
