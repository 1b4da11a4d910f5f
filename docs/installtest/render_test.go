package installtest

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/manifests"
)

// kubeVersion is what the chart is rendered for: the local kube-apiserver's.
var kubeVersion = &chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}

// memRoot is where the checkout sits in the in-memory file system that
// kustomize builds from.
const memRoot = "/repo"

// kustomizeBuild runs what `kubectl apply -k dir` runs, in the repository
// root, with the files the guide wrote (path → content) beside manifests/.
func kustomizeBuild(t *testing.T, dir string, written map[string]string) ([]*unstructured.Unstructured, error) {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	root := repoRoot(t)
	err := filepath.WalkDir(filepath.Join(root, "manifests"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		return mem.WriteFile(path.Join(memRoot, filepath.ToSlash(rel)), data)
	})
	if err != nil {
		t.Fatalf("copy manifests/: %v", err)
	}
	for p, content := range written {
		if err := mem.WriteFile(path.Join(memRoot, p), []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, path.Join(memRoot, dir))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	out, err := resMap.AsYaml()
	if err != nil {
		return nil, err
	}
	return manifests.Decode(out)
}

// helmInstall is `helm install RELEASE CHART [flags]` as the guide gives it.
type helmInstall struct {
	release, chart, namespace string
	createNamespace           bool
	values                    map[string]any
}

// parseHelmInstall reads the arguments after `helm install` the way helm
// does for the flags the guide may use; any other flag is an error, so that
// a new one gets looked at here.
func parseHelmInstall(root string, args []string) (*helmInstall, error) {
	h := &helmInstall{namespace: "default", values: map[string]any{}}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		next := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch {
		case !strings.HasPrefix(a, "-"):
			pos = append(pos, a)
		case name == "--namespace" || name == "-n":
			h.namespace, err = next()
		case name == "--create-namespace":
			h.createNamespace = true
		case name == "--set":
			var v string
			if v, err = next(); err == nil {
				err = strvals.ParseInto(v, h.values)
			}
		case name == "--set-string":
			var v string
			if v, err = next(); err == nil {
				err = strvals.ParseIntoString(v, h.values)
			}
		case name == "--values" || name == "-f":
			var f string
			if f, err = next(); err == nil {
				err = mergeValuesFile(filepath.Join(root, f), h.values)
			}
		default:
			return nil, fmt.Errorf("the test does not know helm's flag %s: teach parseHelmInstall", a)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
	}
	if len(pos) != 2 {
		return nil, fmt.Errorf("want RELEASE CHART, got %q", pos)
	}
	h.release, h.chart = pos[0], pos[1]
	return h, nil
}

func mergeValuesFile(file string, into map[string]any) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal(data, &vals); err != nil {
		return err
	}
	for k, v := range chartutil.CoalesceTables(into, vals) {
		into[k] = v
	}
	return nil
}

// render runs what `helm install` sends to the cluster (CRDs from crds/
// included), in client-only dry-run mode.
func (h *helmInstall) render(root string) ([]*unstructured.Unstructured, error) {
	c, err := loader.Load(filepath.Join(root, h.chart))
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", h.chart, err)
	}
	install := action.NewInstall(&action.Configuration{})
	install.ClientOnly, install.DryRun, install.Replace = true, true, true
	install.IncludeCRDs = true
	install.ReleaseName, install.Namespace = h.release, h.namespace
	install.KubeVersion = kubeVersion
	rel, err := install.Run(c, h.values)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", h.chart, err)
	}
	return manifests.Decode([]byte(rel.Manifest))
}

// find returns the object of that kind, namespace and name.
func find(objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	return nil
}
