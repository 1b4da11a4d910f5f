package scenarios

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// slackRecorder stands where Slack's incoming webhook would: a real HTTP
// server on loopback that keeps each message's text (and its blocks).
type slackRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *slackRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	if !json.Valid(b) {
		http.Error(w, "not JSON", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, string(b))
	r.mu.Unlock()
	_, _ = w.Write([]byte("ok"))
}

func (r *slackRecorder) posts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// slackNotifier creates a Notifier in the scenario's namespace whose Slack
// sink (URL in a Secret, as Slack's webhook URL is a credential) is a
// recorder, and returns the recorder.
func (s *scenario) slackNotifier() *slackRecorder {
	s.t.Helper()
	rec := &slackRecorder{}
	srv := httptest.NewServer(rec)
	s.t.Cleanup(srv.Close)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "slack", Namespace: s.model.NS}, StringData: map[string]string{"url": srv.URL + "/services/T000/B000/XXXX"}}
	if err := env.Client.Create(s.ctx, sec); err != nil {
		s.t.Fatal(err)
	}
	n := &v1alpha1.Notifier{
		ObjectMeta: metav1.ObjectMeta{Name: "ml-team", Namespace: s.model.NS},
		Spec: v1alpha1.NotifierSpec{Sinks: []v1alpha1.NotifierSink{{
			Name: "slack", Slack: &v1alpha1.SlackSink{URLSecretRef: v1alpha1.SecretKeyRef{Name: "slack", Key: "url"}},
		}}},
	}
	if err := env.Client.Create(s.ctx, n); err != nil {
		s.t.Fatal(err)
	}
	return rec
}
