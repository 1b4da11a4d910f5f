// Package dashboard serves Fulcrum's operator web dashboard: plain HTML, CSS
// and JavaScript embedded in the binary, no build step and no CDN, so it works
// offline. The admin API mounts Handler at "/" of its router; the page talks
// to the admin API under /api/v1 on the same origin (JSON for reads and
// actions, a fetch-streamed server-sent event stream for live updates), with
// the bearer token the user signs in with.
package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// contentSecurityPolicy allows only same-origin scripts, styles and requests:
// the page has no inline script and loads nothing from elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the dashboard: "/" and "/index.html" return the page, the
// other files are served by name. Unknown paths get 404 (the page routes by
// URL fragment, so no fallback to index.html is needed). Every response
// carries a strict Content-Security-Policy; assets are revalidated by ETag
// so an upgraded binary is picked up at once.
func Handler() http.Handler {
	assets, err := load(static)
	if err != nil {
		// The files are compiled in; failing here means the build is broken.
		panic(fmt.Sprintf("dashboard: load embedded assets: %v", err))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "index.html"
		}
		a, ok := assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Set("Content-Type", a.contentType)
		if match := r.Header.Get("If-None-Match"); match != "" && match == a.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Length", fmt.Sprint(len(a.body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(a.body)
		}
	})
}

// load reads every file under static/ into memory, keyed by its path below
// static/, with its content type and a content-hash ETag.
func load(fsys fs.FS) (map[string]asset, error) {
	root, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	out := map[string]asset{}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		if path.Ext(p) == ".js" {
			// Some systems map .js to text/plain; module scripts need this.
			ct = "text/javascript; charset=utf-8"
		}
		sum := sha256.Sum256(body)
		out[p] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return out, err
}
