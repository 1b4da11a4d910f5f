package version

import (
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	built := func(mainVersion string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Version: mainVersion}, Settings: settings}, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "abc123"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	tests := map[string]struct {
		version, commit string
		info            func() (*debug.BuildInfo, bool)
		want            Info
	}{
		"stamped wins over build info": {
			version: "v0.1.0", commit: "1111", info: built("v0.0.0-2026", rev),
			want: Info{Version: "v0.1.0", Commit: "1111"},
		},
		"build info when unstamped": {
			info: built("v0.0.0-20260101000000-abc123+dirty", rev, dirty),
			want: Info{Version: "v0.0.0-20260101000000-abc123+dirty", Commit: "abc123", Modified: true},
		},
		"devel without anything": {
			info: none,
			want: Info{Version: "(devel)"},
		},
		"devel when the toolchain says (devel)": {
			info: built("(devel)"),
			want: Info{Version: "(devel)"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := get(tc.version, tc.commit, tc.info)
			if got.GoVersion == "" || !strings.Contains(got.Platform, "/") {
				t.Fatalf("toolchain fields missing: %+v", got)
			}
			got.GoVersion, got.Platform = "", ""
			if got != tc.want {
				t.Fatalf("get = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	i := Info{Version: "v0.1.0", Commit: "abc", Modified: true, GoVersion: "go1.26.8", Platform: "linux/arm64"}
	if got, want := i.String(), "v0.1.0 (commit abc, modified, go1.26.8, linux/arm64)"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	if got := (Info{Version: "(devel)", GoVersion: "go1.26.8", Platform: "linux/amd64"}).String(); !strings.Contains(got, "commit unknown") {
		t.Fatalf("String = %q", got)
	}
}

func TestJSON(t *testing.T) {
	b, err := json.Marshal(Info{Version: "v0.1.0", Commit: "abc", GoVersion: "go1.26.8", Platform: "linux/amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"version":"v0.1.0","commit":"abc","goVersion":"go1.26.8","platform":"linux/amd64"}`; got != want {
		t.Fatalf("JSON = %s, want %s", got, want)
	}
}
