package notify

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Sink kinds, as metrics and Failure name them.
const (
	KindWebhook      = "webhook"
	KindSlack        = "slack"
	KindTeams        = "teams"
	KindAlertmanager = "alertmanager"
)

// notifierRef names a Notifier (with its namespace) or a ClusterNotifier.
type notifierRef struct {
	cluster   bool
	namespace string
	name      string
}

func (r notifierRef) String() string {
	if r.cluster {
		return "ClusterNotifier " + r.name
	}
	return "Notifier " + r.namespace + "/" + r.name
}

// target is one sink of one notifier that an event goes to.
type target struct {
	notifier        notifierRef
	sink            v1alpha1.NotifierSink
	secretNamespace string
	filter          filter
}

func sinkKind(s *v1alpha1.NotifierSink) string {
	switch {
	case s.Webhook != nil:
		return KindWebhook
	case s.Slack != nil:
		return KindSlack
	case s.Teams != nil:
		return KindTeams
	case s.Alertmanager != nil:
		return KindAlertmanager
	}
	return "unknown"
}

// targets are the sinks event ev goes to: those of the Notifiers of its
// namespace and of the ClusterNotifiers whose filters let it through.
// Alertmanager sinks get every event in scope: they send what it fires or
// resolves, if anything.
func (d *Dispatcher) targets(ctx context.Context, ev *Event) ([]target, error) {
	var out []target
	add := func(ref notifierRef, suspend bool, sinks []v1alpha1.NotifierSink, secretNS string, f filter, err error) error {
		if suspend || err != nil { // an invalid filter is reported by the Ready condition
			return nil
		}
		in, err := f.inScope(ev, func() (labels.Set, error) { return d.namespaceLabels(ctx, ev.Namespace) })
		if err != nil || !in {
			return err
		}
		wanted := f.wants(ev.Type, ev.Severity)
		for _, s := range sinks {
			if wanted || s.Alertmanager != nil {
				out = append(out, target{notifier: ref, sink: *s.DeepCopy(), secretNamespace: secretNS, filter: f})
			}
		}
		return nil
	}
	var ns v1alpha1.NotifierList
	if err := d.cfg.Client.List(ctx, &ns, client.InNamespace(ev.Namespace)); err != nil {
		return nil, fmt.Errorf("list Notifiers in %s: %w", ev.Namespace, err)
	}
	for i := range ns.Items {
		n := &ns.Items[i]
		f, err := compileFilter(&n.Spec.Filter)
		if err := add(notifierRef{namespace: n.Namespace, name: n.Name}, n.Spec.Suspend, n.Spec.Sinks, n.Namespace, f, err); err != nil {
			return nil, err
		}
	}
	var cns v1alpha1.ClusterNotifierList
	if err := d.cfg.Client.List(ctx, &cns); err != nil {
		return nil, fmt.Errorf("list ClusterNotifiers: %w", err)
	}
	for i := range cns.Items {
		n := &cns.Items[i]
		f, err := compileClusterFilter(&n.Spec.Filter)
		if err := add(notifierRef{cluster: true, name: n.Name}, n.Spec.Suspend, n.Spec.Sinks, n.Spec.SecretNamespace, f, err); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (d *Dispatcher) namespaceLabels(ctx context.Context, name string) (labels.Set, error) {
	var ns corev1.Namespace
	if err := d.cfg.Client.Get(ctx, client.ObjectKey{Name: name}, &ns); err != nil {
		return nil, fmt.Errorf("read namespace %s: %w", name, err)
	}
	return labels.Set(ns.Labels), nil
}

// secretError is a Secret that is missing or unusable: a delivery with it
// fails without retries, and the notifier's Ready condition says why.
type secretError struct {
	reason string // NotifierReasonSecretNotFound or NotifierReasonInvalidSecret
	msg    string
}

func (e *secretError) Error() string { return e.msg }

// secretValue reads one key of a Secret, with surrounding white space (a
// file's last newline) removed. Errors name the Secret and key, never the
// value.
func (d *Dispatcher) secretValue(ctx context.Context, namespace string, ref *v1alpha1.SecretKeyRef) (string, error) {
	if namespace == "" {
		return "", &secretError{v1alpha1.NotifierReasonInvalidSecret, fmt.Sprintf("Secret %s: no namespace to read it from (spec.secretNamespace)", ref.Name)}
	}
	var s corev1.Secret
	if err := d.cfg.SecretReader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return "", &secretError{v1alpha1.NotifierReasonSecretNotFound, fmt.Sprintf("Secret %s/%s not found", namespace, ref.Name)}
		}
		return "", fmt.Errorf("read Secret %s/%s: %w", namespace, ref.Name, err)
	}
	v, ok := s.Data[ref.Key]
	if !ok {
		return "", &secretError{v1alpha1.NotifierReasonInvalidSecret, fmt.Sprintf("Secret %s/%s has no key %s", namespace, ref.Name, ref.Key)}
	}
	value := strings.TrimSpace(string(v))
	if value == "" {
		return "", &secretError{v1alpha1.NotifierReasonInvalidSecret, fmt.Sprintf("Secret %s/%s key %s is empty", namespace, ref.Name, ref.Key)}
	}
	return value, nil
}

// secretURL reads a URL from a Secret and checks it without quoting it.
func (d *Dispatcher) secretURL(ctx context.Context, namespace string, ref *v1alpha1.SecretKeyRef) (string, error) {
	v, err := d.secretValue(ctx, namespace, ref)
	if err != nil {
		return "", err
	}
	u, perr := url.Parse(v)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", &secretError{v1alpha1.NotifierReasonInvalidSecret, fmt.Sprintf("Secret %s/%s key %s is not an http or https URL", namespace, ref.Name, ref.Key)}
	}
	return v, nil
}

// endpoint reads where t's sink is and how to authenticate to it.
func (d *Dispatcher) endpoint(ctx context.Context, t *target) (u, authorization string, err error) {
	ns := t.secretNamespace
	optional := func(ref *v1alpha1.SecretKeyRef) (string, error) {
		if ref == nil {
			return "", nil
		}
		return d.secretValue(ctx, ns, ref)
	}
	urlOf := func(inline string, ref *v1alpha1.SecretKeyRef) (string, error) {
		if ref == nil {
			return inline, nil
		}
		return d.secretURL(ctx, ns, ref)
	}
	switch s := t.sink; {
	case s.Webhook != nil:
		if u, err = urlOf(s.Webhook.URL, s.Webhook.URLSecretRef); err != nil {
			return "", "", err
		}
		authorization, err = optional(s.Webhook.AuthorizationSecretRef)
	case s.Slack != nil:
		u, err = d.secretURL(ctx, ns, &s.Slack.URLSecretRef)
	case s.Teams != nil:
		u, err = d.secretURL(ctx, ns, &s.Teams.URLSecretRef)
	case s.Alertmanager != nil:
		if u, err = urlOf(s.Alertmanager.URL, s.Alertmanager.URLSecretRef); err != nil {
			return "", "", err
		}
		u = strings.TrimSuffix(u, "/") + alertmanagerPath
		authorization, err = optional(s.Alertmanager.AuthorizationSecretRef)
	default:
		err = &secretError{v1alpha1.NotifierReasonInvalidSecret, "the sink sets none of webhook, slack, teams or alertmanager"}
	}
	if err != nil {
		return "", "", err
	}
	return u, authorization, nil
}

// body is the request body for t: nil when t has nothing to send for ev
// (an Alertmanager sink and an event that fires and resolves nothing).
func body(ev *Event, t *target) (contentType string, b []byte, err error) {
	switch s := t.sink; {
	case s.Webhook != nil:
		b, err = cloudEventBody(ev)
		return cloudEventsContentType, b, err
	case s.Slack != nil:
		b, err = slackBody(ev)
	case s.Teams != nil:
		b, err = teamsBody(ev)
	case s.Alertmanager != nil:
		b, err = alertmanagerBody(ev, s.Alertmanager, t.filter.wants)
	}
	return "application/json", b, err
}
