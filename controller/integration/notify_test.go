package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller"
	"github.com/fulcrum-ml/fulcrum/notify"
)

// slackSink is a real HTTP server in the place of Slack's incoming
// webhook: it records what was posted and answers status.
type slackSink struct {
	mu     sync.Mutex
	posted []string
	status int
}

func (s *slackSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.posted = append(s.posted, string(b))
	status := s.status
	s.mu.Unlock()
	w.WriteHeader(status)
}

func (s *slackSink) texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.posted...)
}

// withNotifier runs a notify.Dispatcher with the manager, as cmd/fulcrum
// does, with quick retries.
func withNotifier(r **controller.Reconciler) func(ctrl.Manager, *controller.Config) {
	return func(mgr ctrl.Manager, cfg *controller.Config) {
		d, err := notify.New(notify.Config{
			Client: mgr.GetClient(), SecretReader: mgr.GetAPIReader(), DashboardURL: "https://fulcrum.example.com",
			Retry:          notify.RetryPolicy{Attempts: 2, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Timeout: 2 * time.Second},
			StatusInterval: 100 * time.Millisecond,
			OnChange:       func(ns, name string) { (*r).NotifyChanged(ns, name) },
		})
		if err != nil {
			panic(err)
		}
		if err := mgr.Add(d); err != nil {
			panic(err)
		}
		cfg.Notifier = d
	}
}

func (f *fixture) slackNotifier(url string) {
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "slack", Namespace: f.ns}, StringData: map[string]string{"url": url}})
	f.create(&v1alpha1.Notifier{
		ObjectMeta: metav1.ObjectMeta{Name: "team", Namespace: f.ns},
		Spec: v1alpha1.NotifierSpec{Sinks: []v1alpha1.NotifierSink{{
			Name: "ml-alerts", Slack: &v1alpha1.SlackSink{URLSecretRef: v1alpha1.SecretKeyRef{Name: "slack", Key: "url"}},
		}}},
	})
}

// Given a Notifier with a Slack sink, when a canary runs to promotion, then
// Slack receives its start and its promotion, with a dashboard link; every
// entry once.
func TestCanaryIsToldToSlack(t *testing.T) {
	f := newFixture(t)
	sink := &slackSink{status: http.StatusOK}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	f.slackNotifier(srv.URL)
	var r *controller.Reconciler
	r = startControllerConfig(f, controller.Config{Analyzer: &scripted{}}, withNotifier(&r))
	f.rollout("fraud")
	mr := f.waitPhase("fraud", v1alpha1.PhasePromoted)
	f.eventually("Slack told of the promotion", func() bool {
		return strings.Contains(strings.Join(sink.texts(), "\n"), "Promoted")
	})
	posted := sink.texts()
	if len(posted) != len(mr.Status.History) {
		t.Errorf("%d posts for %d history entries (%s)", len(posted), len(mr.Status.History), strings.Join(historyTypes(mr), ","))
	}
	for _, p := range posted {
		var msg map[string]any
		if err := json.Unmarshal([]byte(p), &msg); err != nil {
			t.Fatalf("Slack got no JSON: %s", p)
		}
	}
	if all := strings.Join(posted, "\n"); !strings.Contains(all, "https://fulcrum.example.com/#/rollouts/"+f.ns+"/fraud") {
		t.Errorf("no dashboard link in %s", all)
	}
	if c := meta.FindStatusCondition(f.get("fraud").Status.Conditions, v1alpha1.ConditionNotified); c != nil {
		t.Errorf("Notified condition %+v, want none while every delivery succeeded", c)
	}
}

// Given a Slack sink that refuses every post, then the rollout's Notified
// condition says which sink failed, and reconciling goes on.
func TestFailedDeliveryShowsOnTheRollout(t *testing.T) {
	f := newFixture(t)
	sink := &slackSink{status: http.StatusForbidden}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	f.slackNotifier(srv.URL)
	var r *controller.Reconciler
	r = startControllerConfig(f, controller.Config{Analyzer: &scripted{}}, withNotifier(&r))
	f.rollout("fraud")
	f.eventually("the Notified condition is False", func() bool {
		c := meta.FindStatusCondition(f.get("fraud").Status.Conditions, v1alpha1.ConditionNotified)
		return c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, "ml-alerts")
	})
	f.waitPhase("fraud", v1alpha1.PhasePromoted)
}
