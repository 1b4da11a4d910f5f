package istio

import (
	"github.com/fulcrum-ml/fulcrum/router"

	"fmt"
	"regexp"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Experiment is what an A/B experiment needs on the mesh besides the arms'
// weights: a user sent to an arm stays on it.
//
// Cookie stickiness: every managed route's destination of an arm sets a
// cookie naming the arm on its answers (headers.response.set), and one
// route per arm in front of the managed routes sends requests carrying that
// cookie back to the arm. Header stickiness: one route per arm sends
// requests whose Header is the arm's subset to it. Without either, only the
// weights split users. Only Istio's own fields are used, so Envoy does the
// routing; Fulcrum keeps no per-user state.
type Experiment = router.Experiment

// ExperimentRouteName is the sticky route of one arm of a rollout's
// experiment.
func ExperimentRouteName(rollout, arm string) string {
	return ExperimentRoutePrefix + rollout + "-" + arm
}

// CookieMatch is the regular expression a sticky route matches the Cookie
// header with (RE2, matched against the whole value, as Envoy does): the
// cookie name=arm among any others.
func CookieMatch(cookie, arm string) string {
	return `^(.*;\s*)?` + regexp.QuoteMeta(cookie) + `=` + regexp.QuoteMeta(arm) + `(;.*)?$`
}

// SetCookie is the Set-Cookie value an arm's answers carry.
func SetCookie(cookie, arm string, maxAge time.Duration) string {
	return fmt.Sprintf("%s=%s; Path=/; Max-Age=%d", cookie, arm, int64(maxAge.Seconds()))
}

// SetExperiment returns a copy of vs with the experiment's sticky routes and
// cookies, and whether anything changed; weights are SetWeights' job. A
// destination whose answers already set a cookie of their own
// (headers.response.set of set-cookie, a user's) is refused with an error
// naming the route: Fulcrum never overwrites it. vs is never modified.
func SetExperiment(vs *unstructured.Unstructured, t Target, e Experiment) (*unstructured.Unstructured, bool, error) {
	if len(e.Arms) < 2 || (e.Cookie != "" && e.Header != "") {
		return nil, false, fmt.Errorf("experiment %q: want two or more arms and at most one of a cookie and a header", e.Rollout)
	}
	if err := CheckSubsets(t.DestinationRule, e.Arms...); err != nil {
		return nil, false, err
	}
	out, _, err := ClearExperiment(vs, t, e.Rollout, e.Cookie)
	if err != nil {
		return nil, false, err
	}
	routes, err := managedRoutes(out, t)
	if err != nil {
		return nil, false, err
	}
	first, err := modelDestinations(out, routes[0], t)
	if err != nil {
		return nil, false, err
	}
	if e.Cookie != "" {
		if err := setCookies(out, routes, t, e); err != nil {
			return nil, false, err
		}
	}
	if e.Cookie == "" && e.Header == "" {
		return out, !equality.Semantic.DeepEqual(vs.Object, out.Object), nil
	}
	var sticky []map[string]any
	for _, arm := range e.Arms {
		m := map[string]any{"exact": arm}
		name := "cookie"
		if e.Cookie != "" {
			m = map[string]any{"regex": CookieMatch(e.Cookie, arm)}
		} else {
			name = e.Header
		}
		sticky = append(sticky, map[string]any{
			"name":  ExperimentRouteName(e.Rollout, arm),
			"match": []any{map[string]any{"headers": map[string]any{name: m}}},
			"route": []any{map[string]any{"destination": destinationLike(first[0], arm)}},
		})
	}
	insertBefore(out, routes[0], sticky...)
	return out, !equality.Semantic.DeepEqual(vs.Object, out.Object), nil
}

// setCookies makes every destination of an arm on the managed routes set
// the arm's cookie on its answers.
func setCookies(vs *unstructured.Unstructured, routes []route, t Target, e Experiment) error {
	arms := map[string]bool{}
	for _, a := range e.Arms {
		arms[a] = true
	}
	for _, r := range routes {
		dests, err := modelDestinations(vs, r, t)
		if err != nil {
			return err
		}
		for _, d := range dests {
			if !arms[d.subset] {
				continue
			}
			headers, _ := d.obj["headers"].(map[string]any)
			if headers == nil {
				headers = map[string]any{}
				d.obj["headers"] = headers
			}
			resp, _ := headers["response"].(map[string]any)
			if resp == nil {
				resp = map[string]any{}
				headers["response"] = resp
			}
			set, _ := resp["set"].(map[string]any)
			if set == nil {
				set = map[string]any{}
				resp["set"] = set
			}
			for k, v := range set {
				if strings.EqualFold(k, "set-cookie") && !ownCookie(v, e.Cookie) {
					return fmt.Errorf("VirtualService %s/%s route %q: the destination of subset %s already sets a cookie on its answers (%v): the experiment's cookie stickiness needs that header; remove it, or use stickiness mode Header or None",
						vs.GetNamespace(), vs.GetName(), r.key, d.subset, v)
				}
			}
			set["set-cookie"] = SetCookie(e.Cookie, d.subset, e.MaxAge)
		}
	}
	return nil
}

// ClearExperiment returns a copy of vs without a rollout's sticky routes and
// without the cookie (named cookie) its arms' answers set, and whether
// anything changed. Headers that become empty are removed, so that the
// routes read as the user wrote them. vs is never modified.
func ClearExperiment(vs *unstructured.Unstructured, t Target, rollout, cookie string) (*unstructured.Unstructured, bool, error) {
	prefix := ExperimentRoutePrefix + rollout + "-"
	out, changed, err := removeRoutes(vs, func(n string) bool { return strings.HasPrefix(n, prefix) })
	if err != nil || cookie == "" {
		return out, changed, err
	}
	routes, err := managedRoutes(out, t)
	if err != nil {
		return out, changed, nil // nothing of ours can be found on routes that do not resolve
	}
	for _, r := range routes {
		list, _ := r.obj["route"].([]any)
		for _, it := range list {
			d, _ := it.(map[string]any)
			headers, _ := d["headers"].(map[string]any)
			resp, _ := headers["response"].(map[string]any)
			set, _ := resp["set"].(map[string]any)
			for k, v := range set {
				if strings.EqualFold(k, "set-cookie") && ownCookie(v, cookie) {
					delete(set, k)
					changed = true
					// Only what Fulcrum emptied goes: a user's own empty
					// headers stay as written.
					pruneEmpty(d, "headers", "response", "set")
				}
			}
		}
	}
	return out, changed, nil
}

// ownCookie reports whether a Set-Cookie value is the experiment's cookie.
func ownCookie(v any, cookie string) bool {
	s, _ := v.(string)
	return cookie != "" && strings.HasPrefix(s, cookie+"=")
}

// pruneEmpty removes the nested maps along path that are left empty,
// deepest first.
func pruneEmpty(m map[string]any, path ...string) {
	if len(path) == 0 || m == nil {
		return
	}
	child, ok := m[path[0]].(map[string]any)
	if !ok {
		return
	}
	pruneEmpty(child, path[1:]...)
	if len(child) == 0 {
		delete(m, path[0])
	}
}

// destinationLike is a destination to subset with d's host and port.
func destinationLike(d destination, subset string) map[string]any {
	dest := map[string]any{"host": d.host, "subset": subset}
	if d.port != nil {
		dest["port"] = deepCopyValue(d.port)
	}
	return dest
}
