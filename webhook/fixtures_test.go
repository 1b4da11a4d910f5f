package webhook_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

var (
	gvrVS = func(version string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: "networking.istio.io", Version: version, Resource: "virtualservices"}
	}
	gvrDR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"}
	gvrMR = schema.GroupVersionResource{Group: "fulcrum.dev", Version: "v1alpha1", Resource: "modelrollouts"}
	gvrMT = schema.GroupVersionResource{Group: "fulcrum.dev", Version: "v1alpha1", Resource: "metrictemplates"}
)

// warnings collects the Warning headers a client receives.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// client is a dynamic client that records warnings.
type client struct {
	dynamic.Interface
	warns *warnings
}

func newClient(t *testing.T, cfg *rest.Config) *client {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	w := &warnings{}
	cfg.WarningHandler = w
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &client{Interface: d, warns: w}
}

func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatalf("fixture: %v\n%s", err, doc)
	}
	return u
}

func objf(t *testing.T, format string, args ...any) *unstructured.Unstructured {
	t.Helper()
	return obj(t, fmt.Sprintf(format, args...))
}

func create(t *testing.T, c *client, gvr schema.GroupVersionResource, u *unstructured.Unstructured) {
	t.Helper()
	if _, err := c.Resource(gvr).Namespace(u.GetNamespace()).Create(context.Background(), u, metav1CreateOptions); err != nil {
		t.Fatalf("create %s %s: %v", gvr.Resource, u.GetName(), err)
	}
}

func vsYAML(ns, name, routes string) string {
	return fmt.Sprintf(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %s, namespace: %s}
spec:
  hosts: [fraud]
  http: %s
`, name, ns, routes)
}

// rolloutYAML is a well-formed rollout; patch lines replace spec fields.
func rolloutYAML(ns, name string, spec ...string) string {
	fields := map[string]string{
		"virtualService":  "{name: fraud, routes: [predict]}",
		"destinationRule": "fraud",
		"stable":          "v1",
		"candidate":       "v2",
		"strategy":        "{canary: {steps: [5, 25, 50, 100], minStepDuration: 1m}}",
		"analysis": `{interval: 30s, minSamples: 200, failureLimit: 2, metrics: [
      {name: error-rate, template: istio-error-rate, sequential: {maxIncrease: 0.005, confidence: 0.99}},
      {name: latency, template: latency, threshold: {max: 300}}]}`,
	}
	order := []string{"virtualService", "destinationRule", "stable", "candidate", "strategy", "analysis", "intent"}
	for _, s := range spec {
		k, v, _ := strings.Cut(s, ":")
		fields[k] = strings.TrimSpace(v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: fulcrum.dev/v1alpha1\nkind: ModelRollout\nmetadata: {name: %s, namespace: %s}\nspec:\n", name, ns)
	for _, k := range order {
		if v, ok := fields[k]; ok && v != "" {
			fmt.Fprintf(&b, "  %s: %s\n", k, v)
		}
	}
	return b.String()
}

// patch applies a JSON patch (a list) or a merge patch (an object).
func patch(ctx context.Context, r dynamic.ResourceInterface, name, p string) (*unstructured.Unstructured, error) {
	pt := types.MergePatchType
	if strings.HasPrefix(p, "[") {
		pt = types.JSONPatchType
	}
	return r.Patch(ctx, name, pt, []byte(p), metav1.PatchOptions{})
}
