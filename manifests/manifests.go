// Package manifests embeds Fulcrum's install manifests so that tests, the
// local environment and the demo apply exactly the files users apply.
package manifests

import (
	"bytes"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

//go:embed crd/*.yaml install/*.yaml examples/*.yaml
var files embed.FS

// FS holds the crd/, install/ and examples/ folders.
var FS fs.FS = files

// Objects decodes every YAML document in the files of dir (crd, install or
// examples), in file-name order, skipping kustomization.yaml.
func Objects(dir string) ([]*unstructured.Unstructured, error) {
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		return nil, fmt.Errorf("read manifests/%s: %w", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() || e.Name() == "kustomization.yaml" || path.Ext(e.Name()) != ".yaml" {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var out []*unstructured.Unstructured
	for _, name := range names {
		data, err := fs.ReadFile(files, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read manifests/%s/%s: %w", dir, name, err)
		}
		objs, err := Decode(data)
		if err != nil {
			return nil, fmt.Errorf("manifests/%s/%s: %w", dir, name, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// Decode splits a multi-document YAML stream into objects, skipping empty
// documents.
func Decode(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if err == io.EOF {
				return out, nil
			}
			return nil, fmt.Errorf("decode yaml document %d: %w", len(out)+1, err)
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("yaml document %d has no kind or apiVersion", len(out)+1)
		}
		out = append(out, u)
	}
}
