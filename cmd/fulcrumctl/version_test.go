package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fulcrum-ml/fulcrum/admin"
	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/cmd/internal/version"
)

// The server's, the client's and the binary's builds are one shape: these
// conversions stop compiling when one of them gains or loses a field.
var (
	_ = admin.BuildInfo(version.Info{})
	_ = version.Info(client.ServerVersion{})
)

// versionServer answers GET /api/v1/version with body, and records whether
// a token came along.
func versionServer(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/version" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestVersionCommand(t *testing.T) {
	server := versionServer(t, 200, `{"version":"v0.1.0","commit":"0123abcd","goVersion":"go1.26.8","platform":"linux/arm64"}`)
	old := versionServer(t, 404, `{"type":"about:blank","title":"Not found","status":404,"detail":"no API route /api/v1/version"}`)
	unknown := versionServer(t, 200, `{"version":"unknown","goVersion":"","platform":""}`)
	clientLine := "Client: " + version.Get().String() + "\n"
	for name, tc := range map[string]struct {
		env     map[string]string
		args    []string
		code    int
		out     string
		errPart string
	}{
		"client and server": {
			env: map[string]string{"FULCRUM_SERVER": server.URL}, args: []string{"version"},
			out: clientLine + "Server: v0.1.0 (commit 0123abcd, go1.26.8, linux/arm64)\n",
		},
		"client only needs no server": {
			args: []string{"version", "--client"}, out: clientLine,
		},
		"no server: the client's version, then a usage error": {
			args: []string{"version"}, code: exitUsageErr, out: clientLine, errPart: "--client for the client's version only",
		},
		"a server without the route": {
			env: map[string]string{"FULCRUM_SERVER": old.URL}, args: []string{"version"}, code: exitFailed, out: clientLine,
			errPart: "has no GET /api/v1/version",
		},
		"a server not told its build": {
			env: map[string]string{"FULCRUM_SERVER": unknown.URL}, args: []string{"version"}, out: clientLine + "Server: unknown\n",
		},
		"unreachable": {
			env: map[string]string{"FULCRUM_SERVER": "http://127.0.0.1:1"}, args: []string{"version"}, code: exitUsageErr, out: clientLine,
			errPart: "cannot reach the admin API",
		},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errb, func(k string) string { return tc.env[k] })
			if code != tc.code || out.String() != tc.out || !strings.Contains(errb.String(), tc.errPart) {
				t.Fatalf("exit %d (want %d)\nstdout %q\nwant   %q\nstderr %q (want it to hold %q)", code, tc.code, out.String(), tc.out, errb.String(), tc.errPart)
			}
		})
	}
}

func TestVersionCommandJSON(t *testing.T) {
	server := versionServer(t, 200, `{"version":"v0.1.0","commit":"0123abcd","modified":true,"goVersion":"go1.26.8","platform":"linux/arm64"}`)
	var out, errb bytes.Buffer
	env := map[string]string{"FULCRUM_SERVER": server.URL}
	if code := run(context.Background(), []string{"version", "-o", "json"}, &out, &errb, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got versions
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	want := version.Info{Version: "v0.1.0", Commit: "0123abcd", Modified: true, GoVersion: "go1.26.8", Platform: "linux/arm64"}
	if got.Client != version.Get() || got.Server == nil || *got.Server != want {
		t.Fatalf("got %+v", got)
	}
}
