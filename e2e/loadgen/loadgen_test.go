package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// versions answers as v1, v2, v1, ... and fails every fifth request.
func versions(t *testing.T) (*httptest.Server, func() map[string]bool) {
	var n atomic.Int64
	var mu sync.Mutex
	users := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		mu.Lock()
		users[r.Header.Get(UserHeader)] = true
		mu.Unlock()
		if r.Host != "fraud.ml" {
			http.Error(w, "wrong host "+r.Host, http.StatusBadRequest)
			return
		}
		w.Header().Set(VersionHeader, map[bool]string{true: "v1", false: "v2"}[i%2 == 1])
		if i%5 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() map[string]bool { mu.Lock(); defer mu.Unlock(); return users }
}

func TestStopsAtMaxRequests(t *testing.T) {
	srv, users := versions(t)
	rep, err := Run(context.Background(), Config{URL: srv.URL + "/v2/models/fraud/infer", Host: "fraud.ml", Rate: 2000, MaxRequests: 100, Users: 7, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 100 || rep.Completed != 100 {
		t.Fatalf("sent %d completed %d, want 100 each", rep.Sent, rep.Completed)
	}
	if rep.ByVersion["v1"] != 50 || rep.ByVersion["v2"] != 50 || rep.ByCode[500] != 20 || rep.ByCode[200] != 80 {
		t.Errorf("report %s codes %v, want 50/50 and 20 errors", rep, rep.ByCode)
	}
	if rep.Errors("") != 20 || rep.Errors("v1")+rep.Errors("v2") != 20 || rep.Share("v1") != 0.5 {
		t.Errorf("errors %d (v1 %d, v2 %d), share %v", rep.Errors(""), rep.Errors("v1"), rep.Errors("v2"), rep.Share("v1"))
	}
	if u := users(); len(u) > 7 || len(u) < 2 || !u["user-0"] && !u["user-6"] {
		t.Errorf("user IDs %v, want draws from a pool of 7", u)
	}
}

func TestStopsAtDurationOnTheClock(t *testing.T) {
	srv, _ := versions(t)
	fc := clocktesting.NewFakeClock(time.Unix(100, 0))
	g, err := Start(context.Background(), Config{URL: srv.URL, Host: "fraud.ml", Rate: 10, Duration: time.Second, Clock: fc, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case <-g.Done():
			rep := g.Snapshot()
			// Due at 0.0s, 0.1s, ... 0.9s: ten, none at or after 1s.
			if rep.Sent != 10 || rep.Completed != 10 {
				t.Fatalf("sent %d completed %d, want 10 in one second at 10/s", rep.Sent, rep.Completed)
			}
			return
		case <-deadline:
			t.Fatalf("run did not stop; report %s", g.Snapshot())
		case <-time.After(time.Millisecond):
			if fc.HasWaiters() {
				fc.Step(10 * time.Millisecond)
			}
		}
	}
}

func TestStopEndsEarlyAndSubWindows(t *testing.T) {
	srv, _ := versions(t)
	g, err := Start(context.Background(), Config{URL: srv.URL, Host: "fraud.ml", Rate: 200, Duration: time.Hour, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for g.Snapshot().Completed < 10 {
		time.Sleep(5 * time.Millisecond)
	}
	first := g.Snapshot()
	for g.Snapshot().Completed < first.Completed+10 {
		time.Sleep(5 * time.Millisecond)
	}
	final := g.Stop()
	if final.Sent >= 200*3600 || final.Completed != final.Sent {
		t.Fatalf("stopped run: %s", final)
	}
	w := final.Sub(first)
	// Every answer is counted under some version; a request cut off by Stop
	// has none and counts under "none".
	byVersion := 0
	for _, n := range w.ByVersion {
		byVersion += int(n)
	}
	if w.Completed != final.Completed-first.Completed || int64(byVersion) != int64(w.Completed) {
		t.Errorf("window %+v does not add up against %s and %s", w, first, final)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]struct {
		cfg  Config
		want string
	}{
		"remote host":          {Config{URL: "http://example.com/", Rate: 1, MaxRequests: 1}, "loopback"},
		"private ip":           {Config{URL: "http://10.0.0.1:80/", Rate: 1, MaxRequests: 1}, "loopback"},
		"no scheme":            {Config{URL: "127.0.0.1:80", Rate: 1, MaxRequests: 1}, "http://"},
		"no bound":             {Config{URL: "http://127.0.0.1:1/", Rate: 1}, "MaxRequests or Duration"},
		"zero rate":            {Config{URL: "http://127.0.0.1:1/", MaxRequests: 1}, "Rate"},
		"negative pool":        {Config{URL: "http://127.0.0.1:1/", Rate: 1, MaxRequests: 1, Users: -1}, "Users"},
		"huge pool":            {Config{URL: "http://127.0.0.1:1/", Rate: 1, MaxRequests: 1, Users: MaxUsers + 1}, "Users"},
		"group without header": {Config{URL: "http://127.0.0.1:1/", Rate: 1, MaxRequests: 1, Group: func(int) string { return "v1" }}, "GroupHeader"},
		"header without group": {Config{URL: "http://127.0.0.1:1/", Rate: 1, MaxRequests: 1, GroupHeader: "x-user-group"}, "Group"},
		"shared jar":           {Config{URL: "http://127.0.0.1:1/", Rate: 1, MaxRequests: 1, Cookies: true, Client: &http.Client{Jar: sharedJar(t)}}, "Client.Jar"},
	}
	for name, tc := range cases {
		if _, err := Start(context.Background(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, tc.want)
		}
	}
}

func TestTransportErrorsAreCounted(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	rep, err := Run(context.Background(), Config{URL: url, Rate: 1000, MaxRequests: 5})
	if err != nil {
		t.Fatal(err)
	}
	if rep.TransportErrors != 5 || rep.ByVersion[NoVersion] != 5 || rep.Errors("") != 5 {
		t.Errorf("report %s transport errors %d, want 5 unanswered", rep, rep.TransportErrors)
	}
}
