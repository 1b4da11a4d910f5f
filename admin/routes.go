package admin

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/admin/auth"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// APIPrefix is the base path of every API route.
const APIPrefix = "/api/v1"

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.observe)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.problem(w, r, problem{Status: 404, Title: "Not found", Detail: fmt.Sprintf("no route %s: see /openapi.json for the routes", r.URL.Path)})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.problem(w, r, problem{Status: 405, Title: "Method not allowed", Detail: fmt.Sprintf("%s is not allowed on %s: see /openapi.json", r.Method, r.URL.Path)})
	})

	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	r.Get("/readyz", s.readyz)
	// No /metrics here: it names every namespace and rollout, and this port
	// answers anyone who can reach it. The metrics port serves it
	// (--metrics-bind-address), where a NetworkPolicy admits only
	// Prometheus.
	r.Get("/openapi.json", serveOpenAPI)

	r.Route(APIPrefix, func(r chi.Router) {
		r.Use(s.rateLimit, s.limitBody)
		r.Get("/version", s.version)
		r.Get("/whoami", s.whoami)
		r.Get("/rollouts", s.listRollouts)
		r.Get("/events", s.streamAll)
		const one = "/namespaces/{namespace}/rollouts/{name}"
		r.Get(one, s.getRollout)
		r.Get(one+"/history", s.history)
		r.Get(one+"/events", s.streamOne)
		r.Post(one+"/{action:start|split|promote|rollback|pause|resume|approve}", s.act)
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			s.problem(w, r, problem{Status: 404, Title: "Not found", Detail: fmt.Sprintf("no API route %s: see /openapi.json for the routes", r.URL.Path)})
		})
	})
	if s.cfg.UI != nil {
		r.Handle("/*", s.cfg.UI)
	}
	return r
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		s.problem(w, r, problem{Status: 503, Title: "Not ready", Detail: "the ModelRollout informer has not synced yet"})
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// authenticate resolves the caller or answers 401/503.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, stream bool) (auth.User, bool) {
	tok, ok := auth.BearerToken(r, stream)
	if !ok {
		s.problem(w, r, problem{Status: 401, Title: "Authentication required",
			Detail: "no bearer token: send 'Authorization: Bearer TOKEN' with a Kubernetes token (e.g. from 'kubectl create token NAME'); fulcrumctl reads it from --token or FULCRUM_TOKEN"})
		return auth.User{}, false
	}
	u, ok, err := s.cfg.Authenticator.AuthenticateToken(r.Context(), tok)
	if err != nil {
		s.cfg.Logger.Error(err, "authenticating a token failed", "requestID", info(r.Context()).id)
		s.problem(w, r, problem{Status: 503, Title: "Authentication unavailable", Detail: "the token could not be checked right now (the Kubernetes API did not answer): retry shortly"})
		return auth.User{}, false
	}
	if !ok {
		s.problem(w, r, problem{Status: 401, Title: "Invalid token",
			Detail: "the bearer token was not accepted: it is unknown, expired or revoked; get a new one (e.g. 'kubectl create token NAME')"})
		return auth.User{}, false
	}
	info(r.Context()).user = u.Name
	if !s.limitUser(w, r, u.Name) {
		return auth.User{}, false
	}
	return u, true
}

// authorize authenticates and checks a verb on modelrollouts, answering
// 401/403/503 itself when it returns false.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, a auth.Attributes, stream bool) (auth.User, bool) {
	u, ok := s.authenticate(w, r, stream)
	if !ok {
		return u, false
	}
	d, err := s.cfg.Authorizer.Authorize(r.Context(), u, a)
	if err != nil {
		s.cfg.Logger.Error(err, "authorizing a request failed", "requestID", info(r.Context()).id, "user", u.Name)
		s.problem(w, r, problem{Status: 503, Title: "Authorization unavailable", Detail: "access could not be checked right now (the Kubernetes API did not answer): retry shortly"})
		return u, false
	}
	if !d.Allowed {
		s.problem(w, r, problem{Status: 403, Title: "Forbidden", Detail: forbiddenDetail(u, a)})
		return u, false
	}
	return u, true
}

func forbiddenDetail(u auth.User, a auth.Attributes) string {
	where := "in namespace " + a.Namespace
	if a.Namespace == "" {
		where = "in all namespaces (pass ?namespace=NS to look in one)"
	}
	groups := ""
	if len(u.Groups) > 0 {
		groups = " or one of its groups (" + strings.Join(u.Groups, ", ") + ")"
	}
	return fmt.Sprintf("user %s may not '%s' modelrollouts.fulcrum.dev %s: bind the %s role to %s%s", u.Name, a.Verb, where, auth.RoleHint(a.Verb), u.Name, groups)
}

type itemList[T any] struct {
	Items []T `json:"items"`
}

func (s *Server) listRollouts(w http.ResponseWriter, r *http.Request) {
	ns := r.URL.Query().Get("namespace")
	if _, ok := s.authorize(w, r, auth.Attributes{Verb: "list", Namespace: ns}, false); !ok {
		return
	}
	var list v1alpha1.ModelRolloutList
	if err := s.cfg.Client.List(r.Context(), &list, client.InNamespace(ns)); err != nil {
		s.kubeError(w, r, err, "list rollouts")
		return
	}
	items := make([]*rolloutView, 0, len(list.Items))
	for i := range list.Items {
		items = append(items, present(&list.Items[i]))
	}
	slices.SortFunc(items, func(a, b *rolloutView) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	writeJSON(w, http.StatusOK, itemList[*rolloutView]{Items: items})
}

func (s *Server) getRollout(w http.ResponseWriter, r *http.Request) {
	mr, ok := s.readOne(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, present(mr))
}

type historyList struct {
	Items   []v1alpha1.HistoryEntry `json:"items"`
	Dropped int64                   `json:"dropped"`
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	mr, ok := s.readOne(w, r)
	if !ok {
		return
	}
	items := mr.Status.History
	if items == nil {
		items = []v1alpha1.HistoryEntry{}
	}
	writeJSON(w, http.StatusOK, historyList{Items: items, Dropped: mr.Status.HistoryDropped})
}

// readOne authorizes "get" and reads the rollout named in the path.
func (s *Server) readOne(w http.ResponseWriter, r *http.Request) (*v1alpha1.ModelRollout, bool) {
	key := pathKey(r)
	if _, ok := s.authorize(w, r, auth.Attributes{Verb: "get", Namespace: key.Namespace, Name: key.Name}, false); !ok {
		return nil, false
	}
	var mr v1alpha1.ModelRollout
	if err := s.cfg.Client.Get(r.Context(), key, &mr); err != nil {
		s.kubeError(w, r, err, "get rollout "+key.String())
		return nil, false
	}
	return &mr, true
}

func pathKey(r *http.Request) types.NamespacedName {
	return types.NamespacedName{Namespace: chi.URLParam(r, "namespace"), Name: chi.URLParam(r, "name")}
}

// kubeError maps an API server error to a problem.
func (s *Server) kubeError(w http.ResponseWriter, r *http.Request, err error, what string) {
	switch {
	case apierrors.IsNotFound(err):
		key := pathKey(r)
		s.problem(w, r, problem{Status: 404, Title: "Rollout not found",
			Detail: fmt.Sprintf("modelrollout %s/%s does not exist: list rollouts with GET %s/rollouts?namespace=%s", key.Namespace, key.Name, APIPrefix, key.Namespace)})
	default:
		s.cfg.Logger.Error(err, "kubernetes API call failed", "what", what, "requestID", info(r.Context()).id)
		s.problem(w, r, problem{Status: 503, Title: "Kubernetes API unavailable", Detail: fmt.Sprintf("could not %s: %v; retry shortly", what, err)})
	}
}

// whoamiVerbs are the verbs whoami reports; resume follows pause.
var whoamiVerbs = []string{"get", "list", "start", "split", "promote", "rollback", "pause", "approve"}

type whoamiResponse struct {
	User   string          `json:"user"`
	Groups []string        `json:"groups"`
	Can    map[string]bool `json:"can"`
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r, false)
	if !ok {
		return
	}
	ns := r.URL.Query().Get("namespace")
	if ns != "" && !s.serves(r.Context(), ns) {
		// A namespace the caller made up must not cost a review per verb:
		// answer with the rights held in every namespace, which the cache
		// already holds and which tell nothing about the namespace (a
		// caller without rights there sees the same either way).
		ns = ""
	}
	can := map[string]bool{}
	for _, verb := range whoamiVerbs {
		d, err := s.cfg.Authorizer.Authorize(r.Context(), u, auth.Attributes{Verb: verb, Namespace: ns})
		if err != nil {
			s.cfg.Logger.Error(err, "authorizing a request failed", "requestID", info(r.Context()).id)
			s.problem(w, r, problem{Status: 503, Title: "Authorization unavailable", Detail: "access could not be checked right now: retry shortly"})
			return
		}
		can[verb] = d.Allowed
	}
	can["resume"] = can["pause"]
	groups := u.Groups
	if groups == nil {
		groups = []string{}
	}
	writeJSON(w, http.StatusOK, whoamiResponse{User: u.Name, Groups: groups, Can: can})
}

// serves reports whether ns is a namespace whose rollouts this server
// serves: one of Config.Namespaces, or, when that is empty, a namespace that
// holds a ModelRollout. It bounds the namespaces whoami asks about.
func (s *Server) serves(ctx context.Context, ns string) bool {
	if len(s.cfg.Namespaces) > 0 {
		return slices.Contains(s.cfg.Namespaces, ns)
	}
	var list v1alpha1.ModelRolloutList
	if err := s.cfg.Client.List(ctx, &list, client.InNamespace(ns), client.Limit(1)); err != nil {
		return false
	}
	return len(list.Items) > 0
}
