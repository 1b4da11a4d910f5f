package dashboard_test

// A test double of the admin API: it serves the contract the dashboard codes
// against (list, get, whoami, actions, server-sent events) from memory, so
// the browser test can run before the real admin API exists. It is not a
// reference implementation: authorization is a fixed token table.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/admin/dashboard"
	"github.com/fulcrum-ml/fulcrum/admin/intent"
	fulcrumv1 "github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

const (
	engineerToken = "engineer-token"
	viewerToken   = "viewer-token"
)

// actionCall is one POST the stand-in received.
type actionCall struct {
	Namespace, Name, Verb, Authorization string
	Body                                 map[string]any
}

type sseClient struct {
	namespace, name string // filters; empty means all
	ch              chan string
}

type standIn struct {
	mu       sync.Mutex
	rollouts map[string]*fulcrumv1.ModelRollout
	rv       int
	calls    []actionCall
	clients  map[*sseClient]struct{}
	down     bool
	kick     chan struct{} // closed to drop every open stream
}

func newStandIn(now time.Time) *standIn {
	s := &standIn{rollouts: map[string]*fulcrumv1.ModelRollout{}, clients: map[*sseClient]struct{}{}, kick: make(chan struct{})}
	for _, r := range fixtures(now) {
		s.put(r)
	}
	return s
}

func (s *standIn) put(r *fulcrumv1.ModelRollout) {
	s.rv++
	r.ResourceVersion = fmt.Sprint(s.rv)
	s.rollouts[r.Namespace+"/"+r.Name] = r
}

// update changes a rollout and pushes it to every matching stream.
func (s *standIn) update(ns, name string, change func(r *fulcrumv1.ModelRollout)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rollouts[ns+"/"+name].DeepCopy()
	change(r)
	s.put(r)
	data, _ := json.Marshal(view(r))
	s.broadcastLocked(ns, name, "event: rollout\ndata: "+string(data)+"\n\n")
}

func (s *standIn) broadcastLocked(ns, name, msg string) {
	for c := range s.clients {
		if (c.namespace == "" || c.namespace == ns) && (c.name == "" || c.name == name) {
			select {
			case c.ch <- msg:
			default:
			}
		}
	}
}

// setDown makes the server drop every connection (as if unreachable) until
// set up again.
func (s *standIn) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
	if down {
		close(s.kick)
		s.kick = make(chan struct{})
	}
}

func (s *standIn) actionCalls() []actionCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]actionCall(nil), s.calls...)
}

func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *standIn) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", dashboard.Handler())
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		user := r.Context().Value(userKey{}).(string)
		all := user == "engineer"
		writeJSON(w, 200, map[string]any{"user": user, "groups": []string{"fulcrum-" + user}, "can": map[string]bool{
			"get": true, "list": true, "start": all, "split": all, "promote": all, "rollback": all, "pause": all, "approve": all,
		}})
	})
	api.HandleFunc("GET /api/v1/rollouts", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		items := []*fulcrumv1.ModelRollout{}
		for _, ro := range s.rollouts {
			if ns := r.URL.Query().Get("namespace"); ns == "" || ns == ro.Namespace {
				items = append(items, ro)
			}
		}
		sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
		views := make([]any, len(items))
		for i, ro := range items {
			views[i] = view(ro)
		}
		writeJSON(w, 200, map[string]any{"items": views})
	})
	api.HandleFunc("GET /api/v1/namespaces/{ns}/rollouts/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		ro, ok := s.rollouts[r.PathValue("ns")+"/"+r.PathValue("name")]
		if !ok {
			problem(w, 404, "no such rollout")
			return
		}
		writeJSON(w, 200, view(ro))
	})
	api.HandleFunc("POST /api/v1/namespaces/{ns}/rollouts/{name}/{verb}", s.action)
	api.HandleFunc("GET /api/v1/events", s.events)
	api.HandleFunc("GET /api/v1/namespaces/{ns}/rollouts/{name}/events", s.events)
	mux.Handle("/api/", s.authenticate(api))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down := s.down
		s.mu.Unlock()
		if down {
			// Unreachable: drop the connection without an answer.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
					return
				}
			}
		}
		mux.ServeHTTP(w, r)
	})
}

type userKey struct{}

func (s *standIn) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := ""
		switch r.Header.Get("Authorization") {
		case "Bearer " + engineerToken:
			user = "engineer"
		case "Bearer " + viewerToken:
			user = "viewer"
		default:
			problem(w, 401, "a valid bearer token is required")
			return
		}
		next.ServeHTTP(w, r.WithContext(withValue(r, user)))
	})
}

func (s *standIn) action(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		problem(w, 400, "body must be JSON: "+err.Error())
		return
	}
	ns, name, verb := r.PathValue("ns"), r.PathValue("name"), r.PathValue("verb")
	if r.Context().Value(userKey{}) != "engineer" {
		problem(w, 403, "viewer may not "+verb)
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, actionCall{Namespace: ns, Name: name, Verb: verb, Authorization: r.Header.Get("Authorization"), Body: body})
	_, ok := s.rollouts[ns+"/"+name]
	s.mu.Unlock()
	if !ok {
		problem(w, 404, "no such rollout")
		return
	}
	reason, _ := body["reason"].(string)
	s.update(ns, name, func(ro *fulcrumv1.ModelRollout) {
		ro.Spec.Intent = &fulcrumv1.Intent{ID: fmt.Sprintf("i%d", len(s.calls)), Action: fulcrumv1.IntentAction(strings.ToUpper(verb[:1]) + verb[1:]), Actor: "engineer", Reason: reason}
	})
	s.mu.Lock()
	ro := s.rollouts[ns+"/"+name]
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, view(ro))
}

// view is a rollout as the admin API shows it: with the actions the
// phase/action table allows now.
func view(r *fulcrumv1.ModelRollout) any {
	return struct {
		*fulcrumv1.ModelRollout
		Actions map[string]intent.ActionStatus `json:"actions"`
	}{r, intent.ActionsFor(r)}
}

func (s *standIn) events(w http.ResponseWriter, r *http.Request) {
	c := &sseClient{namespace: r.URL.Query().Get("namespace"), ch: make(chan string, 64)}
	if ns := r.PathValue("ns"); ns != "" {
		c.namespace, c.name = ns, r.PathValue("name")
	}
	s.mu.Lock()
	s.clients[c] = struct{}{}
	kick := s.kick
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.clients, c)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	_, _ = fmt.Fprint(w, ": connected\n\n")
	fl.Flush()
	for {
		select {
		case msg := <-c.ch:
			_, _ = fmt.Fprint(w, msg)
			fl.Flush()
		case <-kick:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
				}
			}
			return
		case <-r.Context().Done():
			return
		}
	}
}

func ptr[T any](v T) *T { return &v }

func weights(kv ...any) []fulcrumv1.SubsetWeight {
	var out []fulcrumv1.SubsetWeight
	for i := 0; i < len(kv); i += 2 {
		out = append(out, fulcrumv1.SubsetWeight{Subset: kv[i].(string), Weight: int32(kv[i+1].(int))})
	}
	return out
}

func rollout(ns, name, stable, candidate string, phase fulcrumv1.Phase, created time.Time) *fulcrumv1.ModelRollout {
	return &fulcrumv1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(created)},
		Spec: fulcrumv1.ModelRolloutSpec{
			VirtualService: &fulcrumv1.VirtualServiceRef{Name: name}, DestinationRule: name, Stable: stable, Candidate: candidate,
			Strategy: fulcrumv1.Strategy{Canary: &fulcrumv1.CanaryStrategy{Steps: []int32{1, 5, 25, 50, 100}, MinStepDuration: metav1.Duration{Duration: time.Minute}}},
			Analysis: &fulcrumv1.Analysis{FailureLimit: 2, InconclusiveLimit: 10},
		},
		Status: fulcrumv1.ModelRolloutStatus{Phase: phase, Candidate: candidate},
	}
}

func withValue(r *http.Request, user string) context.Context {
	return context.WithValue(r.Context(), userKey{}, user)
}
