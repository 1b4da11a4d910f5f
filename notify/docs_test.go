package notify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// docs/notifications.md shows examples that must stay true: each payload
// is what the code posts for the example event, each resource decodes
// strictly into its type (and, with the local API server, is admitted),
// and its tables name every metric and severity the code has.

const docPath = "../docs/notifications.md"

// docExample is a fenced block under an "<!-- example: NAME -->" comment.
type docExample struct {
	name string
	line int
	text string
}

var exampleMarker = regexp.MustCompile(`^<!--\s*example:\s*(\S+)\s*-->$`)

func docExamples(t *testing.T) []docExample {
	t.Helper()
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []docExample
	var cur *docExample
	inBlock := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case !inBlock && exampleMarker.MatchString(line):
			cur = &docExample{name: exampleMarker.FindStringSubmatch(line)[1], line: n}
		case !inBlock && strings.HasPrefix(line, "```"):
			inBlock = true
		case inBlock && strings.HasPrefix(line, "```"):
			inBlock = false
			if cur != nil {
				out = append(out, *cur)
				cur = nil
			}
		case inBlock && cur != nil:
			cur.text += line + "\n"
		}
	}
	return out
}

func TestDocExamples(t *testing.T) {
	produced := payloads(t)
	var c client.Client
	var ns string
	if env != nil {
		c, ns = apiClient(t)
	}
	seen := map[string]bool{}
	for _, ex := range docExamples(t) {
		seen[ex.name] = true
		name, isPayload := strings.CutPrefix(ex.name, "testdata/")
		switch {
		case isPayload:
			want, ok := produced[name]
			if !ok {
				t.Errorf("%s:%d: no payload %s in format_test.go", docPath, ex.line, name)
				continue
			}
			var got, wantV any
			if err := json.Unmarshal([]byte(ex.text), &got); err != nil {
				t.Errorf("%s:%d: %v", docPath, ex.line, err)
				continue
			}
			_ = json.Unmarshal(want, &wantV)
			if !reflect.DeepEqual(got, wantV) {
				t.Errorf("%s:%d: the %s example is not what the code posts; paste testdata/%s (go test ./notify -update writes it)", docPath, ex.line, name, name)
			}
		case ex.name == "apply":
			obj := decodeStrict(t, ex)
			if c == nil {
				continue
			}
			if obj.GetNamespace() != "" {
				obj.SetNamespace(ns)
			}
			if err := c.Create(context.Background(), obj, client.DryRunAll); err != nil {
				t.Errorf("%s:%d: the API server refuses the example: %v", docPath, ex.line, err)
			}
		default:
			t.Errorf("%s:%d: unknown example %s", docPath, ex.line, ex.name)
		}
	}
	for name := range produced {
		if !seen["testdata/"+name] && !strings.HasPrefix(name, "slack-promoted") {
			t.Errorf("%s shows no example of %s", docPath, name)
		}
	}
}

// decodeStrict decodes a documented resource into its Go type, refusing
// unknown fields.
func decodeStrict(t *testing.T, ex docExample) client.Object {
	t.Helper()
	var meta struct{ Kind string }
	if err := yaml.Unmarshal([]byte(ex.text), &meta); err != nil {
		t.Fatalf("%s:%d: %v", docPath, ex.line, err)
	}
	var obj client.Object
	switch meta.Kind {
	case "Notifier":
		obj = &v1alpha1.Notifier{}
	case "ClusterNotifier":
		obj = &v1alpha1.ClusterNotifier{}
	default:
		t.Fatalf("%s:%d: example of kind %q", docPath, ex.line, meta.Kind)
	}
	if err := yaml.UnmarshalStrict([]byte(ex.text), obj); err != nil {
		t.Fatalf("%s:%d: %v", docPath, ex.line, err)
	}
	return obj
}

func TestDocNamesEveryMetric(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Client: store(t)})
	if err != nil {
		t.Fatal(err)
	}
	// Vectors are gathered once they have a series.
	d.metrics.deliveries.WithLabelValues(KindSlack, resultDelivered)
	d.metrics.retries.WithLabelValues(KindSlack)
	d.metrics.dropped.WithLabelValues(dropStale)
	d.metrics.latency.WithLabelValues(KindSlack)
	reg := prometheus.NewRegistry()
	if err := d.metrics.register(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
		if !strings.Contains(string(doc), "`"+f.GetName()+"`") {
			t.Errorf("%s does not name metric %s", docPath, f.GetName())
		}
	}
	for _, m := range regexp.MustCompile("`(fulcrum_notify_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		if !slices.Contains(names, m[1]) {
			t.Errorf("%s names %s, which the dispatcher does not export", docPath, m[1])
		}
	}
	for _, reason := range []string{dropQueueFull, dropStale, dropDuplicate, dropLookup} {
		if !strings.Contains(string(doc), "`"+reason+"`") {
			t.Errorf("%s does not name drop reason %s", docPath, reason)
		}
	}
}

// The severity table says what severities.go says.
func TestDocSeverityTable(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[v1alpha1.Severity]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		for _, s := range []v1alpha1.Severity{v1alpha1.SeverityCritical, v1alpha1.SeverityWarning, v1alpha1.SeverityInfo} {
			if strings.HasPrefix(line, "| "+string(s)+" |") {
				rows[s] = line
			}
		}
	}
	word := func(row, typ string) bool { return regexp.MustCompile(`\b` + typ + `\b`).MatchString(row) }
	for typ, sev := range severities {
		if !word(rows[sev], typ) {
			t.Errorf("%s: the %s row does not list %s", docPath, sev, typ)
		}
		for s, row := range rows {
			if s != sev && word(row, typ) && typ != v1alpha1.HistoryExperimentEnded {
				t.Errorf("%s: %s is listed as %s, the code says %s", docPath, typ, s, sev)
			}
		}
	}
}
