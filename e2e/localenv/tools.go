package localenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Tool is a program built from a tools module of its own under e2e/tools,
// like the environment's components: a peer controller for a benchmark,
// for example. Its go.mod pins Module; the binary is cached as NAME-VERSION.
type Tool struct {
	// Name of the binary in the cache.
	Name string
	// ToolsDir holds the tools module's go.mod, relative to the repo root.
	ToolsDir string
	// Module is the module whose version in ToolsDir/go.mod keys the cache.
	Module string
	// Package is the main package to build.
	Package string
	// Ldflags are passed to go build; "{{version}}" is replaced by the
	// module's version and "{{number}}" by the version without its "v"
	// (to stamp a version variable).
	Ldflags string
}

// EnsureTool builds t once into CacheDir()/bin, under the same file lock
// as EnsureBinaries, and returns the binary's path and the pinned version.
func EnsureTool(ctx context.Context, t Tool, logf func(format string, args ...any)) (path, version string, err error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	root, err := RepoRoot()
	if err != nil {
		return "", "", err
	}
	gomod, err := os.ReadFile(filepath.Join(root, t.ToolsDir, "go.mod"))
	if err != nil {
		return "", "", fmt.Errorf("read tools module of %s: %w", t.Name, err)
	}
	version, err = moduleVersion(gomod, t.Module)
	if err != nil {
		return "", "", fmt.Errorf("%s/go.mod: %w", t.ToolsDir, err)
	}
	binDir := filepath.Join(CacheDir(), "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", "", fmt.Errorf("create binary cache %s: %w", binDir, err)
	}
	path = filepath.Join(binDir, t.Name+"-"+version)
	if isFile(path) {
		return path, version, nil
	}
	unlock, err := lockFile(ctx, filepath.Join(binDir, ".build.lock"))
	if err != nil {
		return "", "", err
	}
	defer unlock()
	if isFile(path) { // another process built it while we waited
		return path, version, nil
	}
	start := time.Now()
	logf("localenv: building %s %s from %s (once; cached in %s)", t.Name, version, t.ToolsDir, binDir)
	c := component{name: t.Name, toolsDir: t.ToolsDir, module: t.Module, pkg: t.Package,
		ldflags: strings.NewReplacer("{{version}}", version, "{{number}}", strings.TrimPrefix(version, "v")).Replace(t.Ldflags)}
	job := buildJob{dir: filepath.Join(root, t.ToolsDir), ldflags: c.ldflags, comps: []component{c}}
	if err := job.run(ctx, binDir, map[string]string{t.Name: path}); err != nil {
		return "", "", err
	}
	logf("localenv: built %s in %s", t.Name, time.Since(start).Round(time.Second))
	return path, version, nil
}

// ToolModuleDir is the folder of module in the module cache, as the tools
// module in toolsDir (relative to the repo root) pins it, downloading it
// when missing: where a tool's CRDs and other shipped files are read from.
func ToolModuleDir(ctx context.Context, toolsDir, module string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return moduleDir(ctx, filepath.Join(root, toolsDir), module)
}

// InstallCRDs creates the CustomResourceDefinitions in the files matched by
// the patterns (paths or globs; kustomization.yaml is skipped) and waits
// until each is Established. Existing CRDs are left as they are.
func (e *Env) InstallCRDs(ctx context.Context, patterns ...string) error {
	return installCRDs(ctx, e.Config, patterns...)
}
