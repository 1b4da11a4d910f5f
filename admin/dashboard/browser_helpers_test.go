package dashboard_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fulcrum-ml/fulcrum/admin/dashboard/internal/browsertest"
)

// The browser helpers live in internal/browsertest, shared with the
// end-to-end test in e2etest; these short names keep the test readable.

func findChromium(t *testing.T) string { t.Helper(); return browsertest.FindChromium(t) }

func newBrowser(t *testing.T, bin string) context.Context {
	t.Helper()
	return browsertest.NewBrowser(t, bin)
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	browsertest.Do(t, ctx, steps...)
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	return browsertest.Eval[T](t, ctx, js)
}

func waitFor(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	browsertest.WaitFor(t, ctx, what, js)
}

// screenshot saves a full-page PNG under e2e/artifacts/dashboard.
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	return browsertest.Screenshot(t, ctx, artifactDir(t), name)
}

// viewportShot saves what fits on the screen, as a phone user first sees it.
func viewportShot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	return browsertest.ViewportShot(t, ctx, artifactDir(t), name)
}

func artifactDir(t *testing.T) string {
	return filepath.Join(repoRoot(t), "e2e", "artifacts", "dashboard")
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

const unlabelledControls = browsertest.UnlabelledControls
