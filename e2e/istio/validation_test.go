package istio_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
	router "github.com/fulcrum-ml/fulcrum/router/istio"
)

// routerFixture is one case of router/istio/testdata (the router's own
// test table).
type routerFixture struct {
	Routes  []string                `json:"routes"`
	Weights []v1alpha1.SubsetWeight `json:"weights"`
	Error   string                  `json:"error"`
	Input   json.RawMessage         `json:"input"`
}

// TestIstioAcceptsWhatTheRouterWrites takes every router fixture whose input
// Istio accepts and checks that Istio accepts what SetWeights makes of it:
// both are created in a dry run on the API server, where istiod's
// validating webhook (Istio's own validation, failing closed) judges them.
// Inputs Istio refuses are listed; SetWeights must not make one valid
// object invalid.
func TestIstioAcceptsWhatTheRouterWrites(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := localenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "router", "istio", "testdata", "*.yaml"))
	if err != nil || len(files) < 15 {
		t.Fatalf("router fixtures: %d files, %v", len(files), err)
	}
	if _, err := kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ml"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	drObj := decode(t, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: fraud, namespace: ml}
spec:
  host: fraud.ml.svc.cluster.local
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
    - {name: v3, labels: {version: v3}}
`)
	dr, err := router.DecodeDestinationRule(drObj)
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(kube.Config)
	checked := 0
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var f routerFixture
		if err := yaml.Unmarshal(data, &f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		in := &unstructured.Unstructured{}
		if err := in.UnmarshalJSON(f.Input); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := dryRun(ctx, dyn, in); err != nil {
			t.Logf("%s: Istio refuses the input itself: %v", name, firstLine(err))
			continue
		}
		out, _, err := router.SetWeights(in, router.Target{Routes: f.Routes, DestinationRule: dr}, f.Weights)
		if err != nil {
			if f.Error == "" {
				t.Errorf("%s: SetWeights: %v", name, err)
			}
			continue
		}
		if err := dryRun(ctx, dyn, out); err != nil {
			t.Errorf("%s: Istio refuses what the router wrote: %v", name, err)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d fixtures reached Istio's validation with a valid input", checked)
	}
	t.Logf("Istio's validation accepted the router's output for all %d fixtures with a valid input", checked)
}

// dryRun creates obj in a server-side dry run: the API server's schema and
// every validating webhook (istiod's among them) judge it, nothing is
// stored.
func dryRun(ctx context.Context, dyn dynamic.Interface, obj *unstructured.Unstructured) error {
	gv, err := schema.ParseGroupVersion(obj.GetAPIVersion())
	if err != nil {
		return err
	}
	gvr := gv.WithResource(strings.ToLower(obj.GetKind()) + "s")
	_, err = dyn.Resource(gvr).Namespace(obj.GetNamespace()).Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
