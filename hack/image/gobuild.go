package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// versionPkg is where the binaries keep their stamped version.
const versionPkg = "github.com/fulcrum-ml/fulcrum/cmd/internal/version"

// ldflags strip the symbol table, DWARF and the build ID, and stamp the
// version and commit.
func ldflags(version, commit string) string {
	return strings.Join([]string{
		"-s", "-w", "-buildid=",
		"-X", versionPkg + ".version=" + version,
		"-X", versionPkg + ".commit=" + commit,
	}, " ")
}

// goBuild compiles pkg of the module in root into a static linux/arch
// binary and returns it. Everything that could change the bytes is set here
// rather than taken from the caller's environment: no cgo, -trimpath, no VCS
// stamp (the version and commit come from ldflags), the baseline
// instruction sets, and GOFLAGS cleared.
func goBuild(ctx context.Context, root, pkg, arch, version, commit string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "fulcrum-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "fulcrum")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-mod=readonly",
		"-ldflags="+ldflags(version, commit), "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s for linux/%s: %w\n%s", pkg, arch, err, b)
	}
	return os.ReadFile(out)
}
