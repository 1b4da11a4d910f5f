package notify

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// apiClient is a client of the real API server and a fresh namespace.
func apiClient(t *testing.T) (client.Client, string) {
	t.Helper()
	if env == nil {
		t.Skip("needs the local API server (skipped with -short)")
	}
	c, err := client.New(env.Config, client.Options{Scheme: testScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := env.CreateNamespace(context.Background(), "notify")
	if err != nil {
		t.Fatal(err)
	}
	return c, ns
}

func create(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// Given a Notifier whose Slack URL is in a Secret, one whose Secret is
// missing, and a ClusterNotifier that selects the namespace by label and
// reads its Secret from secretNamespace; when a rollout of the namespace
// rolls back, then the Slack and webhook sinks get the event, and each
// notifier's status, written through the API server's status
// subresource, says what was delivered and whether its Secrets are there.
func TestNotifiersOnARealAPIServer(t *testing.T) {
	c, ns := apiClient(t)
	ctx := context.Background()
	slack, hook := newSink(t, ok), newSink(t, ok)

	var nsObj corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: ns}, &nsObj); err != nil {
		t.Fatal(err)
	}
	nsObj.Labels = map[string]string{"notify-test": ns}
	if err := c.Update(ctx, &nsObj); err != nil {
		t.Fatal(err)
	}
	cluster := &v1alpha1.ClusterNotifier{
		ObjectMeta: metav1.ObjectMeta{Name: "platform-" + ns},
		Spec: v1alpha1.ClusterNotifierSpec{
			SecretNamespace: ns,
			Sinks: []v1alpha1.NotifierSink{{Name: "events", Webhook: &v1alpha1.WebhookSink{
				URLSecretRef: &v1alpha1.SecretKeyRef{Name: "platform-hook", Key: "url"}}}},
			Filter: v1alpha1.ClusterNotifierFilter{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"notify-test": ns}},
				NotifierFilter:    v1alpha1.NotifierFilter{MinSeverity: v1alpha1.SeverityCritical},
			},
		},
	}
	create(t, c,
		secret(ns, "slack-webhook", map[string]string{"url": slack.URL + "/services/T0/B0/token"}),
		secret(ns, "platform-hook", map[string]string{"url": hook.URL + "/fulcrum"}),
		notifier(ns, "team", v1alpha1.NotifierSink{Name: "slack", Slack: &v1alpha1.SlackSink{
			URLSecretRef: v1alpha1.SecretKeyRef{Name: "slack-webhook", Key: "url"}}}),
		notifier(ns, "broken", v1alpha1.NotifierSink{Name: "teams", Teams: &v1alpha1.TeamsSink{
			URLSecretRef: v1alpha1.SecretKeyRef{Name: "teams-webhook", Key: "url"}}}),
		cluster,
	)
	t.Cleanup(func() { _ = c.Delete(context.Background(), cluster) })

	d := running(t, c, func(cfg *Config) { cfg.SecretReader = c })
	ev := fresh(rollbackEvent())
	ev.Namespace = ns
	d.Publish(ev)

	if r := slack.waitFor(t, 1)[0]; r.path != "/services/T0/B0/token" {
		t.Errorf("Slack got %s", r.path)
	}
	if r := hook.waitFor(t, 1)[0]; r.header.Get("Content-Type") != cloudEventsContentType {
		t.Errorf("webhook got Content-Type %s", r.header.Get("Content-Type"))
	}

	ready := func(conds []metav1.Condition) *metav1.Condition {
		return meta.FindStatusCondition(conds, v1alpha1.NotifierReady)
	}
	eventually(t, 10*time.Second, "every notifier's status", func() bool {
		var team, broken v1alpha1.Notifier
		var cn v1alpha1.ClusterNotifier
		if c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "team"}, &team) != nil ||
			c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "broken"}, &broken) != nil ||
			c.Get(ctx, client.ObjectKey{Name: cluster.Name}, &cn) != nil {
			return false
		}
		tr, br, cr := ready(team.Status.Conditions), ready(broken.Status.Conditions), ready(cn.Status.Conditions)
		return team.Status.Delivered == 1 && tr != nil && tr.Status == metav1.ConditionTrue &&
			broken.Status.Failed == 1 && br != nil && br.Reason == v1alpha1.NotifierReasonSecretNotFound &&
			cn.Status.Delivered == 1 && cr != nil && cr.Status == metav1.ConditionTrue
	})
	fs := d.Failures(ns, "fraud")
	if len(fs) != 1 || fs[0].Notifier != "Notifier "+ns+"/broken" {
		t.Errorf("failures %+v, want the broken Notifier's", fs)
	}

	// The Secret appears: Ready turns True without an event.
	create(t, c, secret(ns, "teams-webhook", map[string]string{"url": "https://example.invalid/webhook"}))
	eventually(t, 10*time.Second, "the broken Notifier to be Ready", func() bool {
		var broken v1alpha1.Notifier
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "broken"}, &broken); err != nil {
			return false
		}
		r := ready(broken.Status.Conditions)
		return r != nil && r.Status == metav1.ConditionTrue
	})
}
