package admin

import (
	"encoding/json"
	"testing"
)

func TestVersion(t *testing.T) {
	build := BuildInfo{Version: "v0.1.0", Commit: "0123abcd", GoVersion: "go1.26.8", Platform: "linux/arm64"}
	for name, tc := range map[string]struct {
		cfg   BuildInfo
		token string
		want  map[string]any
	}{
		"stamped, no token": {
			cfg:  build,
			want: map[string]any{"version": "v0.1.0", "commit": "0123abcd", "goVersion": "go1.26.8", "platform": "linux/arm64"},
		},
		"an invalid token is not even looked at": {
			cfg: build, token: "expired",
			want: map[string]any{"version": "v0.1.0", "commit": "0123abcd", "goVersion": "go1.26.8", "platform": "linux/arm64"},
		},
		"not given by the binary": {
			want: map[string]any{"version": "unknown", "goVersion": "", "platform": ""},
		},
		"modified working tree": {
			cfg:  BuildInfo{Version: "(devel)", Commit: "0123abcd", Modified: true, GoVersion: "go1.26.8", Platform: "linux/amd64"},
			want: map[string]any{"version": "(devel)", "commit": "0123abcd", "modified": true, "goVersion": "go1.26.8", "platform": "linux/amd64"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil, func(c *Config) { c.Version = tc.cfg })
			r := f.do("GET", "/api/v1/version", tc.token, "")
			if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("GET /api/v1/version: %d %s %s", r.status, r.header.Get("Content-Type"), r.raw)
			}
			if len(r.body) != len(tc.want) {
				t.Errorf("got members %v, want %v", r.body, tc.want)
			}
			for k, v := range tc.want {
				if r.body[k] != v {
					t.Errorf("%s = %v, want %v", k, r.body[k], v)
				}
			}
		})
	}
}

// TestVersionSchema checks that the OpenAPI schema of the version answer
// names every member the server can send.
func TestVersionSchema(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	full, err := json.Marshal(BuildInfo{Version: "v", Commit: "c", Modified: true, GoVersion: "g", Platform: "p"})
	if err != nil {
		t.Fatal(err)
	}
	var members map[string]any
	if err := json.Unmarshal(full, &members); err != nil {
		t.Fatal(err)
	}
	props := doc.Components.Schemas["BuildInfo"].Properties
	for k := range members {
		if props[k] == nil {
			t.Errorf("openapi's BuildInfo lacks %q", k)
		}
	}
	if len(props) != len(members) {
		t.Errorf("openapi's BuildInfo has %d properties, the server sends %d", len(props), len(members))
	}
}
