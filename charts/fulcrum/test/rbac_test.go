package test

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// grant is one thing RBAC allows: a verb on a resource (by name, or "*" for
// any), in a namespace ("*" when granted cluster-wide).
type grant struct{ namespace, group, resource, name, verb string }

func (g grant) String() string {
	return fmt.Sprintf("%s %s.%s/%s in %s", g.verb, g.resource, g.group, g.name, g.namespace)
}

// clusterScoped are the resources in Fulcrum's rules that have no namespace.
var clusterScoped = map[string]bool{"tokenreviews": true, "subjectaccessreviews": true, "validatingwebhookconfigurations": true,
	"clusternotifiers": true, "clusternotifiers/status": true, "namespaces": true}

func expand(namespace string, rules []rbacv1.PolicyRule) map[grant]bool {
	out := map[grant]bool{}
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{"*"}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, n := range names {
					for _, v := range r.Verbs {
						out[grant{namespace, g, res, n, v}] = true
					}
				}
			}
		}
	}
	return out
}

// rbacObjects converts the RBAC objects of a rendering or a build.
type rbacObjects struct {
	clusterRoles        map[string][]rbacv1.PolicyRule // by name
	roles               map[string][]rbacv1.PolicyRule // by namespace/name
	clusterRoleBindings []rbacv1.ClusterRoleBinding
	roleBindings        []rbacv1.RoleBinding
}

func collectRBAC(t *testing.T, objs []*unstructured.Unstructured) rbacObjects {
	t.Helper()
	out := rbacObjects{clusterRoles: map[string][]rbacv1.PolicyRule{}, roles: map[string][]rbacv1.PolicyRule{}}
	conv := func(o *unstructured.Unstructured, into any) {
		if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into); err != nil {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			conv(o, &r)
			out.clusterRoles[r.Name] = r.Rules
		case "Role":
			var r rbacv1.Role
			conv(o, &r)
			out.roles[r.Namespace+"/"+r.Name] = r.Rules
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			conv(o, &b)
			out.clusterRoleBindings = append(out.clusterRoleBindings, b)
		case "RoleBinding":
			var b rbacv1.RoleBinding
			conv(o, &b)
			out.roleBindings = append(out.roleBindings, b)
		}
	}
	return out
}

func bindsServiceAccount(subjects []rbacv1.Subject, namespace, name string) bool {
	return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
		return s.Kind == "ServiceAccount" && s.Namespace == namespace && s.Name == name
	})
}

// serviceAccountGrants is everything the bindings give one ServiceAccount.
func (r rbacObjects) serviceAccountGrants(t *testing.T, namespace, name string) map[grant]bool {
	t.Helper()
	out := map[grant]bool{}
	for _, b := range r.clusterRoleBindings {
		if bindsServiceAccount(b.Subjects, namespace, name) {
			rules, ok := r.clusterRoles[b.RoleRef.Name]
			if !ok {
				t.Errorf("ClusterRoleBinding %s refers to a missing ClusterRole %s", b.Name, b.RoleRef.Name)
			}
			maps.Copy(out, expand("*", rules))
		}
	}
	for _, b := range r.roleBindings {
		if !bindsServiceAccount(b.Subjects, namespace, name) {
			continue
		}
		rules, ok := r.roles[b.Namespace+"/"+b.RoleRef.Name]
		if b.RoleRef.Kind == "ClusterRole" {
			rules, ok = r.clusterRoles[b.RoleRef.Name]
		}
		if !ok {
			t.Errorf("RoleBinding %s/%s refers to a missing %s %s", b.Namespace, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
		}
		maps.Copy(out, expand(b.Namespace, rules))
	}
	return out
}

// in is what the grants allow in one namespace.
func in(grants map[grant]bool, namespace string) map[grant]bool {
	out := map[grant]bool{}
	for g := range grants {
		if g.namespace == "*" || g.namespace == namespace {
			g.namespace = ""
			out[g] = true
		}
	}
	return out
}

func kustomizeRBAC(t *testing.T) rbacObjects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot(t), "manifests", "install"))
	if err != nil {
		t.Fatalf("kustomize build manifests/install: %v", err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range resMap.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return collectRBAC(t, objs)
}

func diffGrants(t *testing.T, what string, got, want map[grant]bool) {
	t.Helper()
	for g := range want {
		if !got[g] {
			t.Errorf("%s: the chart does not grant %s (manifests/install does)", what, g)
		}
	}
	for g := range got {
		if !want[g] {
			t.Errorf("%s: the chart grants %s (manifests/install does not)", what, g)
		}
	}
}

// TestRBACIsThatOfKustomize: a default install grants Fulcrum's
// ServiceAccount exactly what `kubectl apply -k manifests/install` grants,
// and the user roles carry the same rules.
func TestRBACIsThatOfKustomize(t *testing.T) {
	want := kustomizeRBAC(t)
	got := collectRBAC(t, render(t, valueSets["defaults"], false))
	diffGrants(t, "ServiceAccount fulcrum-system/fulcrum",
		got.serviceAccountGrants(t, "fulcrum-system", "fulcrum"),
		want.serviceAccountGrants(t, "fulcrum-system", "fulcrum"))
	for _, role := range []string{"fulcrum-viewer", "fulcrum-ml-engineer", "fulcrum-admin"} {
		if _, ok := got.clusterRoles[role]; !ok {
			t.Errorf("the chart has no ClusterRole %s", role)
		}
		diffGrants(t, "ClusterRole "+role, expand("*", got.clusterRoles[role]), expand("*", want.clusterRoles[role]))
	}
	if gk, wk := slices.Sorted(maps.Keys(got.clusterRoles)), slices.Sorted(maps.Keys(want.clusterRoles)); !slices.Equal(gk, wk) {
		t.Errorf("ClusterRoles: chart %v, manifests/install %v", gk, wk)
	}
}

// TestRBACFollowsWatchedNamespaces: with watchNamespaces, Fulcrum may do in
// each watched namespace exactly what the kustomize install allows there,
// and elsewhere only what needs no namespace (TokenReviews and the like)
// plus its own Lease and CA Secret.
func TestRBACFollowsWatchedNamespaces(t *testing.T) {
	want := kustomizeRBAC(t).serviceAccountGrants(t, "fulcrum-system", "fulcrum")
	got := collectRBAC(t, render(t, valueSets["namespaces-limited"], false)).serviceAccountGrants(t, "fulcrum-system", "fulcrum")
	for _, ns := range []string{"ml", "ml-staging"} {
		diffGrants(t, "namespace "+ns, in(got, ns), in(want, ns))
	}
	for _, ns := range []string{"fulcrum-system", "other"} {
		expected := map[grant]bool{}
		for g := range in(want, ns) {
			// Kept: cluster-scoped rules, and the namespaced Roles of the
			// kustomize install (Lease, CA Secret in fulcrum-system).
			if clusterScoped[g.resource] || !want[grant{"*", g.group, g.resource, g.name, g.verb}] {
				expected[g] = true
			}
		}
		diffGrants(t, "unwatched namespace "+ns, in(got, ns), expected)
	}
}

// TestRBACOfDisabledComponents: what a component does not run, the chart
// does not grant.
func TestRBACOfDisabledComponents(t *testing.T) {
	cases := map[string]struct {
		set    string
		absent []string // resources never granted
	}{
		"controller-only":      {set: "controller-only", absent: []string{"tokenreviews", "subjectaccessreviews", "validatingwebhookconfigurations"}},
		"webhook-cert-manager": {set: "webhook-cert-manager", absent: []string{"validatingwebhookconfigurations"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			vs := valueSets[tc.set]
			objs := render(t, vs, false)
			grants := collectRBAC(t, objs).serviceAccountGrants(t, vs.releaseNamespace(), vs.releaseName()+suffix(vs))
			if len(grants) == 0 {
				t.Fatal("the ServiceAccount is granted nothing")
			}
			for g := range grants {
				if slices.Contains(tc.absent, g.resource) {
					t.Errorf("granted %s", g)
				}
				// The controller gets MetricTemplates' Secrets by name; what
				// the self-signed webhook CA needs (create, update) is not
				// granted without it.
				if g.resource == "secrets" && g.verb != "get" {
					t.Errorf("granted %s", g)
				}
			}
			if !grants[grant{"*", "", "secrets", "*", "get"}] {
				t.Error("the controller cannot get MetricTemplates' Secrets")
			}
			if tc.set == "controller-only" {
				if len(pick(objs, "ClusterRole")) != 1 {
					t.Errorf("want only the controller's ClusterRole, got %v", kindNames(pick(objs, "ClusterRole")))
				}
				if in(grants, "fulcrum-system")[grant{"", "coordination.k8s.io", "leases", "*", "update"}] {
					t.Error("a single replica without leader election is granted Leases")
				}
			}
		})
	}
}
