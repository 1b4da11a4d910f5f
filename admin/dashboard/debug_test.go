package dashboard_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestDebugPage(t *testing.T) {
	si := newStandIn(time.Now())
	srv := httptest.NewServer(si.handler())
	defer srv.Close()
	ctx := newBrowser(t, findChromium(t))
	do(t, ctx, chromedp.Navigate(srv.URL+"/"))
	time.Sleep(time.Second)
	for _, m := range []string{"api", "format", "split", "chart", "store", "list", "actions", "rollout", "app"} { t.Log(m, eval[string](t, ctx, "import('/js/"+m+".js').then(() => 'ok', (e) => String(e))")) }
}
