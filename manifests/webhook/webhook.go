// Package webhook embeds Fulcrum's ValidatingWebhookConfigurations: the
// self-managed variant (the server writes caBundle) and the cert-manager
// variant (cert-manager issues the Secret and injects caBundle).
package webhook

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fulcrum-ml/fulcrum/manifests"
)

//go:embed self-managed/*.yaml cert-manager/*.yaml
var files embed.FS

// Variants of the manifests.
const (
	SelfManaged = "self-managed"
	CertManager = "cert-manager"
)

// Objects decodes every object of a variant, in file-name order.
func Objects(variant string) ([]*unstructured.Unstructured, error) {
	entries, err := fs.ReadDir(files, variant)
	if err != nil {
		return nil, fmt.Errorf("read manifests/webhook/%s: %w", variant, err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() == "kustomization.yaml" {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var out []*unstructured.Unstructured
	for _, n := range names {
		data, err := fs.ReadFile(files, path.Join(variant, n))
		if err != nil {
			return nil, err
		}
		objs, err := manifests.Decode(data)
		if err != nil {
			return nil, fmt.Errorf("manifests/webhook/%s/%s: %w", variant, n, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}
