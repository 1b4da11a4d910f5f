package manifests_test

import (
	"sort"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/fulcrum-ml/fulcrum/manifests"
	"github.com/fulcrum-ml/fulcrum/manifests/webhook"
)

// TestInstallKustomizationBuilds runs kustomize (what `kubectl apply -k
// manifests/install` runs) and checks it yields every object of the install,
// CRD and self-managed webhook folders: a file left out of a kustomization,
// or one kustomize refuses to load, fails here.
func TestInstallKustomizationBuilds(t *testing.T) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), "install")
	if err != nil {
		t.Fatalf("kustomize build manifests/install: %v", err)
	}
	var got []string
	for _, r := range resMap.Resources() {
		got = append(got, r.GetKind()+"/"+r.GetNamespace()+"/"+r.GetName())
	}
	var want []string
	for _, dir := range []string{"crd", "install"} {
		objs, err := manifests.Objects(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			want = append(want, o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName())
		}
	}
	wh, err := webhook.Objects(webhook.SelfManaged)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range wh {
		want = append(want, o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName())
	}
	sort.Strings(got)
	sort.Strings(want)
	if len(got) != len(want) {
		t.Fatalf("kustomize built %d objects, the folders hold %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("object %d: kustomize built %s, folders hold %s", i, got[i], want[i])
		}
	}
}
