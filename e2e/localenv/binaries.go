package localenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
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
// become Ready at once, and a Job's pods complete at once (pod/fast). The
// chaos stages fail a running pod labelled
// pod-container-running-failed.stage.kwok.x-k8s.io=true (a Job gate that
// fails, in tests); their weight makes them win over pod/fast's.
var kwokStageDirs = []string{
	"kustomize/stage/node/fast",
	"kustomize/stage/node/heartbeat-with-lease",
	"kustomize/stage/pod/fast",
	"kustomize/stage/pod/chaos",
}

// kwokStagesRevision names the stages file with kwokStageDirs' contents:
// bump it when they change, so that a cached file is made again.
const kwokStagesRevision = "2"

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
		stages = filepath.Join(binDir, "kwok-stages-"+v+"-"+kwokStagesRevision+".yaml")
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
	var todo []component
	for _, c := range missing {
		if !isFile(out.paths[c.name]) { // another process may have built it while we waited
			todo = append(todo, c)
		}
	}
	jobs, err := planBuilds(root, todo, versions)
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		start := time.Now()
		logf("localenv: building %s (once; cached in %s)", j.describe(versions), binDir)
		if err := j.run(ctx, binDir, out.paths); err != nil {
			return nil, err
		}
		logf("localenv: built %s in %s", j.names(), time.Since(start).Round(time.Second))
	}
	if stages != "" && !isFile(stages) {
		if err := writeKwokStages(ctx, filepath.Join(root, components[Kwok].toolsDir), stages); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// buildJob is one `go build` invocation: the components of one tools module
// that share their -ldflags. kube-apiserver, kube-controller-manager and
// kube-scheduler are one job: the go command loads the package graph once,
// compiles each shared package once, and schedules the three binaries'
// own packages and links together, so both cores keep working while one
// binary links (mostly on one core), where three builds in a row wait for
// each link.
type buildJob struct {
	dir     string // the tools module's folder
	ldflags string
	comps   []component // in the order asked
}

// planBuilds groups comps into jobs, one per tools module and -ldflags, in
// the order each is first asked for.
func planBuilds(root string, comps []component, versions map[string]string) ([]buildJob, error) {
	var jobs []buildJob
	for _, c := range comps {
		ld, err := c.linkerFlags(versions[c.name])
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(root, c.toolsDir)
		i := slices.IndexFunc(jobs, func(j buildJob) bool { return j.dir == dir && j.ldflags == ld })
		if i < 0 {
			jobs = append(jobs, buildJob{dir: dir, ldflags: ld})
			i = len(jobs) - 1
		}
		jobs[i].comps = append(jobs[i].comps, c)
	}
	return jobs, nil
}

// linkerFlags are the -ldflags of c at version.
func (c component) linkerFlags(version string) (string, error) {
	if c.stampKube {
		return kubeLdflags(version)
	}
	return c.ldflags, nil
}

// args is the go command line that writes every binary of the job into the
// existing folder outDir, each named after its package (see execName).
func (j buildJob) args(outDir string) []string {
	args := []string{"build", "-o", outDir + string(filepath.Separator)}
	if j.ldflags != "" {
		args = append(args, "-ldflags", j.ldflags)
	}
	for _, c := range j.comps {
		args = append(args, c.pkg)
	}
	return args
}

func (j buildJob) names() string {
	var n []string
	for _, c := range j.comps {
		n = append(n, c.name)
	}
	return strings.Join(n, ", ")
}

// describe names the job's binaries with their versions, for progress lines.
func (j buildJob) describe(versions map[string]string) string {
	var n []string
	for i, c := range j.comps {
		if i == len(j.comps)-1 || versions[c.name] != versions[j.comps[i+1].name] {
			n = append(n, c.name+" "+versions[c.name])
		} else {
			n = append(n, c.name)
		}
	}
	return strings.Join(n, ", ")
}

// run builds the job into a temporary folder in binDir and renames each
// binary to its path in dst (keyed by component name), so a cached binary is
// always complete.
func (j buildJob) run(ctx context.Context, binDir string, dst map[string]string) error {
	tmp, err := os.MkdirTemp(binDir, fmt.Sprintf(".build-%d-", os.Getpid()))
	if err != nil {
		return fmt.Errorf("build %s: %w", j.names(), err)
	}
	defer os.RemoveAll(tmp)
	args := j.args(tmp)
	cmd := exec.CommandContext(ctx, goBinary(), args...)
	cmd.Dir = j.dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	InterruptOnCancel(cmd)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s (go %s in %s): %w\n%s", j.names(), strings.Join(args, " "), j.dir, err, tail(buf.String(), 40))
	}
	for _, c := range j.comps {
		if err := os.Rename(filepath.Join(tmp, execName(c.pkg)), dst[c.name]); err != nil {
			return fmt.Errorf("install %s: %w", c.name, err)
		}
	}
	return nil
}

// execName is the file name go build gives the binary of package pkg: its
// last path element, or the one before a major-version suffix
// (go.etcd.io/etcd/server/v3 is "server"), as cmd/go's DefaultExecName.
func execName(pkg string) string {
	elem := path.Base(pkg)
	if elem != pkg && isMajorVersion(elem) {
		elem = path.Base(path.Dir(pkg))
	}
	return elem
}

// isMajorVersion reports whether elem is a major-version suffix: v2, v3, ...
func isMajorVersion(elem string) bool {
	if len(elem) < 2 || elem[0] != 'v' || elem[1] == '0' || elem == "v1" {
		return false
	}
	for _, r := range elem[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
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
		InterruptOnCancel(cmd)
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

// InterruptOnCancel makes a go command started with exec.CommandContext stop
// as on Ctrl-C when ctx ends: it runs in a process group of its own, which
// gets SIGINT, so the compilers and linkers it started stop with it (the
// default, SIGKILL to the go command alone, leaves them running). Its caller
// decides when it stops: a Ctrl-C reaches it through the caller's ctx.
func InterruptOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
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
