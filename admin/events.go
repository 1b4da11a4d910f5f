package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/admin/auth"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Event types on the streams.
const (
	// EventRollout carries a ModelRollout (snapshot, created or changed).
	EventRollout = "rollout"
	// EventDeleted carries {"namespace","name"} of a deleted rollout.
	EventDeleted = "deleted"
	// EventSynced follows the initial snapshot.
	EventSynced = "synced"
	// EventHeartbeat is sent every HeartbeatInterval: {"time": RFC 3339}.
	EventHeartbeat = "heartbeat"
)

// streamBuffer is how many events a slow client may lag before its stream
// is closed; it reconnects and gets a fresh snapshot.
const streamBuffer = 256

type change struct {
	deleted bool
	obj     *v1alpha1.ModelRollout
}

// hub fans informer changes out to open streams.
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	namespace, name string
	ch              chan change
	lagged          chan struct{}
	once            sync.Once
}

func newHub() *hub { return &hub{subs: map[*subscriber]struct{}{}} }

func (h *hub) subscribe(ns, name string) *subscriber {
	s := &subscriber{namespace: ns, name: name, ch: make(chan change, streamBuffer), lagged: make(chan struct{})}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

func (h *hub) publish(c change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if (s.namespace != "" && s.namespace != c.obj.Namespace) || (s.name != "" && s.name != c.obj.Name) {
			continue
		}
		select {
		case s.ch <- c:
		default:
			s.once.Do(func() { close(s.lagged) })
		}
	}
}

// startEvents registers the hub on the ModelRollout informer and marks the
// server ready once the informer has synced.
func (s *Server) startEvents(ctx context.Context) error {
	inf, err := s.cfg.Informers.GetInformer(ctx, &v1alpha1.ModelRollout{})
	if err != nil {
		return fmt.Errorf("admin: get ModelRollout informer: %w", err)
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.publishObj(obj, false) },
		UpdateFunc: func(_, obj any) { s.publishObj(obj, false) },
		DeleteFunc: func(obj any) { s.publishObj(obj, true) },
	})
	if err != nil {
		return fmt.Errorf("admin: watch ModelRollouts: %w", err)
	}
	go func() {
		if toolscache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
			s.ready.Store(true)
		}
	}()
	return nil
}

func (s *Server) publishObj(obj any, deleted bool) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj, deleted = d.Obj, true
	}
	mr, ok := obj.(*v1alpha1.ModelRollout)
	if !ok {
		return
	}
	s.hub.publish(change{deleted: deleted, obj: mr})
}

func (s *Server) streamAll(w http.ResponseWriter, r *http.Request) {
	ns := r.URL.Query().Get("namespace")
	a := auth.Attributes{Verb: "list", Namespace: ns}
	u, ok := s.authorize(w, r, a, true)
	if !ok || !s.takeStream(w, r, u) {
		return
	}
	defer s.streams.release(u.Name)
	s.stream(w, r, a, ns, "")
}

func (s *Server) streamOne(w http.ResponseWriter, r *http.Request) {
	key := pathKey(r)
	a := auth.Attributes{Verb: "get", Namespace: key.Namespace, Name: key.Name}
	u, ok := s.authorize(w, r, a, true)
	if !ok {
		return
	}
	var mr v1alpha1.ModelRollout
	if err := s.cfg.Client.Get(r.Context(), key, &mr); err != nil {
		s.kubeError(w, r, err, "get rollout "+key.String())
		return
	}
	if !s.takeStream(w, r, u) {
		return
	}
	defer s.streams.release(u.Name)
	s.stream(w, r, a, key.Namespace, key.Name)
}

// takeStream takes one of the user's stream slots, or answers 429.
func (s *Server) takeStream(w http.ResponseWriter, r *http.Request, u auth.User) bool {
	if s.streams.acquire(u.Name) {
		return true
	}
	s.problem(w, r, problem{Status: http.StatusTooManyRequests, Title: "Too many event streams",
		Detail: fmt.Sprintf("user %s already has %d event streams open, the most one user may: close one (a dashboard tab, a fulcrumctl watch), or follow every rollout on one stream (GET %s/events)", u.Name, s.cfg.MaxStreamsPerUser, APIPrefix)})
	return false
}

// stream writes server-sent events: a snapshot of the matching rollouts,
// "synced", then changes and heartbeats until the client leaves, lags, its
// access ends, or MaxStreamDuration passes.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, a auth.Attributes, ns, name string) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	sub := s.hub.subscribe(ns, name)
	defer s.hub.unsubscribe(sub)
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()

	// Subscribe before listing so nothing between the two is lost; a change
	// seen twice is harmless (clients key by namespace/name).
	var list v1alpha1.ModelRolloutList
	opts := []client.ListOption{client.InNamespace(ns)}
	if err := s.cfg.Client.List(ctx, &list, opts...); err != nil {
		s.kubeError(w, r, err, "list rollouts")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	write := func(event string, v any) bool {
		data, err := json.Marshal(v)
		if err != nil {
			return false
		}
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	_, _ = fmt.Fprintf(w, "retry: 2000\n\n")
	for i := range list.Items {
		if name != "" && list.Items[i].Name != name {
			continue
		}
		if !write(EventRollout, present(&list.Items[i])) {
			return
		}
	}
	if !write(EventSynced, map[string]any{}) {
		return
	}
	beat := s.cfg.Clock.NewTicker(s.cfg.HeartbeatInterval)
	defer beat.Stop()
	deadline := s.cfg.Clock.NewTimer(s.cfg.MaxStreamDuration)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.lagged:
			return
		case <-deadline.C():
			return
		case now := <-beat.C():
			if !s.stillAllowed(r, a) {
				return
			}
			if !write(EventHeartbeat, map[string]string{"time": now.UTC().Format(time.RFC3339)}) {
				return
			}
		case c := <-sub.ch:
			ok := false
			if c.deleted {
				ok = write(EventDeleted, map[string]string{"namespace": c.obj.Namespace, "name": c.obj.Name})
			} else {
				ok = write(EventRollout, present(c.obj))
			}
			if !ok {
				return
			}
		}
	}
}

// stillAllowed re-checks the stream's token and access (both cached), so a
// revoked token or binding ends the stream within a heartbeat or two.
func (s *Server) stillAllowed(r *http.Request, a auth.Attributes) bool {
	tok, ok := auth.BearerToken(r, true)
	if !ok {
		return false
	}
	u, ok, err := s.cfg.Authenticator.AuthenticateToken(r.Context(), tok)
	if err != nil {
		return true // the API server is down: keep serving what we already may
	}
	if !ok {
		return false
	}
	d, err := s.cfg.Authorizer.Authorize(r.Context(), u, a)
	return err != nil || d.Allowed
}
