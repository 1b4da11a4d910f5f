package admin

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
)

// Route is one method and path pattern the server answers, as chi writes
// it: /api/v1/namespaces/{namespace}/rollouts/{name}.
type Route struct {
	Method string
	Path   string
}

func (r Route) String() string { return r.Method + " " + r.Path }

// alternation is a path parameter whose pattern is a list of literals, such
// as {action:start|split|promote}.
var alternation = regexp.MustCompile(`\{[a-zA-Z_]+:([a-zA-Z0-9_|-]+)\}`)

// Routes lists every route of the router, sorted by path then method, as
// found by chi.Walk. A parameter whose pattern is a list of literals
// ({action:start|split}) becomes one route per literal, which is how the
// OpenAPI document and docs/admin-api.md list them. The dashboard mount
// (/* when Config.UI is set) is left out: it is not an API route.
func (s *Server) Routes() ([]Route, error) {
	mux, ok := s.handler.(chi.Routes)
	if !ok {
		return nil, fmt.Errorf("admin: the handler is a %T, not a chi router", s.handler)
	}
	var out []Route
	err := chi.Walk(mux, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if route == "/*" {
			return nil
		}
		for _, p := range expand(route) {
			out = append(out, Route{Method: method, Path: p})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("admin: walk the routes: %w", err)
	}
	slices.SortFunc(out, func(a, b Route) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return slices.Compact(out), nil
}

// expand replaces the first alternation in route with each of its literals,
// recursively.
func expand(route string) []string {
	loc := alternation.FindStringSubmatchIndex(route)
	if loc == nil {
		return []string{route}
	}
	var out []string
	for _, lit := range strings.Split(route[loc[2]:loc[3]], "|") {
		out = append(out, expand(route[:loc[0]]+lit+route[loc[1]:])...)
	}
	return out
}
