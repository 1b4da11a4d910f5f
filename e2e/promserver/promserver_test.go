package promserver

import (
	"context"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartServesQueriesAndStopLeavesNoProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	srv, err := Start(context.Background(), Config{ScrapeInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + "/api/v1/query?query=vector(42)")
	if err != nil {
		srv.Stop()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"42"`) {
		t.Errorf("query vector(42) answered %s", body)
	}
	pid := srv.Pid()
	srv.Stop()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("prometheus pid %d still alive after Stop", pid)
	}
}
