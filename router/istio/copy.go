package istio

import "k8s.io/apimachinery/pkg/runtime"

// runtimeDeepCopy copies a JSON-compatible value (as found in unstructured
// objects) so an added destination never aliases the user's port object.
func runtimeDeepCopy(v any) any {
	return runtime.DeepCopyJSONValue(v)
}
