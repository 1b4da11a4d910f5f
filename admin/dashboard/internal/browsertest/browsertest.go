// Package browsertest drives headless Chromium from Go tests through
// chromedp: find the browser (or skip), start it with a throw-away profile,
// run steps, evaluate JavaScript, poll a predicate and save screenshots.
// It is shared by the dashboard's stand-in browser test and its end-to-end
// test against the real admin API; only tests import it.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// StepTimeout bounds one browser step (a click, an evaluation, a wait).
const StepTimeout = 20 * time.Second

// FindChromium returns the browser to drive ($FULCRUM_CHROMIUM, else the
// first of chromium, chromium-browser, google-chrome, chrome on PATH), or
// skips the test with a clear message when there is none.
func FindChromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FULCRUM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found: install it with 'apt-get install -y chromium' (or set FULCRUM_CHROMIUM) to run the browser test")
	return ""
}

// NewBrowser starts headless Chromium with a fresh profile and a 1280x900
// window and returns a context for one tab; the browser stops when the test
// ends.
func NewBrowser(t testing.TB, bin string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	return ctx
}

// Do runs browser steps, failing the test if they do not finish within
// StepTimeout.
func Do(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// Eval evaluates js in the page (awaiting a promise) and returns its value.
func Eval[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %q: %v", js, err)
	}
	return v
}

// WaitFor polls a JavaScript predicate until it is truthy, failing the test
// with what if it is not within StepTimeout.
func WaitFor(t testing.TB, ctx context.Context, what, js string) {
	t.Helper()
	WaitForWithin(t, ctx, StepTimeout, what, js)
}

// WaitForWithin is WaitFor with its own bound, for waits on something slow
// by design (a controller's next step).
func WaitForWithin(t testing.TB, ctx context.Context, timeout time.Duration, what, js string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("waiting %s for %s (%s): %v", timeout, what, js, err)
	}
}

// Screenshot saves a full-page PNG as dir/name.png and returns its path.
func Screenshot(t testing.TB, ctx context.Context, dir, name string) string {
	t.Helper()
	return SaveShot(t, ctx, dir, name, chromedp.FullScreenshot(100))
}

// ViewportShot saves what fits on the screen, as a phone user first sees it.
func ViewportShot(t testing.TB, ctx context.Context, dir, name string) string {
	t.Helper()
	return SaveShot(t, ctx, dir, name, chromedp.CaptureScreenshot())
}

// SaveShot takes a screenshot with shot and writes it to dir/name.png,
// creating dir.
func SaveShot(t testing.TB, ctx context.Context, dir, name string, shot chromedp.Action[[]byte]) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	png, err := chromedp.Run(c, shot)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	return p
}

// UnlabelledControls is a JavaScript expression listing form controls that
// have no accessible name.
const UnlabelledControls = `[...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
  .map((el) => el.outerHTML.slice(0, 80))`
