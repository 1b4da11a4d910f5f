// Package version says which build of Fulcrum is running. The release build
// (hack/image, `make build`) stamps the version and commit with -ldflags:
//
//	-X github.com/fulcrum-ml/fulcrum/cmd/internal/version.version=v0.1.0
//	-X github.com/fulcrum-ml/fulcrum/cmd/internal/version.commit=<full git sha>
//
// A plain `go build` falls back to what the Go toolchain recorded (the module
// version and VCS revision when built with -buildvcs), else "(devel)".
//
// Packages outside cmd/ cannot import this one (it is internal to cmd): the
// binaries pass Get() to them, for instance to answer a version request.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker (-X); empty in an unstamped build.
var (
	version string
	commit  string
)

// Info describes a build. It is also the JSON a server returns for its
// version, so clients can print it next to their own.
type Info struct {
	// Version is a release tag (v0.1.0), `git describe` output for other
	// commits, or "(devel)".
	Version string `json:"version"`
	// Commit is the full git revision; empty when unknown.
	Commit string `json:"commit,omitempty"`
	// Modified is true for a build from a working tree with uncommitted
	// changes, when the toolchain recorded it.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the Go toolchain that built the binary (go1.26.8).
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH (linux/amd64).
	Platform string `json:"platform"`
}

// Get returns this binary's build information.
func Get() Info {
	return get(version, commit, readBuildInfo)
}

func readBuildInfo() (*debug.BuildInfo, bool) { return debug.ReadBuildInfo() }

// get prefers the stamped values and fills the rest from the build info.
func get(stampedVersion, stampedCommit string, buildInfo func() (*debug.BuildInfo, bool)) Info {
	i := Info{Version: stampedVersion, Commit: stampedCommit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := buildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if i.Commit == "" {
					i.Commit = s.Value
				}
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if i.Version == "" {
		i.Version = "(devel)"
	}
	return i
}

// String is one line for `--version`:
// "v0.1.0 (commit <sha>, go1.26.8, linux/amd64)".
func (i Info) String() string {
	commit := i.Commit
	if commit == "" {
		commit = "unknown"
	}
	if i.Modified {
		commit += ", modified"
	}
	return fmt.Sprintf("%s (commit %s, %s, %s)", i.Version, commit, i.GoVersion, i.Platform)
}
