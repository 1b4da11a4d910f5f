package gates

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
)

// docs/hooks.md shows examples that must stay true: the payload is what
// the code sends, the rollout decodes strictly into the API's types, and
// its tables name every hook, Job variable, history type and Event reason
// the code has.

const hooksDoc = "../../docs/hooks.md"

var exampleMarker = regexp.MustCompile(`^<!--\s*example:\s*(\S+)\s*-->$`)

// docExamples maps each "<!-- example: NAME -->" to the fenced block or
// table that follows it.
func docExamples(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(hooksDoc)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	name, inBlock := "", false
	var body strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case name == "" && exampleMarker.MatchString(line):
			name = exampleMarker.FindStringSubmatch(line)[1]
			body.Reset()
		case name == "":
		case strings.HasPrefix(line, "```") && !inBlock:
			inBlock = true
		case strings.HasPrefix(line, "```") && inBlock:
			out[name], name, inBlock = body.String(), "", false
		case inBlock || strings.HasPrefix(line, "|"):
			body.WriteString(line + "\n")
		case body.Len() > 0: // the end of a table
			out[name], name = body.String(), ""
		}
	}
	return out
}

// firstColumn is the first cell of each row of a Markdown table, without
// backquotes, the header and separator rows left out.
func firstColumn(table string) []string {
	var out []string
	for i, line := range strings.Split(strings.TrimSpace(table), "\n") {
		if i < 2 {
			continue
		}
		cells := strings.Split(line, "|")
		out = append(out, strings.Trim(strings.TrimSpace(cells[1]), "`"))
	}
	return out
}

func TestDocPayloadIsTheCodes(t *testing.T) {
	ex := docExamples(t)["payload"]
	if ex == "" {
		t.Fatal("docs/hooks.md has no payload example")
	}
	step := int32(1)
	started := metav1.NewTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	mr := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "fraud", UID: "6f1c2a4e-0b7d-4c1e-9a53-2d8e7f6a1b90"},
		Spec: v1alpha1.ModelRolloutSpec{Stable: "v1", Candidate: "v2",
			Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{Steps: []int32{20, 50, 100}}}},
		Status: v1alpha1.ModelRolloutStatus{Phase: v1alpha1.PhaseProgressing, Candidate: "v2", RolloutStartedAt: &started,
			Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 80}, {Subset: "v2", Weight: 20}}},
	}
	run := &v1alpha1.GateRun{Name: "load-test", At: v1alpha1.GateEachStep, Step: &step, Weight: 50, Type: v1alpha1.GateTypeHTTP,
		ID: "3f9a2c71d0", StartedAt: metav1.NewTime(time.Date(2026, 12, 1, 10, 4, 0, 0, time.UTC))}
	p := NewPayload(mr, run, "fraud")
	p.Attempt = 1
	var want, got any
	if err := json.Unmarshal([]byte(ex), &want); err != nil {
		t.Fatalf("the doc's payload is not JSON: %v", err)
	}
	if err := json.Unmarshal(p.JSON(), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("the doc's payload is not the code's:\ndoc:  %v\ncode: %s", want, p.JSON())
	}
	// Every member the code may send is in the doc's field table.
	doc, _ := os.ReadFile(hooksDoc)
	typ := reflect.TypeOf(Payload{})
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name != "apiVersion" && name != "kind" && !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/hooks.md does not name payload field %s", name)
		}
	}
}

func TestDocRolloutDecodes(t *testing.T) {
	ex := docExamples(t)["rollout"]
	var mr v1alpha1.ModelRollout
	if err := yaml.UnmarshalStrict([]byte(ex), &mr); err != nil {
		t.Fatalf("the doc's rollout does not decode strictly: %v", err)
	}
	if len(mr.Spec.Gates) != 4 {
		t.Fatalf("%d gates decoded", len(mr.Spec.Gates))
	}
	for _, g := range mr.Spec.Gates {
		if g.HTTP != nil {
			if err := (Hosts{}).Check(g.HTTP.URL, mr.Namespace); err != nil {
				t.Errorf("gate %s: the default hosts refuse the doc's URL: %v", g.Name, err)
			}
			if _, err := Body(g.HTTP.Body, Payload{}); err != nil {
				t.Errorf("gate %s: %v", g.Name, err)
			}
		}
	}
}

func TestDocTablesNameEverything(t *testing.T) {
	ex := docExamples(t)
	doc, _ := os.ReadFile(hooksDoc)
	var hooks []string
	for _, l := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(l, "| `") && strings.Contains(l, "` | ") {
			hooks = append(hooks, strings.Trim(strings.Split(l, "|")[1], " `"))
		}
	}
	for _, h := range []v1alpha1.GateHook{v1alpha1.GatePreStart, v1alpha1.GateEachStep, v1alpha1.GatePrePromote, v1alpha1.GatePostPromote, v1alpha1.GateOnRollback} {
		if !slices.Contains(hooks, string(h)) {
			t.Errorf("the hooks table lacks %s", h)
		}
	}
	if got := firstColumn(ex["job-env"]); !slices.Equal(got, Env) {
		t.Errorf("the Job variables table lists %v, the code sets %v", got, Env)
	}
	wantHistory := []string{v1alpha1.HistoryApprovalPending, v1alpha1.HistoryApproved, v1alpha1.HistoryGatePassed, v1alpha1.HistoryGateFailed}
	if got := firstColumn(ex["history"]); !sameSet(got, wantHistory) {
		t.Errorf("the history table lists %v, the gates write %v", got, wantHistory)
	}
	wantReasons := []string{rollout.ReasonGateStarted, rollout.ReasonGatePassed, rollout.ReasonGateFailed, rollout.ReasonApprovalPending, rollout.ReasonApproved}
	if got := firstColumn(ex["events"]); !sameSet(got, wantReasons) {
		t.Errorf("the Events table lists %v, the code records %v", got, wantReasons)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
