package dataplane

import (
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"testing"
)

// headerOpsVS has the same route- and destination-level operations twice:
// on a route with one destination and on a weighted route (v1 at 100, v2
// at 0), where Envoy orders them differently.
const headerOpsVS = `
metadata: {name: fraud}
spec:
  hosts: [fraud]
  http:
  - name: single
    match: [{headers: {x-case: {exact: single}}}]
    headers: &routeOps
      request:
        set: {x-both: route, x-route: r}
        add: {x-add: route}
        remove: [x-gone, x-dest-only]
      response:
        set: {x-both: route}
        remove: [x-upstream]
    route:
    - destination: {host: fraud, subset: v1}
      headers: &destOps
        request:
          set: {x-both: dest, x-dest-only: d}
          add: {x-add: dest}
          remove: [x-route]
        response:
          set: {x-both: dest, set-cookie: "arm=v1; Path=/"}
          add: {x-dest: "1"}
  - name: weighted
    headers: *routeOps
    route:
    - {destination: {host: fraud, subset: v1}, weight: 100, headers: *destOps}
    - {destination: {host: fraud, subset: v2}, weight: 0}
`

func TestHeaderOperationsOrder(t *testing.T) {
	tbl := Build(fraudWorld(t, headerOpsVS))
	if len(tbl.Problems) != 0 {
		t.Fatalf("problems: %v", tbl.Problems)
	}
	type want struct {
		request, response map[string][]string // nil slice: header absent
	}
	cases := map[string]struct {
		caseHeader string
		want       want
	}{
		// One destination: one parser, every remove first, destination
		// sets after the route's.
		"single destination: destination wins": {"single", want{
			request: map[string][]string{
				"X-Both": {"dest"}, "X-Route": {"r"}, "X-Add": {"route", "dest"},
				"X-Gone": nil, "X-Dest-Only": {"d"}, "X-Keep": {"k"},
			},
			response: map[string][]string{
				"X-Both": {"dest"}, "X-Upstream": nil, "Set-Cookie": {"arm=v1; Path=/"}, "X-Dest": {"1"}, "X-Other": {"o"},
			},
		}},
		// Weighted: the cluster's parser, then the route's, so the route's
		// set wins and its remove takes what the destination set.
		"weighted destinations: route wins": {"", want{
			request: map[string][]string{
				"X-Both": {"route"}, "X-Route": {"r"}, "X-Add": {"dest", "route"},
				"X-Gone": nil, "X-Dest-Only": nil, "X-Keep": {"k"},
			},
			response: map[string][]string{
				"X-Both": {"route"}, "X-Upstream": nil, "Set-Cookie": {"arm=v1; Path=/"}, "X-Dest": {"1"}, "X-Other": {"o"},
			},
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := tbl.Route(req("fraud", "/", "x-case", tc.caseHeader), rand.New(rand.NewPCG(1, 2)))
			if d.Headers == nil || d.Target.Subset != "v1" {
				t.Fatalf("decision %+v: want v1 with header operations", d)
			}
			in := http.Header{"X-Gone": {"g"}, "X-Route": {"incoming"}, "X-Keep": {"k"}, "X-Both": {"incoming"}}
			d.Headers.ApplyRequest(in)
			assertHeaders(t, "request", in, tc.want.request)
			out := http.Header{"X-Upstream": {"u"}, "X-Both": {"upstream"}, "X-Other": {"o"}}
			d.Headers.ApplyResponse(out)
			assertHeaders(t, "response", out, tc.want.response)
		})
	}
	if d := tbl.Route(req("fraud", "/"), rand.New(rand.NewPCG(1, 2))); d.Route != "weighted" {
		t.Fatalf("route %q, want weighted", d.Route)
	}
}

func assertHeaders(t *testing.T, what string, got http.Header, want map[string][]string) {
	t.Helper()
	for k, vs := range want {
		if !slices.Equal(got.Values(k), vs) {
			t.Errorf("%s header %s = %q, want %q", what, k, got.Values(k), vs)
		}
	}
}

func TestHeaderOperationsIgnoreAuthority(t *testing.T) {
	tbl := Build(fraudWorld(t, `
metadata: {name: fraud}
spec:
  hosts: [fraud]
  http:
  - headers: {request: {set: {host: other, x-a: "1"}}}
    route: [{destination: {host: fraud, subset: v1}}]
`))
	if len(tbl.Problems) != 1 || !strings.Contains(tbl.Problems[0], "headers.request.set[host]") {
		t.Fatalf("problems %v: want one naming headers.request.set[host]", tbl.Problems)
	}
	d := tbl.Route(req("fraud", "/"), rand.New(rand.NewPCG(1, 2)))
	h := http.Header{}
	d.Headers.ApplyRequest(h)
	if h.Get("x-a") != "1" || h.Get("host") != "" {
		t.Errorf("request headers %v: want x-a set and no Host header", h)
	}
}

// experimentVS is the sticky A/B experiment the controller writes.
const experimentVS = `
metadata: {name: fraud}
spec:
  hosts: [fraud]
  http:
  - name: fulcrum-exp-fraud-v1
    match: [{headers: {cookie: {regex: "^(.*;\\s*)?fulcrum-exp-fraud=v1(;.*)?$"}}}]
    route: [{destination: {host: fraud, subset: v1}}]
  - name: fulcrum-exp-fraud-v2
    match: [{headers: {cookie: {regex: "^(.*;\\s*)?fulcrum-exp-fraud=v2(;.*)?$"}}}]
    route: [{destination: {host: fraud, subset: v2}}]
  - name: fulcrum-exp-fraud-group-v2
    match: [{headers: {x-user-group: {exact: v2}}}]
    route: [{destination: {host: fraud, subset: v2}}]
  - name: predict
    route:
    - destination: {host: fraud, subset: v1}
      weight: 50
      headers: {response: {set: {set-cookie: "fulcrum-exp-fraud=v1; Path=/; Max-Age=604800"}}}
    - destination: {host: fraud, subset: v2}
      weight: 50
      headers: {response: {set: {set-cookie: "fulcrum-exp-fraud=v2; Path=/; Max-Age=604800"}}}
`

func TestCookieRegexMatchesAsEnvoy(t *testing.T) {
	tbl := Build(fraudWorld(t, experimentVS))
	if len(tbl.Problems) != 0 {
		t.Fatalf("problems: %v", tbl.Problems)
	}
	cases := map[string]struct {
		cookies []string // one Cookie header line each
		route   string
	}{
		"alone":                       {[]string{"fulcrum-exp-fraud=v2"}, "fulcrum-exp-fraud-v2"},
		"among others":                {[]string{"session=abc; fulcrum-exp-fraud=v1; theme=dark"}, "fulcrum-exp-fraud-v1"},
		"last, no space":              {[]string{"session=abc;fulcrum-exp-fraud=v2"}, "fulcrum-exp-fraud-v2"},
		"on its own Cookie line":      {[]string{"session=abc", "fulcrum-exp-fraud=v1"}, "fulcrum-exp-fraud-v1"},
		"first of two Cookie lines":   {[]string{"fulcrum-exp-fraud=v2", "session=abc"}, "fulcrum-exp-fraud-v2"},
		"another arm's prefix":        {[]string{"fulcrum-exp-fraud=v10"}, "predict"},
		"another cookie's suffix":     {[]string{"xfulcrum-exp-fraud=v1"}, "predict"},
		"another experiment's cookie": {[]string{"fulcrum-exp-other=v1"}, "predict"},
		"no cookie":                   {nil, "predict"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := req("fraud", "/v2/models/fraud/infer")
			for _, c := range tc.cookies {
				r.Header.Add("Cookie", c)
			}
			if d := tbl.Route(r, rand.New(rand.NewPCG(1, 2))); d.Route != tc.route {
				t.Errorf("cookies %q went to route %q, want %q", tc.cookies, d.Route, tc.route)
			}
		})
	}
}

func TestStickyExperimentThroughProxy(t *testing.T) {
	v1, v2 := newBackend(t, "v1", 200), newBackend(t, "v2", 200)
	_, front, _ := newTestProxy(t, worldWith(t, experimentVS, map[string]*backend{"v1": v1, "v2": v2}))
	url := front.URL + "/v2/models/fraud/infer"
	send := func(client *http.Client, header http.Header) *http.Response {
		t.Helper()
		r, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"inputs":[]}`))
		r.Host = "fraud"
		for k, vs := range header {
			r.Header[k] = vs
		}
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	t.Run("new users are split by weight and told their arm", func(t *testing.T) {
		const n = 200
		arms := map[string]int{}
		for range n {
			resp := send(http.DefaultClient, nil)
			v := resp.Header.Get("x-model-version")
			want := "fulcrum-exp-fraud=" + v + "; Path=/; Max-Age=604800"
			if got := resp.Header.Values("Set-Cookie"); len(got) != 1 || got[0] != want {
				t.Fatalf("answer from %s set cookies %q, want [%q]", v, got, want)
			}
			arms[v]++
		}
		if arms["v1"] < 60 || arms["v2"] < 60 {
			t.Fatalf("50/50 split of %d new users gave %v", n, arms)
		}
	})

	t.Run("returning users stay on their arm", func(t *testing.T) {
		for _, arm := range []string{"v1", "v2"} {
			for range 20 {
				resp := send(http.DefaultClient, http.Header{"Cookie": {"session=abc; fulcrum-exp-fraud=" + arm}})
				if v := resp.Header.Get("x-model-version"); v != arm {
					t.Fatalf("user with cookie for %s answered by %s", arm, v)
				}
				if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
					t.Fatalf("returning user's route set cookies %q; only the weighted route sets them", c)
				}
			}
		}
		if got := v2.lastRequest(t).Get("Cookie"); got != "session=abc; fulcrum-exp-fraud=v2" {
			t.Errorf("backend received Cookie %q, want the user's cookie unchanged", got)
		}
	})

	t.Run("a browser keeps the arm it was first given", func(t *testing.T) {
		arms := map[string]int{}
		for user := range 10 {
			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar}
			first := send(client, nil).Header.Get("x-model-version")
			arms[first]++
			for range 10 {
				if v := send(client, nil).Header.Get("x-model-version"); v != first {
					t.Fatalf("user %d first answered by %s, later by %s", user, first, v)
				}
			}
		}
		if len(arms) != 2 {
			t.Logf("10 users all landed on one arm (%v); possible but unlikely", arms)
		}
	})

	t.Run("header mode routes on the group header", func(t *testing.T) {
		for range 20 {
			resp := send(http.DefaultClient, http.Header{"X-User-Group": {"v2"}})
			if v := resp.Header.Get("x-model-version"); v != "v2" {
				t.Fatalf("x-user-group v2 answered by %s", v)
			}
		}
	})
}

func TestHeaderOperationsThroughProxy(t *testing.T) {
	v1 := newBackend(t, "v1", 200)
	v1.header = http.Header{"X-Upstream": {"u"}, "X-Other": {"o"}}
	vs := strings.Replace(headerOpsVS, "  - name: weighted\n", `  - name: gone
    match: [{headers: {x-case: {exact: nopods}}}]
    headers: {response: {set: {x-route: r}}}
    route:
    - destination: {host: fraud, subset: v3}
      headers: {response: {set: {set-cookie: "arm=v3"}}}
  - name: weighted
`, 1)
	s := worldWith(t, vs, map[string]*backend{"v1": v1})
	_, front, _ := newTestProxy(t, s)
	do := func(caseHeader string) *http.Response {
		r, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
		r.Host = "fraud"
		r.Header = http.Header{"X-Case": {caseHeader}, "X-Gone": {"g"}, "X-Route": {"incoming"}}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := do("single")
	assertHeaders(t, "upstream request", v1.lastRequest(t), map[string][]string{
		"X-Both": {"dest"}, "X-Route": {"r"}, "X-Add": {"route", "dest"}, "X-Gone": nil, "X-Dest-Only": {"d"},
	})
	assertHeaders(t, "response", resp.Header, map[string][]string{
		"X-Both": {"dest"}, "X-Upstream": nil, "X-Other": {"o"}, "Set-Cookie": {"arm=v1; Path=/"}, "X-Model-Version": {"v1"},
	})
	resp = do("")
	assertHeaders(t, "weighted upstream request", v1.lastRequest(t), map[string][]string{
		"X-Both": {"route"}, "X-Dest-Only": nil, "X-Add": {"dest", "route"},
	})
	assertHeaders(t, "weighted response", resp.Header, map[string][]string{"X-Both": {"route"}, "Set-Cookie": {"arm=v1; Path=/"}})

	// The proxy's own 503 for a destination without pods still carries the
	// route's response headers, as Envoy's local replies do.
	resp = do("nopods")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("x-envoy-response-flags") != FlagNoHealthyUpstream {
		t.Fatalf("got %d %q, want 503 UH", resp.StatusCode, resp.Header.Get("x-envoy-response-flags"))
	}
	assertHeaders(t, "local reply", resp.Header, map[string][]string{"X-Route": {"r"}, "Set-Cookie": {"arm=v3"}})
}
