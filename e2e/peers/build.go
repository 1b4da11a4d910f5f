package peers

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

// The peers as built from their Go modules. Each tools module under
// e2e/tools/peers pins one; the binaries are cached like the environment's
// (localenv.EnsureTool) and the CRDs are read from the same module.
var (
	FlaggerTool = localenv.Tool{
		Name:     "flagger",
		ToolsDir: "e2e/tools/peers/flagger",
		Module:   "github.com/fluxcd/flagger",
		Package:  "github.com/fluxcd/flagger/cmd/flagger",
	}
	ArgoTool = localenv.Tool{
		Name:     "argo-rollouts-controller",
		ToolsDir: "e2e/tools/peers/argo",
		Module:   "github.com/argoproj/argo-rollouts",
		Package:  "github.com/argoproj/argo-rollouts/cmd/rollouts-controller",
		// Argo prints and reports this version; unstamped it says 99.99.99.
		Ldflags: "-X github.com/argoproj/argo-rollouts/utils/version.version={{number}}",
	}
)

// crdGlobs are where each peer's module keeps its CRDs.
var crdGlobs = map[string][]string{
	FlaggerTool.Name: {"artifacts/flagger/crd.yaml"},
	ArgoTool.Name:    {"manifests/crds/*-crd.yaml"},
}

// Peer is a built peer: its binary, version and CRD files.
type Peer struct {
	Bin, Version string
	CRDs         []string
}

// BuildPeer builds (once) the binary of t and finds its CRDs in the module
// cache. The first build downloads the peer's dependencies and takes
// minutes; later calls return at once.
func BuildPeer(ctx context.Context, t localenv.Tool, logf func(string, ...any)) (Peer, error) {
	bin, version, err := localenv.EnsureTool(ctx, t, logf)
	if err != nil {
		return Peer{}, fmt.Errorf("build %s: %w", t.Name, err)
	}
	dir, err := localenv.ToolModuleDir(ctx, t.ToolsDir, t.Module)
	if err != nil {
		return Peer{}, fmt.Errorf("%s CRDs: %w", t.Name, err)
	}
	p := Peer{Bin: bin, Version: version}
	for _, g := range crdGlobs[t.Name] {
		p.CRDs = append(p.CRDs, filepath.Join(dir, g))
	}
	return p, nil
}
