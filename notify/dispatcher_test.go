package notify

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Each sink kind gets the body its format builds, with its content type
// and credentials, from URLs read from Secrets.
func TestDeliversEachFormat(t *testing.T) {
	hook, slack, teams, am := newSink(t, ok), newSink(t, ok), newSink(t, ok), newSink(t, ok)
	c := store(t,
		secret("ml", "hooks", map[string]string{"url": hook.URL + "/events\n", "authorization": "Bearer s3cret"}),
		secret("ml", "chat", map[string]string{"slack": slack.URL + "/services/T/B/X", "teams": teams.URL + "/workflows/1"}),
		notifier("ml", "all",
			v1alpha1.NotifierSink{Name: "events", Webhook: &v1alpha1.WebhookSink{
				URLSecretRef:           &v1alpha1.SecretKeyRef{Name: "hooks", Key: "url"},
				AuthorizationSecretRef: &v1alpha1.SecretKeyRef{Name: "hooks", Key: "authorization"}}},
			v1alpha1.NotifierSink{Name: "slack", Slack: &v1alpha1.SlackSink{URLSecretRef: v1alpha1.SecretKeyRef{Name: "chat", Key: "slack"}}},
			v1alpha1.NotifierSink{Name: "teams", Teams: &v1alpha1.TeamsSink{URLSecretRef: v1alpha1.SecretKeyRef{Name: "chat", Key: "teams"}}},
			v1alpha1.NotifierSink{Name: "alerts", Alertmanager: &v1alpha1.AlertmanagerSink{URL: am.URL + "/"}},
		))
	d := running(t, c, nil)
	ev := fresh(rollbackEvent())
	d.Publish(ev)

	want := ev
	want.DashboardURL = "https://fulcrum.example.com/#/rollouts/ml/fraud"
	all := func(string, v1alpha1.Severity) bool { return true }
	cases := map[string]struct {
		sink        *sink
		contentType string
		auth        string
		body        func() ([]byte, error)
	}{
		"webhook":      {hook, "application/cloudevents+json; charset=utf-8", "Bearer s3cret", func() ([]byte, error) { return cloudEventBody(&want) }},
		"slack":        {slack, "application/json", "", func() ([]byte, error) { return slackBody(&want) }},
		"teams":        {teams, "application/json", "", func() ([]byte, error) { return teamsBody(&want) }},
		"alertmanager": {am, "application/json", "", func() ([]byte, error) { return alertmanagerBody(&want, &v1alpha1.AlertmanagerSink{}, all) }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := tc.sink.waitFor(t, 1)[0]
			if ct := got.header.Get("Content-Type"); ct != tc.contentType {
				t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
			}
			if a := got.header.Get("Authorization"); a != tc.auth {
				t.Errorf("Authorization %q, want %q", a, tc.auth)
			}
			body, err := tc.body()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.body, body) {
				t.Errorf("posted\n%s\nwant\n%s", got.body, body)
			}
		})
	}
	for s, p := range map[*sink]string{hook: "/events", slack: "/services/T/B/X", teams: "/workflows/1", am: "/api/v2/alerts"} {
		if got := s.requests()[0].path; got != p {
			t.Errorf("posted to %s, want %s", got, p)
		}
	}
	eventually(t, 5*time.Second, "4 deliveries counted", func() bool {
		n := 0.0
		for _, k := range []string{KindWebhook, KindSlack, KindTeams, KindAlertmanager} {
			n += testutil.ToFloat64(d.metrics.deliveries.WithLabelValues(k, resultDelivered))
		}
		return n == 4
	})
}

func TestAlertmanagerBehindAPathPrefix(t *testing.T) {
	am := newSink(t, ok)
	c := store(t, notifier("ml", "am", v1alpha1.NotifierSink{Name: "am", Alertmanager: &v1alpha1.AlertmanagerSink{URL: am.URL + "/prefix/"}}))
	d := running(t, c, nil)
	d.Publish(fresh(rollbackEvent()))
	if p := am.waitFor(t, 1)[0].path; p != "/prefix/api/v2/alerts" {
		t.Errorf("Alertmanager posted to %s", p)
	}
}

func TestRetries(t *testing.T) {
	cases := map[string]struct {
		respond    func(n int, w http.ResponseWriter, r *http.Request)
		requests   int
		delivered  bool
		retries    float64
		errorWords string
	}{
		"500 then success: retried and delivered": {
			respond: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.WriteHeader(500)
				}
			},
			requests: 2, delivered: true, retries: 1,
		},
		"500 every time: given up after the attempts": {
			respond:  func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(502) },
			requests: 3, retries: 2, errorWords: "HTTP 502",
		},
		"4xx: not retried": {
			respond: func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(404)
				_, _ = w.Write([]byte("no_service"))
			},
			requests: 1, errorWords: "HTTP 404: no_service",
		},
		"no answer within the timeout": {
			respond:  func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			requests: 3, retries: 2, errorWords: "no answer within 200ms",
		},
		"Retry-After longer than Fulcrum waits": {
			respond: func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(429)
			},
			requests: 1, errorWords: "asked to retry after 1h0m0s",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := newSink(t, tc.respond)
			c := store(t, notifier("ml", "n", webhookTo("hook", s.URL)))
			d := running(t, c, func(cfg *Config) { cfg.Retry.Timeout = 200 * time.Millisecond })
			ev := fresh(rollbackEvent())
			d.Publish(ev)
			result := resultFailed
			if tc.delivered {
				result = resultDelivered
			}
			eventually(t, 10*time.Second, "the delivery's end", func() bool {
				return testutil.ToFloat64(d.metrics.deliveries.WithLabelValues(KindWebhook, result)) == 1
			})
			if n := len(s.requests()); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			if r := testutil.ToFloat64(d.metrics.retries.WithLabelValues(KindWebhook)); r != tc.retries {
				t.Errorf("%v retries counted, want %v", r, tc.retries)
			}
			fs := d.Failures("ml", "fraud")
			if tc.delivered {
				if len(fs) != 0 {
					t.Errorf("failures after a delivery: %+v", fs)
				}
				return
			}
			if len(fs) != 1 || fs[0].Notifier != "Notifier ml/n" || fs[0].Sink != "hook" || fs[0].Kind != KindWebhook ||
				fs[0].EventType != v1alpha1.HistoryRolledBack || !strings.Contains(fs[0].Error, tc.errorWords) {
				t.Errorf("failures %+v, want one of sink hook saying %q", fs, tc.errorWords)
			}
		})
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	s := newSink(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	c := store(t, notifier("ml", "n", webhookTo("hook", s.URL)))
	d := running(t, c, nil)
	d.Publish(fresh(rollbackEvent()))
	reqs := s.waitFor(t, 2)
	if gap := reqs[1].at.Sub(reqs[0].at); gap < time.Second || gap > 5*time.Second {
		t.Errorf("retried %s after a 429 with Retry-After: 1, want about 1s (the backoff alone is a few ms)", gap)
	}
}

// A later delivery to the same sink clears the rollout's failure, and the
// controller hears of both changes.
func TestFailuresClearOnDelivery(t *testing.T) {
	s := newSink(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(400)
		}
	})
	changes := make(chan string, 10)
	c := store(t, notifier("ml", "n", webhookTo("hook", s.URL)))
	d := running(t, c, func(cfg *Config) {
		cfg.OnChange = func(ns, name string) { changes <- ns + "/" + name }
	})
	d.Publish(fresh(rollbackEvent()))
	if got := <-changes; got != "ml/fraud" {
		t.Errorf("OnChange(%s)", got)
	}
	if len(d.Failures("ml", "fraud")) != 1 {
		t.Fatalf("failures %+v", d.Failures("ml", "fraud"))
	}
	d.Publish(fresh(promotedEvent()))
	<-changes
	if fs := d.Failures("ml", "fraud"); len(fs) != 0 {
		t.Errorf("failures after a delivery: %+v", fs)
	}
}

// The same history entry, published twice or read back from the API
// server, is delivered once per sink.
func TestSameEntryIsDeliveredOnce(t *testing.T) {
	s := newSink(t, ok)
	c := store(t, notifier("ml", "n", webhookTo("a", s.URL), webhookTo("b", s.URL)))
	d := running(t, c, nil)
	mr := aRollout().build()
	h := rollbackEntry()
	h.Time = metav1.NewTime(time.Now().Add(-time.Minute).Add(300 * time.Millisecond))
	d.Publish(NewEvent(mr, h))
	d.Publish(NewEvent(mr, h))
	read := h
	read.Time = metav1.NewTime(h.Time.Truncate(time.Second).UTC())
	d.Publish(NewEvent(mr, read))
	s.waitFor(t, 2)
	time.Sleep(200 * time.Millisecond)
	if n := len(s.requests()); n != 2 {
		t.Errorf("%d requests for one entry and two sinks, want 2", n)
	}
	if dup := testutil.ToFloat64(d.metrics.dropped.WithLabelValues(dropDuplicate)); dup != 2 {
		t.Errorf("%v duplicates counted, want 2", dup)
	}
}

func TestStaleEventsAreDropped(t *testing.T) {
	s := newSink(t, ok)
	d := running(t, store(t, notifier("ml", "n", webhookTo("a", s.URL))), nil)
	old := fresh(rollbackEvent())
	old.Time = time.Now().Add(-time.Hour)
	d.Publish(old)
	if n := testutil.ToFloat64(d.metrics.dropped.WithLabelValues(dropStale)); n != 1 {
		t.Errorf("%v stale events counted, want 1", n)
	}
}

// A sink that never answers holds its worker, never the caller: Publish
// returns at once, and the queue drops its oldest events.
func TestPublishNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	s := newSink(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	d := running(t, store(t, notifier("ml", "n", webhookTo("hang", s.URL))), func(cfg *Config) {
		cfg.QueueSize, cfg.Workers = 4, 1
		cfg.Retry.Timeout = time.Hour
	})
	const n = 1000
	start := time.Now()
	for range n {
		d.Publish(fresh(rollbackEvent()))
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("%d publishes took %s", n, took)
	}
	s.waitFor(t, 1)
	if q := d.queued(); q > 4 {
		t.Errorf("%d events queued, bound 4", q)
	}
	dropped := testutil.ToFloat64(d.metrics.dropped.WithLabelValues(dropQueueFull))
	if dropped < n-5 {
		t.Errorf("%v events dropped, want at least %d", dropped, n-5)
	}
}

func TestFiltersChooseTheSinks(t *testing.T) {
	all, promotions, other := newSink(t, ok), newSink(t, ok), newSink(t, ok)
	onlyPromoted := notifier("ml", "promotions", webhookTo("p", promotions.URL))
	onlyPromoted.Spec.Filter.Types = []string{v1alpha1.HistoryPromoted}
	suspended := notifier("ml", "suspended", webhookTo("s", other.URL))
	suspended.Spec.Suspend = true
	elsewhere := notifier("web", "elsewhere", webhookTo("e", other.URL))
	cluster := &v1alpha1.ClusterNotifier{ObjectMeta: metav1.ObjectMeta{Name: "platform"},
		Spec: v1alpha1.ClusterNotifierSpec{Sinks: []v1alpha1.NotifierSink{webhookTo("c", all.URL)},
			Filter: v1alpha1.ClusterNotifierFilter{Namespaces: []string{"ml"},
				NotifierFilter: v1alpha1.NotifierFilter{MinSeverity: v1alpha1.SeverityCritical}}}}
	d := running(t, store(t, notifier("ml", "all", webhookTo("a", all.URL)), onlyPromoted, suspended, elsewhere, cluster), nil)

	d.Publish(fresh(rollbackEvent()))
	all.waitFor(t, 2) // the Notifier's and the ClusterNotifier's
	d.Publish(fresh(promotedEvent()))
	promotions.waitFor(t, 1)
	all.waitFor(t, 3) // the Notifier's; the ClusterNotifier wants Critical only
	time.Sleep(200 * time.Millisecond)
	if n := len(all.requests()); n != 3 {
		t.Errorf("sink of every event got %d requests, want 3", n)
	}
	if n := len(promotions.requests()); n != 1 {
		t.Errorf("sink of promotions got %d requests, want 1", n)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("a suspended Notifier's or another namespace's sink got %d requests", n)
	}
}

// Status is written in batches: counters, times, the last error naming the
// sink, and Ready saying which Secret is missing, never a Secret's value.
func TestNotifierStatus(t *testing.T) {
	s := newSink(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 2 {
			w.WriteHeader(400)
		}
	})
	c := store(t,
		secret("ml", "hooks", map[string]string{"url": s.URL + "/very-secret-token"}),
		notifier("ml", "good", v1alpha1.NotifierSink{Name: "hook", Webhook: &v1alpha1.WebhookSink{
			URLSecretRef: &v1alpha1.SecretKeyRef{Name: "hooks", Key: "url"}}}),
		notifier("ml", "missing", v1alpha1.NotifierSink{Name: "slack", Slack: &v1alpha1.SlackSink{
			URLSecretRef: v1alpha1.SecretKeyRef{Name: "slack-webhook", Key: "url"}}}),
		notifier("ml", "bad-value", v1alpha1.NotifierSink{Name: "teams", Teams: &v1alpha1.TeamsSink{
			URLSecretRef: v1alpha1.SecretKeyRef{Name: "hooks", Key: "nope"}}}),
	)
	d := running(t, c, nil)
	d.Publish(fresh(rollbackEvent()))
	d.Publish(fresh(promotedEvent()))
	s.waitFor(t, 2)

	get := func(name string) *v1alpha1.Notifier {
		n := &v1alpha1.Notifier{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ml", Name: name}, n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	eventually(t, 5*time.Second, "the good Notifier's status", func() bool {
		st := get("good").Status
		return st.Delivered == 1 && st.Failed == 1
	})
	good := get("good").Status
	if good.LastDeliveryTime == nil || good.LastFailureTime == nil || !strings.HasPrefix(good.LastError, "sink hook (webhook): HTTP 400") {
		t.Errorf("good: %+v", good)
	}
	if c := meta.FindStatusCondition(good.Conditions, v1alpha1.NotifierReady); c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != 1 {
		t.Errorf("good: Ready %+v", c)
	}
	eventually(t, 5*time.Second, "the missing Secret's Notifier's status", func() bool {
		return get("missing").Status.Failed == 2
	})
	for name, want := range map[string]struct{ reason, message string }{
		"missing":   {v1alpha1.NotifierReasonSecretNotFound, "sink slack: Secret ml/slack-webhook not found"},
		"bad-value": {v1alpha1.NotifierReasonInvalidSecret, "sink teams: Secret ml/hooks has no key nope"},
	} {
		st := get(name).Status
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.NotifierReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != want.reason || c.Message != want.message {
			t.Errorf("%s: Ready %+v, want False %s %q", name, c, want.reason, want.message)
		}
	}
	for _, name := range []string{"good", "missing", "bad-value"} {
		st := get(name).Status
		if strings.Contains(st.LastError, "very-secret-token") || strings.Contains(st.LastError, s.URL) {
			t.Errorf("%s: lastError quotes the Secret: %s", name, st.LastError)
		}
	}
}

// A sink that cannot be reached: the error says why, not where (the URL's
// path is a credential).
func TestErrorsDoNotQuoteTheURL(t *testing.T) {
	closed := newSink(t, ok)
	url := closed.URL + "/services/T000/B000/very-secret-token"
	closed.Close()
	d := running(t, store(t, secret("ml", "s", map[string]string{"url": url}),
		notifier("ml", "n", v1alpha1.NotifierSink{Name: "slack", Slack: &v1alpha1.SlackSink{URLSecretRef: v1alpha1.SecretKeyRef{Name: "s", Key: "url"}}})), nil)
	d.Publish(fresh(rollbackEvent()))
	eventually(t, 10*time.Second, "the failure", func() bool { return len(d.Failures("ml", "fraud")) == 1 })
	if e := d.Failures("ml", "fraud")[0].Error; strings.Contains(e, "very-secret-token") || !strings.Contains(e, "POST failed") {
		t.Errorf("error %q", e)
	}
}
