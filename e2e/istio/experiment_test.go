package istio_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	router "github.com/fulcrum-ml/fulcrum/router/istio"
)

// TestIstioAcceptsTheExperimentRoutes checks that istiod's validating
// webhook accepts what SetExperiment writes on top of an experiment's
// weights: the sticky routes with their cookie regex or header match in
// front of the managed routes, and the Set-Cookie every arm's destination
// sets. The same routes with a regex Envoy cannot compile are refused, so
// the dry run does judge the matches.
func TestIstioAcceptsTheExperimentRoutes(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ml"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	dr, err := router.DecodeDestinationRule(decode(t, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: fraud, namespace: ml}
spec:
  host: fraud.ml.svc.cluster.local
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
    - {name: v3, labels: {version: v3}}
`))
	if err != nil {
		t.Fatal(err)
	}
	oneRoute := `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: fraud, namespace: ml}
spec:
  hosts: [fraud.ml.svc.cluster.local]
  http:
    - name: predict
      route:
        - destination: {host: fraud.ml.svc.cluster.local, subset: v1}
          weight: 100
        - destination: {host: fraud.ml.svc.cluster.local, subset: v2}
          weight: 0
`
	// A user's own routes around the managed ones: a debug match first,
	// two managed routes (one with its own response header), a fallback.
	userRoutes := `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: fraud, namespace: ml}
spec:
  hosts: [fraud.ml.svc.cluster.local]
  gateways: [mesh]
  http:
    - name: debug
      match: [{headers: {x-debug: {exact: "1"}}}]
      route: [{destination: {host: fraud.ml.svc.cluster.local, subset: v1}}]
    - name: explain
      match: [{uri: {prefix: /v2/models/fraud/explain}}]
      route:
        - destination: {host: fraud.ml.svc.cluster.local, subset: v1}
          weight: 100
    - name: predict
      match: [{uri: {prefix: /v2/models/fraud}}]
      timeout: 5s
      route:
        - destination: {host: fraud.ml.svc.cluster.local, subset: v1}
          weight: 100
          headers: {response: {set: {x-served-by: fulcrum}}}
        - destination: {host: fraud.ml.svc.cluster.local, subset: v2}
          weight: 0
        - destination: {host: fraud.ml.svc.cluster.local, subset: v3}
          weight: 0
    - name: fallback
      route: [{destination: {host: fraud.ml.svc.cluster.local, subset: v1}}]
`
	w := func(kv ...any) []v1alpha1.SubsetWeight {
		var out []v1alpha1.SubsetWeight
		for i := 0; i < len(kv); i += 2 {
			out = append(out, v1alpha1.SubsetWeight{Subset: kv[i].(string), Weight: int32(kv[i+1].(int))})
		}
		return out
	}
	cases := map[string]struct {
		input   string
		routes  []string
		weights []v1alpha1.SubsetWeight
		exp     router.Experiment
	}{
		"cookie, two arms": {input: oneRoute, weights: w("v1", 50, "v2", 50),
			exp: router.Experiment{Rollout: "fraud", Arms: []string{"v1", "v2"}, Cookie: "fulcrum-exp-fraud", MaxAge: 7 * 24 * time.Hour}},
		"header, two arms": {input: oneRoute, weights: w("v1", 50, "v2", 50),
			exp: router.Experiment{Rollout: "fraud", Arms: []string{"v1", "v2"}, Header: "x-user-group"}},
		"cookie, three arms, two managed routes among a user's": {input: userRoutes, routes: []string{"explain", "predict"}, weights: w("v1", 34, "v2", 33, "v3", 33),
			exp: router.Experiment{Rollout: "fraud", Arms: []string{"v1", "v2", "v3"}, Cookie: "ab_arm", MaxAge: time.Minute}},
		"header, three arms, two managed routes among a user's": {input: userRoutes, routes: []string{"explain", "predict"}, weights: w("v1", 34, "v2", 33, "v3", 33),
			exp: router.Experiment{Rollout: "fraud", Arms: []string{"v1", "v2", "v3"}, Header: "x-user-group"}},
	}
	dyn := dynamic.NewForConfigOrDie(kube.Config)
	for name, c := range cases {
		in := decode(t, c.input)
		if err := dryRun(ctx, dyn, in); err != nil {
			t.Fatalf("%s: Istio refuses the input itself: %v", name, err)
		}
		target := router.Target{Routes: c.routes, DestinationRule: dr}
		weighted, _, err := router.SetWeights(in, target, c.weights)
		if err != nil {
			t.Fatalf("%s: SetWeights: %v", name, err)
		}
		out, changed, err := router.SetExperiment(weighted, target, c.exp)
		if err != nil || !changed {
			t.Fatalf("%s: SetExperiment: changed %v, %v", name, changed, err)
		}
		http, _, _ := unstructured.NestedSlice(out.Object, "spec", "http")
		sticky := 0
		for _, r := range http {
			if n, _, _ := unstructured.NestedString(r.(map[string]any), "name"); router.IsOwnedRoute(n) {
				sticky++
			}
		}
		if sticky != len(c.exp.Arms) {
			t.Fatalf("%s: %d sticky routes written, want one per arm (%d)", name, sticky, len(c.exp.Arms))
		}
		if err := dryRun(ctx, dyn, out); err != nil {
			t.Errorf("%s: Istio refuses what SetExperiment wrote: %v", name, err)
		}
		if c.exp.Cookie == "" {
			continue
		}
		// The control: the same object with one sticky route's regex
		// broken must be refused, or the dry run proves nothing.
		broken := out.DeepCopy()
		http, _, _ = unstructured.NestedSlice(broken.Object, "spec", "http")
		for _, r := range http {
			rm := r.(map[string]any)
			if n, _, _ := unstructured.NestedString(rm, "name"); n == router.ExperimentRouteName(c.exp.Rollout, c.exp.Arms[0]) {
				match := rm["match"].([]any)[0].(map[string]any)
				if err := unstructured.SetNestedField(match, "^(unclosed", "headers", "cookie", "regex"); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := unstructured.SetNestedSlice(broken.Object, http, "spec", "http"); err != nil {
			t.Fatal(err)
		}
		if err := dryRun(ctx, dyn, broken); err == nil {
			t.Errorf("%s: Istio accepted a sticky route whose cookie regex does not compile: the dry run judges nothing", name)
		} else {
			t.Logf("%s: accepted; with a broken regex refused: %s", name, firstLine(err))
		}
	}
}
