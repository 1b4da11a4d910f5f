package notify

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// payloads are the request bodies of the examples, by golden file name.
// docs/notifications.md shows the same bodies (TestDocExamples).
func payloads(t *testing.T) map[string][]byte {
	t.Helper()
	rb, pr := rollbackEvent(), promotedEvent()
	am := &v1alpha1.AlertmanagerSink{Labels: map[string]string{"team": "risk"}}
	all := func(string, v1alpha1.Severity) bool { return true }
	out := map[string][]byte{}
	for name, build := range map[string]func() ([]byte, error){
		"webhook-rolledback.json":            func() ([]byte, error) { return cloudEventBody(&rb) },
		"slack-rolledback.json":              func() ([]byte, error) { return slackBody(&rb) },
		"teams-rolledback.json":              func() ([]byte, error) { return teamsBody(&rb) },
		"alertmanager-rolledback.json":       func() ([]byte, error) { return alertmanagerBody(&rb, am, all) },
		"alertmanager-promoted-resolve.json": func() ([]byte, error) { return alertmanagerBody(&pr, am, all) },
		"slack-promoted.json":                func() ([]byte, error) { return slackBody(&pr) },
	} {
		b, err := build()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = b
	}
	return out
}

func TestPayloadsMatchGoldenFiles(t *testing.T) {
	for name, got := range payloads(t) {
		t.Run(name, func(t *testing.T) {
			if !json.Valid(got) {
				t.Fatalf("not JSON: %s", got)
			}
			path := filepath.Join("testdata", name)
			pretty := indent(t, got)
			if *update {
				if err := os.WriteFile(path, pretty, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./notify -run TestPayloadsMatchGoldenFiles -update)", err)
			}
			if !bytes.Equal(pretty, want) {
				t.Errorf("%s differs from the golden file:\n%s", name, pretty)
			}
		})
	}
}

func indent(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func TestCloudEventAttributes(t *testing.T) {
	ev := rollbackEvent()
	b, err := cloudEventBody(&ev)
	if err != nil {
		t.Fatal(err)
	}
	var ce map[string]any
	if err := json.Unmarshal(b, &ce); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"specversion": "1.0", "id": ev.ID, "type": "dev.fulcrum.rollout.rolledback",
		"source": "/apis/fulcrum.dev/v1alpha1/namespaces/ml/modelrollouts/fraud", "subject": "v2",
		"time": "2026-11-20T10:07:00Z", "datacontenttype": "application/json", "severity": "critical",
	}
	for k, v := range want {
		if ce[k] != v {
			t.Errorf("%s = %v, want %v", k, ce[k], v)
		}
	}
	// Extension attribute names: lower-case letters and digits only.
	for k := range ce {
		if strings.ToLower(k) != k || strings.ContainsAny(k, "_-.") {
			t.Errorf("attribute %q is not a valid CloudEvents name", k)
		}
	}
	var data Event
	if err := json.Unmarshal(mustJSON(t, ce["data"]), &data); err != nil {
		t.Fatal(err)
	}
	if data.ID != ev.ID || data.Verdict == nil || data.Verdict.Metrics[0].Metric != "error-rate" {
		t.Errorf("data decodes to %+v", data)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A reason is text: it must not become a Slack link or mention.
func TestSlackEscapesUserText(t *testing.T) {
	ev := rollbackEvent()
	ev.Reason = "<!channel> see <https://evil.example|here> & more"
	b, err := slackBody(&ev)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "<!channel>") || strings.Contains(string(b), "<https://evil") {
		t.Errorf("reason not escaped: %s", b)
	}
	if !strings.Contains(string(b), "&lt;!channel&gt; see &lt;https://evil.example|here&gt; &amp; more") {
		t.Errorf("escaped reason missing: %s", b)
	}
}

func TestAlertmanagerFiresAndResolves(t *testing.T) {
	all := func(string, v1alpha1.Severity) bool { return true }
	sink := &v1alpha1.AlertmanagerSink{ResolveAfter: &metav1.Duration{Duration: 48 * time.Hour}}
	rb, pr := rollbackEvent(), promotedEvent()

	// A rollback fires its alert and resolves a pause's.
	fired := alertmanagerAlerts(&rb, sink, all)
	if len(fired) != 2 || fired[0].Labels["alertname"] != "FulcrumRolloutRolledBack" ||
		fired[1].Labels["alertname"] != "FulcrumRolloutPaused" || !fired[1].EndsAt.Equal(rb.Time) {
		t.Fatalf("a rollback sends %+v", fired)
	}
	if got := fired[0].EndsAt.Sub(fired[0].StartsAt); got != 48*time.Hour {
		t.Errorf("a rollback alert lasts %s, want resolveAfter (48h)", got)
	}
	resolved := alertmanagerAlerts(&pr, sink, all)
	var names []string
	for _, a := range resolved {
		if !a.EndsAt.Equal(pr.Time) {
			t.Errorf("%s: endsAt %s, want the promotion's time", a.Labels["alertname"], a.EndsAt)
		}
		names = append(names, a.Labels["alertname"])
	}
	if strings.Join(names, ",") != "FulcrumRolloutFailed,FulcrumRolloutPaused,FulcrumRolloutRolledBack" {
		t.Errorf("a promotion resolves %v", names)
	}
	// The rollback alert and its resolution have the same labels.
	for _, a := range resolved {
		if a.Labels["alertname"] == "FulcrumRolloutRolledBack" && !equalMaps(a.Labels, fired[0].Labels) {
			t.Errorf("resolution labels %v differ from the alert's %v", a.Labels, fired[0].Labels)
		}
	}

	// A one-off warning fires for 15 minutes.
	ig := rb
	ig.Type, ig.Severity = v1alpha1.HistoryIntentIgnored, v1alpha1.SeverityWarning
	if a := alertmanagerAlerts(&ig, sink, all); len(a) != 1 || a[0].EndsAt.Sub(a[0].StartsAt) != 15*time.Minute {
		t.Errorf("IntentIgnored sends %+v", a)
	}
	// An Info event that resolves nothing sends nothing.
	st := pr
	st.Type = v1alpha1.HistoryStarted
	if a := alertmanagerAlerts(&st, sink, all); len(a) != 0 {
		t.Errorf("Started sends %+v", a)
	}
	// A filter that does not want rollbacks does not resolve them either.
	noRollbacks := func(typ string, _ v1alpha1.Severity) bool { return typ != v1alpha1.HistoryRolledBack }
	for _, a := range alertmanagerAlerts(&pr, sink, noRollbacks) {
		if a.Labels["alertname"] == "FulcrumRolloutRolledBack" {
			t.Error("a rollback alert the filter never fires is resolved")
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
