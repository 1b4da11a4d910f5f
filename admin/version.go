package admin

import "net/http"

// BuildInfo is the server's build, answered at GET /api/v1/version so that
// `fulcrumctl version` can print it next to its own. Its fields are those of
// cmd/internal/version.Info (which packages outside cmd/ cannot import), so
// the binary passes admin.BuildInfo(version.Get()).
type BuildInfo struct {
	// Version is a release tag (v0.1.0), `git describe` output, or "(devel)".
	Version string `json:"version"`
	// Commit is the full git revision; empty when unknown.
	Commit string `json:"commit,omitempty"`
	// Modified is true for a build from a working tree with uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// unknownVersion is answered when Config.Version was not set.
const unknownVersion = "unknown"

// version answers without authentication, like the Kubernetes API server's
// /version (which system:public-info-viewer grants to system:unauthenticated):
// a client without a token, or with an expired one, can still tell which
// server it talks to, and the answer tells little that is not public already
// (the image tag is in the Deployment; /metrics, also open, shows the Go
// version in go_info). It reads nothing from Kubernetes and is rate limited
// like every /api/v1 route.
func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	v := s.cfg.Version
	if v.Version == "" {
		v.Version = unknownVersion
	}
	writeJSON(w, http.StatusOK, v)
}
