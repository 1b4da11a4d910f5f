package docs

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/fulcrum-ml/fulcrum/admin"
	"github.com/fulcrum-ml/fulcrum/admin/auth"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

type nobody struct{}

func (nobody) AuthenticateToken(context.Context, string) (auth.User, bool, error) {
	return auth.User{}, false, nil
}

func (nobody) Authorize(context.Context, auth.User, auth.Attributes) (auth.Decision, error) {
	return auth.Decision{}, nil
}

// routerRoutes are the admin API's routes as chi.Walk finds them.
func routerRoutes(t *testing.T) []admin.Route {
	t.Helper()
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	srv, err := admin.NewServer(admin.Config{
		Client:        fake.NewClientBuilder().WithScheme(s).Build(),
		Informers:     &informertest.FakeInformers{Scheme: s},
		Authenticator: nobody{},
		Authorizer:    nobody{},
	})
	if err != nil {
		t.Fatal(err)
	}
	routes, err := srv.Routes()
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) == 0 {
		t.Fatal("the router has no routes")
	}
	return routes
}

var docRoute = regexp.MustCompile(`^([A-Z]+) (/[^\s?\[]*)`)

// TestRouteTables compares every route table (first column "method and
// path") with the router, both ways: each row is a route the router serves,
// and each route the router serves is a row.
func TestRouteTables(t *testing.T) {
	routes := routerRoutes(t)
	served := map[string]bool{}
	for _, r := range routes {
		served[r.String()] = true
	}
	documented := map[string]string{} // route → where
	for _, d := range parseDocs(t) {
		for _, tb := range d.tables {
			if tb.column("method and path") != 0 {
				continue
			}
			for _, r := range tb.rows {
				spans := codeSpans(r.cells[0])
				m := docRoute.FindStringSubmatch(first(spans))
				if len(spans) != 1 || m == nil {
					t.Errorf("%s: one `METHOD /path` per row (an optional [?query] after the path), found %q", tb.where(r.line), r.cells[0])
					continue
				}
				route := m[1] + " " + m[2]
				if prev, dup := documented[route]; dup {
					t.Errorf("%s: %s is already in the table at %s", tb.where(r.line), route, prev)
				}
				documented[route] = tb.where(r.line)
				if !served[route] {
					t.Errorf("%s: the router does not serve %s", tb.where(r.line), route)
				}
			}
		}
	}
	if len(documented) == 0 {
		t.Fatal("no route table found (first column \"method and path\")")
	}
	for _, r := range routes {
		if _, ok := documented[r.String()]; !ok {
			t.Errorf("the router serves %s, which no route table lists", r)
		}
	}
}

var apiPath = regexp.MustCompile(`/api/v1(?:/[A-Za-z0-9_{}.:-]+)*`)

// TestAPIPathsInProse checks every /api/v1 path anywhere in the docs, in
// prose, examples or code: each must match a route the router serves
// (concrete values such as /namespaces/ml/ fill in parameters).
func TestAPIPathsInProse(t *testing.T) {
	var patterns []*regexp.Regexp
	for _, r := range routerRoutes(t) {
		patterns = append(patterns, routePattern(r.Path))
	}
	for _, d := range parseDocs(t) {
		for i, line := range strings.Split(d.text, "\n") {
			for _, p := range apiPath.FindAllString(line, -1) {
				if p == "/api/v1" {
					continue
				}
				if !slices.ContainsFunc(patterns, func(re *regexp.Regexp) bool { return re.MatchString(p) }) {
					t.Errorf("%s:%d: %s is no route of the admin API", d.path, i+1, p)
				}
			}
		}
	}
}

// routePattern turns /a/{x}/b into ^/a/[^/]+/b$.
func routePattern(path string) *regexp.Regexp {
	var b strings.Builder
	b.WriteByte('^')
	for _, seg := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		b.WriteByte('/')
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			b.WriteString(`[^/]+`)
		} else {
			b.WriteString(regexp.QuoteMeta(seg))
		}
	}
	b.WriteByte('$')
	return regexp.MustCompile(b.String())
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
