package v1alpha1_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Every CEL rule and enum of Notifier and ClusterNotifier, checked on the
// real API server: a valid object of each shape is admitted, and each
// invalid one is refused with a cause on the field that is wrong and a
// message that says how to fix it.

func secretRef(name string) *v1alpha1.SecretKeyRef {
	return &v1alpha1.SecretKeyRef{Name: name, Key: "url"}
}

// fullNotifier has one sink of each kind and every filter.
func fullNotifier(ns, name string) *v1alpha1.Notifier {
	return &v1alpha1.Notifier{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.NotifierSpec{
			Sinks: []v1alpha1.NotifierSink{
				{Name: "events", Webhook: &v1alpha1.WebhookSink{URL: "https://events.example.com/fulcrum"}},
				{Name: "events-auth", Webhook: &v1alpha1.WebhookSink{URLSecretRef: secretRef("hooks"),
					AuthorizationSecretRef: &v1alpha1.SecretKeyRef{Name: "hooks", Key: "authorization"}}},
				{Name: "slack-ml", Slack: &v1alpha1.SlackSink{URLSecretRef: *secretRef("slack")}},
				{Name: "teams-ml", Teams: &v1alpha1.TeamsSink{URLSecretRef: *secretRef("teams")}},
				{Name: "alerts", Alertmanager: &v1alpha1.AlertmanagerSink{URL: "http://alertmanager.monitoring:9093",
					Labels: map[string]string{"team": "ml"}, ResolveAfter: &metav1.Duration{Duration: 48 * time.Hour}}},
			},
			Filter: v1alpha1.NotifierFilter{
				Rollouts:    []string{"fraud", "churn"},
				Types:       []string{v1alpha1.HistoryRolledBack, v1alpha1.HistoryPromoted},
				MinSeverity: v1alpha1.SeverityWarning,
			},
		},
	}
}

func fullClusterNotifier(name string) *v1alpha1.ClusterNotifier {
	return &v1alpha1.ClusterNotifier{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ClusterNotifierSpec{
			SecretNamespace: "fulcrum-system",
			Sinks: []v1alpha1.NotifierSink{
				{Name: "slack-platform", Slack: &v1alpha1.SlackSink{URLSecretRef: *secretRef("slack")}},
			},
			Filter: v1alpha1.ClusterNotifierFilter{
				NotifierFilter: v1alpha1.NotifierFilter{
					RolloutSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "critical"}},
				},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "ml"}},
			},
		},
	}
}

func TestValidNotifiersAreAdmitted(t *testing.T) {
	c, ns := setup(t)
	ctx := context.Background()
	n := fullNotifier(ns, "full")
	if err := c.Create(ctx, n); err != nil {
		t.Fatalf("valid Notifier refused: %v", err)
	}
	got := &v1alpha1.Notifier{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(n), got); err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Sinks) != 5 || got.Spec.Sinks[4].Alertmanager.ResolveAfter.Duration != 48*time.Hour {
		t.Errorf("sinks read back as %+v", got.Spec.Sinks)
	}

	cases := map[string]*v1alpha1.ClusterNotifier{
		"with secretNamespace and selectors": fullClusterNotifier("notify-full-" + ns),
		// Inline URLs read no Secret, so no secretNamespace is needed.
		"inline URLs only, without secretNamespace": func() *v1alpha1.ClusterNotifier {
			cn := fullClusterNotifier("notify-inline-" + ns)
			cn.Spec.SecretNamespace = ""
			cn.Spec.Sinks = []v1alpha1.NotifierSink{
				{Name: "events", Webhook: &v1alpha1.WebhookSink{URL: "http://events.example.com"}},
				{Name: "alerts", Alertmanager: &v1alpha1.AlertmanagerSink{URL: "http://alertmanager:9093"}},
			}
			cn.Spec.Filter = v1alpha1.ClusterNotifierFilter{Namespaces: []string{"ml", "ml-staging"}}
			return cn
		}(),
	}
	for name, cn := range cases {
		t.Run(name, func(t *testing.T) {
			if err := c.Create(ctx, cn); err != nil {
				t.Fatalf("valid ClusterNotifier refused: %v", err)
			}
			t.Cleanup(func() { _ = c.Delete(context.Background(), cn) })
		})
	}
}

func TestInvalidNotifiersAreRejected(t *testing.T) {
	c, ns := setup(t)
	tests := map[string]struct {
		mutate func(n *v1alpha1.Notifier)
		want   rejection
	}{
		"no sinks": {
			func(n *v1alpha1.Notifier) { n.Spec.Sinks = nil },
			rejection{"spec.sinks", "Required value"},
		},
		"sink of no kind": {
			func(n *v1alpha1.Notifier) { n.Spec.Sinks[0] = v1alpha1.NotifierSink{Name: "nothing"} },
			rejection{"spec.sinks[0]", "set exactly one of webhook, slack, teams or alertmanager"},
		},
		"sink of two kinds": {
			func(n *v1alpha1.Notifier) {
				n.Spec.Sinks[2].Teams = &v1alpha1.TeamsSink{URLSecretRef: *secretRef("teams")}
			},
			rejection{"spec.sinks[2]", "set exactly one of webhook, slack, teams or alertmanager"},
		},
		"sink name not a label": {
			func(n *v1alpha1.Notifier) { n.Spec.Sinks[0].Name = "Slack_ML" },
			rejection{"spec.sinks[0].name", "must be a DNS-1123 label"},
		},
		"two sinks of one name": {
			func(n *v1alpha1.Notifier) { n.Spec.Sinks[1].Name = n.Spec.Sinks[0].Name },
			rejection{"spec.sinks[1]", "Duplicate value"},
		},
		"webhook with url and urlSecretRef": {
			func(n *v1alpha1.Notifier) { n.Spec.Sinks[0].Webhook.URLSecretRef = secretRef("hooks") },
			rejection{"spec.sinks[0].webhook", "set url or urlSecretRef, exactly one"},
		},
		"webhook with neither url nor urlSecretRef": {
			func(n *v1alpha1.Notifier) { n.Spec.Sinks[0].Webhook.URL = "" },
			rejection{"spec.sinks[0].webhook", "set url or urlSecretRef, exactly one"},
		},
		"webhook credentials sent to an inline url": {
			func(n *v1alpha1.Notifier) {
				n.Spec.Sinks[0].Webhook.AuthorizationSecretRef = &v1alpha1.SecretKeyRef{Name: "hooks", Key: "authorization"}
			},
			rejection{"spec.sinks[0].webhook.authorizationSecretRef", "put the URL in a Secret as well (urlSecretRef)"},
		},
		"webhook url not http": {
			func(n *v1alpha1.Notifier) { n.Spec.Sinks[0].Webhook.URL = "ftp://events.example.com" },
			rejection{"spec.sinks[0].webhook.url", "must be an http or https URL"},
		},
		"webhook url not a URL": {
			func(n *v1alpha1.Notifier) { n.Spec.Sinks[0].Webhook.URL = "events example" },
			rejection{"spec.sinks[0].webhook.url", "must be an http or https URL"},
		},
		"slack without its Secret": {
			func(n *v1alpha1.Notifier) { n.Spec.Sinks[2].Slack.URLSecretRef = v1alpha1.SecretKeyRef{} },
			rejection{"spec.sinks[2].slack.urlSecretRef.name", "should be at least 1 chars long"},
		},
		"alertmanager with url and urlSecretRef": {
			func(n *v1alpha1.Notifier) { n.Spec.Sinks[4].Alertmanager.URLSecretRef = secretRef("am") },
			rejection{"spec.sinks[4].alertmanager", "set url or urlSecretRef, exactly one"},
		},
		"alertmanager credentials sent to an inline url": {
			func(n *v1alpha1.Notifier) {
				n.Spec.Sinks[4].Alertmanager.AuthorizationSecretRef = &v1alpha1.SecretKeyRef{Name: "am", Key: "authorization"}
			},
			rejection{"spec.sinks[4].alertmanager.authorizationSecretRef", "put the URL in a Secret as well"},
		},
		"alertmanager url not http": {
			func(n *v1alpha1.Notifier) { n.Spec.Sinks[4].Alertmanager.URL = "alertmanager:9093" },
			rejection{"spec.sinks[4].alertmanager.url", "must be an http or https URL"},
		},
		"alertmanager label that is no label name": {
			func(n *v1alpha1.Notifier) { n.Spec.Sinks[4].Alertmanager.Labels = map[string]string{"team-name": "ml"} },
			rejection{"spec.sinks[4].alertmanager.labels", "every key must be a Prometheus label name"},
		},
		"alertmanager label replacing severity": {
			func(n *v1alpha1.Notifier) {
				n.Spec.Sinks[4].Alertmanager.Labels = map[string]string{"severity": "page"}
			},
			rejection{"spec.sinks[4].alertmanager.labels", "cannot set alertname, namespace, rollout or severity"},
		},
		"alertmanager resolveAfter too short": {
			func(n *v1alpha1.Notifier) {
				n.Spec.Sinks[4].Alertmanager.ResolveAfter = &metav1.Duration{Duration: time.Minute}
			},
			rejection{"spec.sinks[4].alertmanager.resolveAfter", "must be between 5m and 720h"},
		},
		"rollout names and a rollout selector": {
			func(n *v1alpha1.Notifier) {
				n.Spec.Filter.RolloutSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
			},
			rejection{"spec.filter.rolloutSelector", "set rollouts (names) or rolloutSelector (labels), not both"},
		},
		"rollout name that is no name": {
			func(n *v1alpha1.Notifier) { n.Spec.Filter.Rollouts = []string{"Fraud Model"} },
			rejection{"spec.filter.rollouts", "each entry must be a ModelRollout name"},
		},
		"unknown event type": {
			func(n *v1alpha1.Notifier) { n.Spec.Filter.Types = []string{"Exploded"} },
			rejection{"spec.filter.types[0]", `supported values: "Started"`},
		},
		"unknown severity": {
			func(n *v1alpha1.Notifier) { n.Spec.Filter.MinSeverity = "Page" },
			rejection{"spec.filter.minSeverity", `supported values: "Info", "Warning", "Critical"`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n := fullNotifier(ns, "invalid")
			tc.mutate(n)
			assertRejected(t, createObject(context.Background(), c, n, "Notifier"), tc.want)
		})
	}
}

func TestInvalidClusterNotifiersAreRejected(t *testing.T) {
	c, _ := setup(t)
	tests := map[string]struct {
		mutate func(cn *v1alpha1.ClusterNotifier)
		want   rejection
	}{
		"Secret refs without secretNamespace": {
			func(cn *v1alpha1.ClusterNotifier) { cn.Spec.SecretNamespace = "" },
			rejection{"spec.secretNamespace", "spec.secretNamespace is required"},
		},
		"secretNamespace that is no namespace": {
			func(cn *v1alpha1.ClusterNotifier) { cn.Spec.SecretNamespace = "Fulcrum.System" },
			rejection{"spec.secretNamespace", "must be a namespace name"},
		},
		"namespace names and a namespace selector": {
			func(cn *v1alpha1.ClusterNotifier) { cn.Spec.Filter.Namespaces = []string{"ml"} },
			rejection{"spec.filter.namespaceSelector", "set namespaces (names) or namespaceSelector (labels), not both"},
		},
		"namespace name that is no name": {
			func(cn *v1alpha1.ClusterNotifier) {
				cn.Spec.Filter.NamespaceSelector = nil
				cn.Spec.Filter.Namespaces = []string{"ML"}
			},
			rejection{"spec.filter.namespaces", "each entry must be a namespace name"},
		},
		"rollout names and a rollout selector": {
			func(cn *v1alpha1.ClusterNotifier) { cn.Spec.Filter.Rollouts = []string{"fraud"} },
			rejection{"spec.filter.rolloutSelector", "set rollouts (names) or rolloutSelector (labels), not both"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cn := fullClusterNotifier("invalid")
			tc.mutate(cn)
			assertRejected(t, createObject(context.Background(), c, cn, "ClusterNotifier"), tc.want)
		})
	}
}

// TestNotifierStatusGoesThroughTheSubresource: the dispatcher writes
// status alone, and the status is validated too.
func TestNotifierStatusGoesThroughTheSubresource(t *testing.T) {
	c, ns := setup(t)
	ctx := context.Background()
	n := fullNotifier(ns, "status")
	if err := c.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	n.Status = v1alpha1.NotifierStatus{
		ObservedGeneration: n.Generation, Delivered: 3, Failed: 1, LastDeliveryTime: &now, LastFailureTime: &now,
		LastError: "sink slack-ml: HTTP 404: no_service",
		Conditions: []metav1.Condition{{Type: v1alpha1.NotifierReady, Status: metav1.ConditionTrue,
			Reason: v1alpha1.NotifierReasonReady, Message: "every sink's Secrets found", LastTransitionTime: now}},
	}
	if err := c.Status().Update(ctx, n); err != nil {
		t.Fatalf("status update refused: %v", err)
	}
	got := &v1alpha1.Notifier{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(n), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Delivered != 3 || got.Status.Failed != 1 || len(got.Status.Conditions) != 1 {
		t.Errorf("status read back as %+v", got.Status)
	}
	got.Status.LastError = longText(2000)
	assertRejected(t, c.Status().Update(ctx, got), rejection{"status.lastError", "may not be more than 1024"})
}

func longText(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'x'
	}
	return string(b)
}

// createObject sends obj as unstructured JSON, as kubectl would, so that
// fields the typed client would send as empty objects are left out.
func createObject(ctx context.Context, c client.Client, obj client.Object, kind string) error {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	o := &unstructured.Unstructured{Object: u}
	o.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(kind))
	return c.Create(ctx, o)
}
