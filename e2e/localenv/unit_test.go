package localenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestModuleVersion(t *testing.T) {
	gomod := []byte(`module x

go 1.26.0

require k8s.io/kubernetes v1.37.2 // indirect

require (
	go.etcd.io/etcd/server/v3 v3.6.16 // indirect
	go.etcd.io/etcd/server/v3/extra v9.9.9
	sigs.k8s.io/kwok v0.8.0
)
`)
	tests := map[string]struct{ module, want string }{
		"single-line require": {"k8s.io/kubernetes", "v1.37.2"},
		"block require":       {"sigs.k8s.io/kwok", "v0.8.0"},
		"major-version path":  {"go.etcd.io/etcd/server/v3", "v3.6.16"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := moduleVersion(gomod, tc.module)
			if err != nil || got != tc.want {
				t.Errorf("moduleVersion(%s) = %q, %v; want %q", tc.module, got, err, tc.want)
			}
		})
	}
	if _, err := moduleVersion(gomod, "k8s.io/api"); err == nil {
		t.Error("a module that is not required must be an error")
	}
}

func TestKubeLdflags(t *testing.T) {
	got, err := kubeLdflags("v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"version.gitVersion=v1.37.2", "version.gitMajor=1", "version.gitMinor=37"} {
		if !strings.Contains(got, want) {
			t.Errorf("ldflags %q lack %q", got, want)
		}
	}
	if _, err := kubeLdflags("master"); err == nil {
		t.Error("a version that is not vX.Y.Z must be an error")
	}
}

func TestTokenFile(t *testing.T) {
	got, err := tokenFile([]User{
		{Name: "admin", Token: "t1", Groups: []string{"system:masters"}},
		{Name: "alice", Token: "t2", Groups: []string{"ml", "viewers"}},
		{Name: "bob", Token: "t3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "t1,admin,admin,\"system:masters\"\nt2,alice,alice,\"ml,viewers\"\nt3,bob,bob\n"
	if got != want {
		t.Errorf("token file:\n%s\nwant:\n%s", got, want)
	}
	bad := map[string][]User{
		"empty token":    {{Name: "a"}},
		"shared token":   {{Name: "a", Token: "t"}, {Name: "b", Token: "t"}},
		"duplicate name": {{Name: "a", Token: "t"}, {Name: "a", Token: "u"}},
		"comma in group": {{Name: "a", Token: "t", Groups: []string{"x,y"}}},
	}
	for name, users := range bad {
		if _, err := tokenFile(users); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestKubeconfigLoads(t *testing.T) {
	keys, err := newPKI()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(kubeconfig("https://127.0.0.1:6443", keys.CAPEM, AdminUser, "tok")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || cfg.BearerToken != "tok" || string(cfg.CAData) != string(keys.CAPEM) {
		t.Errorf("kubeconfig loads as host %q token %q, CA match %v", cfg.Host, cfg.BearerToken, string(cfg.CAData) == string(keys.CAPEM))
	}
}

func TestReadCRDs(t *testing.T) {
	in := `# leading comment
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: a.example.com
---
---
# only a comment
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: b.example.com
`
	crds, err := readCRDs(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) != 2 || crds[0].Name != "a.example.com" || crds[1].Name != "b.example.com" {
		t.Errorf("read %d CRDs: %v", len(crds), crds)
	}
	if _, err := readCRDs(strings.NewReader("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")); err == nil {
		t.Error("a document that is not a CRD must be an error")
	}
}

// TestEnsureBinariesBuildsOnce builds a stand-in "etcd" from a local tools
// module twice at once: one build, both callers get the cached binary.
func TestEnsureBinariesBuildsOnce(t *testing.T) {
	root := t.TempDir()
	tools := filepath.Join(root, "e2e", "tools", "etcd")
	fake := filepath.Join(tools, "fake")
	if err := os.MkdirAll(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(path, data string) {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "go.mod"), "module github.com/fulcrum-ml/fulcrum\n")
	write(filepath.Join(tools, "go.mod"), "module tools\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 v3.0.1\n\nreplace go.etcd.io/etcd/server/v3 => ./fake\n")
	write(filepath.Join(fake, "go.mod"), "module go.etcd.io/etcd/server/v3\n\ngo 1.26.0\n")
	write(filepath.Join(fake, "main.go"), "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Print(\"fake etcd\") }\n")
	cache := t.TempDir()
	t.Setenv("FULCRUM_ROOT", root)
	t.Setenv("FULCRUM_CACHE_DIR", cache)

	var builds atomic.Int32
	logf := func(format string, args ...any) {
		if strings.HasPrefix(format, "localenv: building") {
			builds.Add(1)
		}
	}
	var wg sync.WaitGroup
	paths := make([]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := EnsureBinaries(context.Background(), BuildOptions{Names: []string{Etcd}, Logf: logf})
			errs[i] = err
			if err == nil {
				paths[i] = b.Path(Etcd)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := filepath.Join(cache, "bin", "etcd-v3.0.1")
	if paths[0] != want || paths[1] != want {
		t.Errorf("paths %v, want both %s", paths, want)
	}
	if n := builds.Load(); n != 1 {
		t.Errorf("built %d times, want once", n)
	}
	out, err := exec.Command(want).Output()
	if err != nil || string(out) != "fake etcd" {
		t.Errorf("built binary printed %q, %v", out, err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(cache, "bin", ".build-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// TestBuildPlan: the three Kubernetes binaries are one go build invocation
// writing into a folder, stamped with the version; etcd and kwok, from
// other tools modules, are one each.
func TestBuildPlan(t *testing.T) {
	var comps []component
	for _, n := range []string{Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler, Kwok} {
		comps = append(comps, components[n])
	}
	versions := map[string]string{Etcd: "v3.6.16", KubeAPIServer: "v1.37.2", KubeControllerManager: "v1.37.2", KubeScheduler: "v1.37.2", Kwok: "v0.8.0"}
	jobs, err := planBuilds("/repo", comps, versions)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"/repo/e2e/tools/etcd": {"build", "-o", "/out/", "go.etcd.io/etcd/server/v3"},
		"/repo/e2e/tools/kube": {"build", "-o", "/out/", "-ldflags",
			"-X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37",
			"k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager", "k8s.io/kubernetes/cmd/kube-scheduler"},
		"/repo/e2e/tools/kwok": {"build", "-o", "/out/", "sigs.k8s.io/kwok/cmd/kwok"},
	}
	if len(jobs) != len(want) {
		t.Fatalf("%d go build invocations, want %d: %+v", len(jobs), len(want), jobs)
	}
	for _, j := range jobs {
		if got := j.args("/out"); !slices.Equal(got, want[j.dir]) {
			t.Errorf("go build in %s:\n got %q\nwant %q", j.dir, got, want[j.dir])
		}
	}
	if got := jobs[1].describe(versions); got != "kube-apiserver, kube-controller-manager, kube-scheduler v1.37.2" {
		t.Errorf("progress line names %q", got)
	}

	// Only what is missing is built: the scheduler alone is one package.
	jobs, err = planBuilds("/repo", []component{components[KubeScheduler]}, versions)
	if err != nil || len(jobs) != 1 || len(jobs[0].comps) != 1 {
		t.Errorf("scheduler alone: %+v, %v", jobs, err)
	}
}

func TestExecName(t *testing.T) {
	tests := map[string]string{
		"k8s.io/kubernetes/cmd/kube-apiserver": "kube-apiserver",
		"go.etcd.io/etcd/server/v3":            "server",
		"example.com/tool/v1":                  "v1",
		"example.com/tool/v0":                  "v0",
		"example.com/tool/v2x":                 "v2x",
		"v2":                                   "v2",
	}
	for pkg, want := range tests {
		if got := execName(pkg); got != want {
			t.Errorf("execName(%q) = %q, want %q", pkg, got, want)
		}
	}
}

// TestEnsureBinariesOneKubeBuild builds two stand-in Kubernetes binaries from
// one local module: one go build, each binary cached under its own name.
func TestEnsureBinariesOneKubeBuild(t *testing.T) {
	root := t.TempDir()
	tools := filepath.Join(root, "e2e", "tools", "kube")
	write := func(path, data string) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "go.mod"), "module github.com/fulcrum-ml/fulcrum\n")
	write(filepath.Join(tools, "go.mod"), "module tools\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes v1.37.2\n\nreplace k8s.io/kubernetes => ./fake\n")
	write(filepath.Join(tools, "fake", "go.mod"), "module k8s.io/kubernetes\n\ngo 1.26.0\n")
	for _, n := range []string{KubeAPIServer, KubeScheduler} {
		write(filepath.Join(tools, "fake", "cmd", n, "main.go"), "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Print(\"fake "+n+"\") }\n")
	}
	cache := t.TempDir()
	t.Setenv("FULCRUM_ROOT", root)
	t.Setenv("FULCRUM_CACHE_DIR", cache)

	var lines []string
	logf := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	b, err := EnsureBinaries(context.Background(), BuildOptions{Names: []string{KubeAPIServer, KubeScheduler}, Logf: logf})
	if err != nil {
		t.Fatal(err)
	}
	var builds []string
	for _, l := range lines {
		if strings.HasPrefix(l, "localenv: building") {
			builds = append(builds, l)
		}
	}
	if len(builds) != 1 || !strings.Contains(builds[0], "kube-apiserver, kube-scheduler v1.37.2") {
		t.Errorf("want one build of both, got %q", builds)
	}
	for _, n := range []string{KubeAPIServer, KubeScheduler} {
		want := filepath.Join(cache, "bin", n+"-v1.37.2")
		if b.Path(n) != want {
			t.Errorf("%s at %s, want %s", n, b.Path(n), want)
		}
		out, err := exec.Command(want).Output()
		if err != nil || string(out) != "fake "+n {
			t.Errorf("%s printed %q, %v", n, out, err)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(cache, "bin", ".build-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary folders left: %v", leftovers)
	}
}

func TestRemoveAbandoned(t *testing.T) {
	parent := t.TempDir()
	mk := func(name string, files map[string]string) string {
		d := filepath.Join(parent, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, data := range files {
			if err := os.WriteFile(filepath.Join(d, f), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	// A pid that cannot exist: above the kernel's pid_max.
	dead := "99999999"
	abandoned := mk("fulcrum-env-dead", map[string]string{ownerFile: dead})
	kept := mk("fulcrum-env-kept", map[string]string{ownerFile: dead, keptFile: ""})
	live := mk("fulcrum-env-live", map[string]string{ownerFile: strconv.Itoa(os.Getpid())})
	starting := mk("fulcrum-env-starting", nil)
	other := mk("something-else", map[string]string{ownerFile: dead})

	removeAbandoned(parent)
	if _, err := os.Stat(abandoned); !os.IsNotExist(err) {
		t.Errorf("abandoned folder kept: %v", err)
	}
	for _, d := range []string{kept, live, starting, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
}

func TestPortTaken(t *testing.T) {
	e := &Env{Dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(e.Dir, "etcd.log"), []byte("started\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if e.portTaken() {
		t.Error("a clean log must not read as a port conflict")
	}
	msg := "E1129 run.go:72] \"command failed\" err=\"failed to listen on 127.0.0.1:41234: listen tcp 127.0.0.1:41234: bind: address already in use\"\n"
	if err := os.WriteFile(filepath.Join(e.Dir, "kube-apiserver.log"), []byte(msg), 0o644); err != nil {
		t.Fatal(err)
	}
	if !e.portTaken() {
		t.Error("a bind failure must read as a port conflict")
	}
}

// The Gateway API files exist in the module go.mod pins, and each holds the
// one CRD its name promises (the standard folder also has a
// ValidatingAdmissionPolicy, which readCRDs would refuse).
func TestGatewayAPICRDFiles(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := moduleDir(t.Context(), root, gatewayAPIModule)
	if err != nil {
		t.Fatal(err)
	}
	files := gatewayAPICRDFiles(dir)
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crds, err := readCRDs(strings.NewReader(string(data)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var names []string
		for _, c := range crds {
			names = append(names, c.Name)
		}
		if want := gatewayAPIKinds[i] + ".gateway.networking.k8s.io"; !slices.Equal(names, []string{want}) {
			t.Errorf("%s holds CRDs %v, want only %s", f, names, want)
		}
	}
}
