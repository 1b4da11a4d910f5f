package admin

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// TestRateLimitByUserAndClient: behind an ingress every request comes from
// the proxy's address; one noisy user must not get everyone 429s, and no
// client picks its own bucket with a header (issue 14, finding 6).
func TestRateLimitByUserAndClient(t *testing.T) {
	const proxy = "10.1.0.5"
	tune := func(c *Config) {
		c.RateLimit, c.RateBurst = 1, 2
		c.ClientRateLimit, c.ClientRateBurst = 1, 3
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
		c.Authenticator = fakeAuthn{
			viewerToken: {Name: "vera", Groups: []string{"viewers"}},
			engToken:    {Name: "alice", Groups: []string{"ml-engineers"}},
			"bob-token": {Name: "bob", Groups: []string{"viewers"}},
		}
	}
	f := newFixture(t, nil, tune, newRollout("ml", "fraud", v1alpha1.PhaseProgressing))
	get := func(token, peer string, hdr ...string) int {
		t.Helper()
		r := httptest.NewRequest("GET", fraud, nil)
		r.RemoteAddr = peer + ":40000"
		r.Header.Set("Authorization", "Bearer "+token)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		f.srv.Handler().ServeHTTP(rec, r)
		return rec.Code
	}
	// Vera, through the ingress from her laptop, uses up her own budget...
	for i, want := range []int{200, 200, 429} {
		if got := get(viewerToken, proxy, "X-Forwarded-For", "192.0.2.10"); got != want {
			t.Fatalf("vera's request %d: %d, want %d", i, got, want)
		}
	}
	// ...and Bob and Alice, through the same ingress, are not held back.
	if got := get("bob-token", proxy, "X-Forwarded-For", "192.0.2.20"); got != 200 {
		t.Fatalf("bob behind the same proxy: %d, want 200", got)
	}
	if got := get(engToken, proxy, "X-Real-IP", "192.0.2.30"); got != 200 {
		t.Fatalf("alice behind the same proxy: %d, want 200", got)
	}
	// Vera from another address is still vera.
	if got := get(viewerToken, proxy, "X-Forwarded-For", "192.0.2.11"); got != 429 {
		t.Fatalf("vera from another address: %d, want 429", got)
	}
	// A client that is not a trusted proxy cannot choose its address: its
	// made-up X-Forwarded-For is ignored, and its own address runs out.
	codes := []int{}
	for i := range 4 {
		codes = append(codes, get("made-up-"+string(rune('a'+i)), "198.51.100.7", "X-Forwarded-For", "203.0.113."+string(rune('1'+i))))
	}
	if codes[3] != 429 {
		t.Fatalf("spoofed X-Forwarded-For from an untrusted peer got fresh buckets: %v", codes)
	}
	// A client cannot prepend addresses: the right-most untrusted hop counts.
	if got := get("bob-token", proxy, "X-Forwarded-For", "203.0.113.99, 192.0.2.10"); got != 429 {
		t.Fatalf("a prepended hop escaped vera's address bucket: %d", got)
	}
}

// TestStreamsPerUser: one user may keep a bounded number of event streams
// open (issue 14, finding 6).
func TestStreamsPerUser(t *testing.T) {
	f := newFixture(t, nil, func(c *Config) { c.MaxStreamsPerUser = 1 }, newRollout("ml", "fraud", v1alpha1.PhaseProgressing))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.url+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	first, err := http.DefaultClient.Do(req)
	if err != nil || first.StatusCode != 200 {
		t.Fatalf("first stream: %v %v", first, err)
	}
	// Bounded: on a server without the cap this request is a stream.
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	req3, _ := http.NewRequestWithContext(sctx, "GET", f.url+fraud+"/events", nil)
	req3.Header.Set("Authorization", "Bearer "+viewerToken)
	second, err := http.DefaultClient.Do(req3)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(second.Body)
	second.Body.Close()
	scancel()
	if second.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "user vera already has 1 event streams open, the most one user may") {
		t.Fatalf("second stream: %d %s", second.StatusCode, body)
	}
	// Another user is not affected.
	req2, _ := http.NewRequestWithContext(ctx, "GET", f.url+"/api/v1/events", nil)
	req2.Header.Set("Authorization", "Bearer "+engToken)
	other, err := http.DefaultClient.Do(req2)
	if err != nil || other.StatusCode != 200 {
		t.Fatalf("alice's stream: %v %v", other, err)
	}
	cancel()
	first.Body.Close()
	other.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx2, cancel2 := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx2, "GET", f.url+"/api/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+viewerToken)
		res, err := http.DefaultClient.Do(req)
		code := 0
		if err == nil {
			code = res.StatusCode
			res.Body.Close()
		}
		cancel2()
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slot of a closed stream was not given back: %d %v", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
