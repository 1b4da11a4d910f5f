package loadgen

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"sync"
	"testing"
)

func sharedJar(t *testing.T) http.CookieJar {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return jar
}

// stickyServer assigns a user without an "arm" cookie to v1, v2, v1, ...
// in turn and sets the cookie; a user with one is answered by that arm. It
// also sets a cookie scoped to another path, which must never come back.
type stickyServer struct {
	srv         *httptest.Server
	mu          sync.Mutex
	assignments int
	byUser      map[string]map[string]bool // x-user-id → arms that answered
	leaked      int                        // requests carrying the /elsewhere cookie
}

func newStickyServer(t *testing.T) *stickyServer {
	s := &stickyServer{byUser: map[string]map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, err := r.Cookie("scoped"); err == nil {
			s.leaked++
		}
		arm := ""
		if c, err := r.Cookie("arm"); err == nil {
			arm = c.Value
		} else {
			arm = []string{"v1", "v2"}[s.assignments%2]
			s.assignments++
			http.SetCookie(w, &http.Cookie{Name: "arm", Value: arm, Path: "/", MaxAge: 3600})
			http.SetCookie(w, &http.Cookie{Name: "scoped", Value: "1", Path: "/elsewhere"})
		}
		user := r.Header.Get(UserHeader)
		if s.byUser[user] == nil {
			s.byUser[user] = map[string]bool{}
		}
		s.byUser[user][arm] = true
		w.Header().Set(VersionHeader, arm)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func TestCookiesKeepUsersOnTheirArm(t *testing.T) {
	s := newStickyServer(t)
	g, err := Start(context.Background(), Config{URL: s.srv.URL + "/v2/models/fraud/infer", Rate: 2000, MaxRequests: 600, Users: 50, Seed: 1, Cookies: true})
	if err != nil {
		t.Fatal(err)
	}
	rep := g.Wait()
	if rep.Completed != 600 || rep.Errors("") != 0 {
		t.Fatalf("report %s: want 600 answers without errors", rep)
	}
	users := g.UserVersions()
	if rep.Crossed != 0 {
		t.Errorf("%d users crossed arms with cookies kept: %v", rep.Crossed, users)
	}
	// One assignment per user: no user sent a second request before the
	// answer to its first set the cookie.
	s.mu.Lock()
	assignments, leaked, seen := s.assignments, s.leaked, len(s.byUser)
	s.mu.Unlock()
	if assignments != len(users) || seen != len(users) {
		t.Errorf("server assigned %d times and saw %d users; generator reports %d users", assignments, seen, len(users))
	}
	if leaked != 0 {
		t.Errorf("%d requests carried a cookie set for Path=/elsewhere", leaked)
	}
	if rep.UsersByVersion["v1"] == 0 || rep.UsersByVersion["v2"] == 0 || rep.UsersByVersion["v1"]+rep.UsersByVersion["v2"] != len(users) {
		t.Errorf("users by version %v do not add up to %d users", rep.UsersByVersion, len(users))
	}
	for u, vs := range users {
		if len(vs) != 1 {
			t.Errorf("%s answered by %v", u, vs)
		}
	}
}

// Without cookies the same server re-assigns every request, so users cross:
// the assertion above can fail.
func TestWithoutCookiesUsersCross(t *testing.T) {
	s := newStickyServer(t)
	g, err := Start(context.Background(), Config{URL: s.srv.URL + "/", Rate: 2000, MaxRequests: 300, Users: 20, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep := g.Wait()
	crossed := 0
	for _, vs := range g.UserVersions() {
		if len(vs) > 1 {
			crossed++
		}
	}
	if rep.Crossed == 0 || rep.Crossed != crossed {
		t.Fatalf("Crossed = %d, users with two versions = %d; want the same, above 0", rep.Crossed, crossed)
	}
	if w := rep.Sub(newReport()); w.Crossed != rep.Crossed || w.UsersByVersion["v1"] != rep.UsersByVersion["v1"] {
		t.Errorf("window from the start %+v differs from the report %+v", w, rep)
	}
}

func TestGroupHeaderIsFixedPerUser(t *testing.T) {
	groupOf, err := Shares(map[string]float64{"v1": 1, "v2": 3})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]map[string]bool{} // user → group header values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		grp := r.Header.Get("x-user-group")
		mu.Lock()
		u := r.Header.Get(UserHeader)
		if seen[u] == nil {
			seen[u] = map[string]bool{}
		}
		seen[u][grp] = true
		mu.Unlock()
		w.Header().Set(VersionHeader, grp)
	}))
	t.Cleanup(srv.Close)
	g, err := Start(context.Background(), Config{URL: srv.URL, Rate: 2000, MaxRequests: 400, Users: 40, Seed: 5, GroupHeader: "x-user-group", Group: groupOf})
	if err != nil {
		t.Fatal(err)
	}
	rep := g.Wait()
	if rep.Crossed != 0 || rep.ByVersion[NoVersion] != 0 {
		t.Fatalf("report %s crossed %d: want every answer from the user's group", rep, rep.Crossed)
	}
	for u, vs := range g.UserVersions() {
		var i int
		if _, err := fmt.Sscanf(u, "user-%d", &i); err != nil {
			t.Fatal(err)
		}
		if len(vs) != 1 || vs[0] != groupOf(i) || len(seen[u]) != 1 {
			t.Errorf("%s (group %s) answered by %v, sent groups %v", u, groupOf(i), vs, seen[u])
		}
	}
}

func TestSharesSplitUsers(t *testing.T) {
	groupOf, err := Shares(map[string]float64{"a": 0.25, "b": 0.75, "never": 0})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	count := map[string]int{}
	for i := range n {
		count[groupOf(i)]++
	}
	// Four binomial standard deviations; the hash makes it reproducible.
	sd := math.Sqrt(n * 0.25 * 0.75)
	if math.Abs(float64(count["a"])-n*0.25) > 4*sd || count["never"] != 0 || count["a"]+count["b"] != n {
		t.Errorf("groups of %d users: %v, want a = %.0f ± %.0f and no 'never'", n, count, n*0.25, 4*sd)
	}
	if first, again := groupOf(7), groupOf(7); first != again {
		t.Errorf("user 7's group changed between calls: %s, then %s", first, again)
	}
	for name, bad := range map[string]map[string]float64{
		"negative": {"a": -1, "b": 1},
		"NaN":      {"a": math.NaN()},
		"all zero": {"a": 0},
		"empty":    {},
		"unnamed":  {"": 1},
	} {
		if _, err := Shares(bad); err == nil {
			t.Errorf("%s shares %v accepted", name, bad)
		}
	}
}
