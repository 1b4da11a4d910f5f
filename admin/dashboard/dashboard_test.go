package dashboard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/fulcrum-ml/fulcrum/admin/dashboard"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandlerServesAssets(t *testing.T) {
	h := dashboard.Handler()
	cases := map[string]struct {
		path, method, wantType string
		wantStatus             int
		wantBody               string
	}{
		"root is the page":      {path: "/", wantStatus: 200, wantType: "text/html; charset=utf-8", wantBody: `<script type="module" src="js/app.js">`},
		"index by name":         {path: "/index.html", wantStatus: 200, wantType: "text/html; charset=utf-8"},
		"module script":         {path: "/js/app.js", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantBody: "import"},
		"stylesheet":            {path: "/app.css", wantStatus: 200, wantType: "text/css; charset=utf-8"},
		"icon":                  {path: "/favicon.svg", wantStatus: 200, wantType: "image/svg+xml"},
		"unknown file":          {path: "/nope.js", wantStatus: 404},
		"no escape from static": {path: "/../dashboard.go", wantStatus: 404},
		"head":                  {path: "/app.css", method: http.MethodHead, wantStatus: 200},
		"post refused":          {path: "/", method: http.MethodPost, wantStatus: 405},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			resp := get(t, h, method, tc.path, nil)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantType != "" && resp.Header.Get("Content-Type") != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", resp.Header.Get("Content-Type"), tc.wantType)
			}
			if !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("body lacks %q", tc.wantBody)
			}
			if resp.StatusCode == 200 {
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
					t.Errorf("Content-Security-Policy = %q, want same-origin scripts only", csp)
				}
				if method == http.MethodHead && len(body) != 0 {
					t.Errorf("HEAD returned a body of %d bytes", len(body))
				}
			}
		})
	}
}

func TestHandlerRevalidatesByETag(t *testing.T) {
	h := dashboard.Handler()
	first := get(t, h, http.MethodGet, "/js/app.js", nil)
	etag := first.Header.Get("ETag")
	if etag == "" || first.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q: want an ETag and no-cache", etag, first.Header.Get("Cache-Control"))
	}
	if got := get(t, h, http.MethodGet, "/js/app.js", map[string]string{"If-None-Match": etag}); got.StatusCode != http.StatusNotModified {
		t.Errorf("with a matching If-None-Match: status %d, want 304", got.StatusCode)
	}
	if other := get(t, h, http.MethodGet, "/app.css", nil).Header.Get("ETag"); other == etag {
		t.Error("two different files share an ETag")
	}
}

// The page must work offline and under the strict policy: nothing is loaded
// from another origin and there is no inline script or style attribute.
func TestAssetsAreSelfContained(t *testing.T) {
	h := dashboard.Handler()
	external := regexp.MustCompile(`(?i)(src|href)=["']?(https?:)?//|url\(\s*['"]?https?:|import[^;]*['"]https?:`)
	inline := regexp.MustCompile(`(?i)<script(?:[^>]*)>[^<]+</script>|\sstyle=|\son[a-z]+=`)
	for _, p := range []string{"/", "/app.css", "/js/api.js", "/js/app.js", "/js/actions.js", "/js/chart.js", "/js/experiment.js", "/js/format.js", "/js/list.js", "/js/rollout.js", "/js/split.js", "/js/store.js"} {
		resp := get(t, h, http.MethodGet, p, nil)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", p, resp.StatusCode)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		if m := external.Find(body); m != nil {
			t.Errorf("%s loads from another origin: %q", p, m)
		}
		if p == "/" {
			if m := inline.Find(body); m != nil {
				t.Errorf("index.html has inline code the CSP would block: %q", m)
			}
		}
	}
}
