package manifests_test

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fulcrum-ml/fulcrum/manifests"
)

func installObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	objs, err := manifests.Objects("install")
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func find[T any](t *testing.T, objs []*unstructured.Unstructured, kind, name string) *T {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			out := new(T)
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out); err != nil {
				t.Fatalf("convert %s %s: %v", kind, name, err)
			}
			return out
		}
	}
	t.Fatalf("manifests/install has no %s %s", kind, name)
	return nil
}

func TestDeploymentIsLockedDown(t *testing.T) {
	d := find[appsv1.Deployment](t, installObjects(t), "Deployment", "fulcrum")
	pod := d.Spec.Template.Spec
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("pod securityContext.runAsNonRoot must be true")
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Fatalf("container %s has no securityContext", c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("container %s: readOnlyRootFilesystem must be true", c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("container %s: allowPrivilegeEscalation must be false", c.Name)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}):
			t.Errorf("container %s: capabilities must drop ALL, got %+v", c.Name, sc.Capabilities)
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Errorf("container %s needs readiness and liveness probes", c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("container %s needs cpu and memory requests", c.Name)
		}
	}
}

func TestUserRolesCarryCustomVerbs(t *testing.T) {
	objs := installObjects(t)
	actions := []string{"start", "split", "promote", "rollback", "pause"}
	cases := map[string]struct{ want, deny []string }{
		"fulcrum-viewer":      {want: []string{"get", "list", "watch"}, deny: actions},
		"fulcrum-ml-engineer": {want: append([]string{"get", "list"}, actions...), deny: []string{"delete", "update"}},
		"fulcrum-admin":       {want: append([]string{"get", "list", "delete", "update"}, actions...)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			role := find[rbacv1.ClusterRole](t, objs, "ClusterRole", name)
			verbs := verbsOn(role.Rules, "fulcrum.dev", "modelrollouts")
			for _, v := range tc.want {
				if !slices.Contains(verbs, v) {
					t.Errorf("%s lacks verb %q on modelrollouts (has %v)", name, v, verbs)
				}
			}
			for _, v := range tc.deny {
				if slices.Contains(verbs, v) {
					t.Errorf("%s must not have verb %q on modelrollouts", name, v)
				}
			}
		})
	}
}

func TestControllerRoleHasNoWildcards(t *testing.T) {
	role := find[rbacv1.ClusterRole](t, installObjects(t), "ClusterRole", "fulcrum-controller")
	for _, r := range role.Rules {
		for _, s := range [][]string{r.APIGroups, r.Resources, r.Verbs} {
			if slices.Contains(s, "*") {
				t.Errorf("rule %+v uses a wildcard", r)
			}
		}
		if slices.Contains(r.Resources, "virtualservices") && (slices.Contains(r.Verbs, "delete") || slices.Contains(r.Verbs, "create")) {
			t.Errorf("the controller only updates VirtualServices; it must not create or delete them: %+v", r)
		}
		// MetricTemplates' Secrets are read one at a time by name; listing
		// or watching would hand the controller every Secret's content.
		if slices.Contains(r.Resources, "secrets") && !slices.Equal(r.Verbs, []string{"get"}) {
			t.Errorf("the controller may only get secrets, never list or watch them: %+v", r)
		}
	}
}

func verbsOn(rules []rbacv1.PolicyRule, group, resource string) []string {
	var verbs []string
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) {
			verbs = append(verbs, r.Verbs...)
		}
	}
	return verbs
}

func TestEveryManifestDecodes(t *testing.T) {
	for _, dir := range []string{"crd", "install", "examples"} {
		objs, err := manifests.Objects(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) == 0 {
			t.Errorf("manifests/%s holds no objects", dir)
		}
	}
}
