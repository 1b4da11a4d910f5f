package loadgate

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/controller/gates"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
)

// The hook drives the candidate the payload names, and only it, and
// judges what it answered.
func TestLoadGate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	servers := map[string]string{}
	for v, errs := range map[string]float64{"v2": 0, "v3": 0.3} {
		s, err := modelserver.Start(ctx, modelserver.Config{Model: "fraud", Version: v, Seed: 7,
			Behavior: modelserver.Behavior{ErrorRate: errs, Latency: modelserver.Latency{Median: time.Millisecond, P99: 3 * time.Millisecond}}}, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		servers[v] = s.URL + "/v2/models/fraud/infer"
	}
	hook := New(Config{Target: func(p gates.Payload) (string, error) { return servers[p.Candidate], nil },
		Rate: 100, Duration: time.Second, MaxErrorRate: 0.05, MaxP99: time.Second})
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	for v, want := range map[string]string{"v2": "pass", "v3": "fail"} {
		body, _ := json.Marshal(gates.Payload{Candidate: v, Gate: "load-test"})
		resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var a Answer
		_ = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if a.Verdict != want || a.Version != v || a.Requests < 80 || !strings.Contains(a.Reason, v+" answered") {
			t.Errorf("%s: %+v, want verdict %s after about 100 requests", v, a, want)
		}
	}
	if n := len(hook.Calls()); n != 2 {
		t.Fatalf("%d calls recorded", n)
	}
	if resp, _ := http.Post(srv.URL, "application/json", strings.NewReader(`{}`)); resp.StatusCode != 400 {
		t.Fatalf("a body that is no payload: %d", resp.StatusCode)
	}
}
