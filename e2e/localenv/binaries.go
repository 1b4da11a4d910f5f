package localenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Binary names of the components the environment builds.
const (
	Etcd                  = "etcd"
	KubeAPIServer         = "kube-apiserver"
	KubeControllerManager = "kube-controller-manager"
	KubeScheduler         = "kube-scheduler"
	Kwok                  = "kwok"
)

// component says how one binary is built from its tools module under e2e/tools.
type component struct {
	name      string
	toolsDir  string // relative to the repo root
	module    string // module whose version in the tools go.mod keys the cache
	pkg       string // package to build
	stampKube bool   // stamp k8s.io/component-base/version with the module version
	ldflags   string // extra -ldflags (tools built by EnsureTool)
}

var components = map[string]component{
	Etcd:                  {name: Etcd, toolsDir: "e2e/tools/etcd", module: "go.etcd.io/etcd/server/v3", pkg: "go.etcd.io/etcd/server/v3"},
	KubeAPIServer:         {name: KubeAPIServer, toolsDir: "e2e/tools/kube", module: "k8s.io/kubernetes", pkg: "k8s.io/kubernetes/cmd/kube-apiserver", stampKube: true},
	KubeControllerManager: {name: KubeControllerManager, toolsDir: "e2e/tools/kube", module: "k8s.io/kubernetes", pkg: "k8s.io/kubernetes/cmd/kube-controller-manager", stampKube: true},
	KubeScheduler:         {name: KubeScheduler, toolsDir: "e2e/tools/kube", module: "k8s.io/kubernetes", pkg: "k8s.io/kubernetes/cmd/kube-scheduler", stampKube: true},
	Kwok:                  {name: Kwok, toolsDir: "e2e/tools/kwok", module: "sigs.k8s.io/kwok", pkg: "sigs.k8s.io/kwok/cmd/kwok"},
}

// kwokStageDirs are the stage folders of the kwok module concatenated into the
// stages file: nodes become Ready at once and keep their Lease renewed, pods
// become Ready at once.
var kwokStageDirs = []string{
	"kustomize/stage/node/fast",
	"kustomize/stage/node/heartbeat-with-lease",
	"kustomize/stage/pod/fast",
}

// RepoRoot is the root of the Fulcrum checkout: $FULCRUM_ROOT when set, else
// found from this source file's location (tests and `go run` on the machine
// that compiled them), else by walking up from the working directory.
func RepoRoot() (string, error) {
	if r := os.Getenv("FULCRUM_ROOT"); r != "" {
		return r, nil
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
		if isRepoRoot(root) {
			return root, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if isRepoRoot(d) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("find repo root: no Fulcrum go.mod above the working directory; set FULCRUM_ROOT to the checkout")
		}
	}
}

var rootModule = regexp.MustCompile(`(?m)^module github\.com/fulcrum-ml/fulcrum\s*$`)

func isRepoRoot(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && rootModule.Match(b)
}

// CacheDir is where built binaries live: $FULCRUM_CACHE_DIR, else
// $HOME/.cache/fulcrum. Binaries go to its bin/ folder as NAME-VERSION.
func CacheDir() string {
	if d := os.Getenv("FULCRUM_CACHE_DIR"); d != "" {
		return d
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "fulcrum")
	}
	return filepath.Join(os.TempDir(), "fulcrum-cache")
}

// moduleVersion reads the version of module from a go.mod's text.
func moduleVersion(gomod []byte, module string) (string, error) {
	re := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(module) + `\s+(v[^\s/]+)`)
	m := re.FindSubmatch(gomod)
	if m == nil {
		return "", fmt.Errorf("module %s is not required in go.mod", module)
	}
	return string(m[1]), nil
}

// kubeLdflags stamps the Kubernetes version so that clients parsing
// /version as a semantic version accept it.
func kubeLdflags(version string) (string, error) {
	m := regexp.MustCompile(`^v(\d+)\.(\d+)\.`).FindStringSubmatch(version)
	if m == nil {
		return "", fmt.Errorf("kubernetes version %q is not vMAJOR.MINOR.PATCH", version)
	}
	return fmt.Sprintf("-X k8s.io/component-base/version.gitVersion=%s -X k8s.io/component-base/version.gitMajor=%s -X k8s.io/component-base/version.gitMinor=%s",
		version, m[1], m[2]), nil
}

// Binaries are the paths of built components.
type Binaries struct {
	paths map[string]string
	// KwokStages is the concatenated kwok stages file.
	KwokStages string
}

// Path is the built binary of a component (Etcd, KubeAPIServer, ...).
func (b *Binaries) Path(name string) string { return b.paths[name] }

// BuildOptions tune EnsureBinaries.
type BuildOptions struct {
	// Names of the components to build; every one when empty.
	Names []string
	// Logf reports progress (a build takes minutes the first time).
	Logf func(format string, args ...any)
}

// EnsureBinaries builds the missing components once into CacheDir()/bin,
// keyed by the version pinned in their tools module, and returns their paths.
// A file lock makes concurrent callers (parallel test packages) wait for one
// build; each binary is written to a temporary file and renamed into place.
func EnsureBinaries(ctx context.Context, opts BuildOptions) (*Binaries, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	names := opts.Names
	if len(names) == 0 {
		for n := range components {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	binDir := filepath.Join(CacheDir(), "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, fmt.Errorf("create binary cache %s: %w", binDir, err)
	}
	out := &Binaries{paths: map[string]string{}}
	var missing []component
	versions := map[string]string{}
	for _, n := range names {
		c, ok := components[n]
		if !ok {
			return nil, fmt.Errorf("unknown component %q", n)
		}
		gomod, err := os.ReadFile(filepath.Join(root, c.toolsDir, "go.mod"))
		if err != nil {
			return nil, fmt.Errorf("read tools module of %s: %w", n, err)
		}
		v, err := moduleVersion(gomod, c.module)
		if err != nil {
			return nil, fmt.Errorf("%s/go.mod: %w", c.toolsDir, err)
		}
		versions[n] = v
		out.paths[n] = filepath.Join(binDir, n+"-"+v)
		if !isFile(out.paths[n]) {
			missing = append(missing, c)
		}
	}
	var stages string
	if v, ok := versions[Kwok]; ok {
		stages = filepath.Join(binDir, "kwok-stages-"+v+".yaml")
		out.KwokStages = stages
	}
	if len(missing) == 0 && (stages == "" || isFile(stages)) {
		return out, nil
	}

	unlock, err := lockFile(ctx, filepath.Join(binDir, ".build.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	for _, c := range missing {
		dst := out.paths[c.name]
		if isFile(dst) { // another process built it while we waited
			continue
		}
		start := time.Now()
		logf("localenv: building %s %s (once; cached in %s)", c.name, versions[c.name], binDir)
		if err := build(ctx, filepath.Join(root, c.toolsDir), c, versions[c.name], dst); err != nil {
			return nil, err
		}
		logf("localenv: built %s in %s", c.name, time.Since(start).Round(time.Second))
	}
	if stages != "" && !isFile(stages) {
		if err := writeKwokStages(ctx, filepath.Join(root, components[Kwok].toolsDir), stages); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func build(ctx context.Context, dir string, c component, version, dst string) error {
	tmp := fmt.Sprintf("%s.tmp-%d", dst, os.Getpid())
	args := []string{"build", "-o", tmp}
	if c.stampKube {
		ld, err := kubeLdflags(version)
		if err != nil {
			return err
		}
		args = append(args, "-ldflags", ld)
	} else if c.ldflags != "" {
		args = append(args, "-ldflags", c.ldflags)
	}
	args = append(args, c.pkg)
	cmd := exec.CommandContext(ctx, goBinary(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("build %s (go %s in %s): %w\n%s", c.name, strings.Join(args, " "), dir, err, tail(buf.String(), 40))
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("install %s: %w", c.name, err)
	}
	return nil
}

// writeKwokStages concatenates the stage YAML of the kwok module pinned in
// e2e/tools/kwok; kwok exits with "no stages found" without it.
func writeKwokStages(ctx context.Context, kwokTools, dst string) error {
	dir, err := moduleDir(ctx, kwokTools, "sigs.k8s.io/kwok")
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, sub := range kwokStageDirs {
		files, err := filepath.Glob(filepath.Join(dir, sub, "*.yaml"))
		if err != nil || len(files) == 0 {
			return fmt.Errorf("kwok stages: no YAML in %s", filepath.Join(dir, sub))
		}
		sort.Strings(files)
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("kwok stages: %w", err)
			}
			b.WriteString("---\n")
			b.Write(bytes.TrimSpace(data))
			b.WriteString("\n")
		}
	}
	return writeAtomic(dst, b.Bytes())
}

// moduleDir is the folder of module in the module cache, as the module in
// dir pins it, downloading it when missing.
func moduleDir(ctx context.Context, dir, module string) (string, error) {
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, goBinary(), args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go %s in %s: %w: %s", strings.Join(args, " "), dir, err, bytes.TrimSpace(out))
		}
		return strings.TrimSpace(string(out)), nil
	}
	d, err := run("list", "-m", "-f", "{{.Dir}}", module)
	if err != nil {
		return "", err
	}
	if d == "" {
		if _, err := run("mod", "download", module); err != nil {
			return "", err
		}
		if d, err = run("list", "-m", "-f", "{{.Dir}}", module); err != nil {
			return "", err
		}
	}
	if d == "" {
		return "", fmt.Errorf("module %s has no folder in the module cache", module)
	}
	return d, nil
}

func goBinary() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	// `go test` puts its toolchain first on PATH; outside it, the usual place.
	return "/usr/local/go/bin/go"
}

// lockFile takes an exclusive flock, polling so that ctx can cancel the wait.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open build lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for another build of the environment's binaries (%s): %w", path, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func writeAtomic(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
