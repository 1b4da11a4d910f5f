package notify

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// historyTypes are the values of the History* constants of api/v1alpha1,
// read from its source so that a new type cannot be forgotten here.
func historyTypes(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../api/v1alpha1/status_types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, decl := range f.Decls {
		g, ok := decl.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "History") || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
					v, _ := strconv.Unquote(lit.Value)
					out = append(out, v)
				}
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d history types in status_types.go: %v", len(out), out)
	}
	return out
}

func TestEveryHistoryTypeHasASeverity(t *testing.T) {
	types := historyTypes(t)
	for _, typ := range types {
		if _, ok := severities[typ]; !ok {
			t.Errorf("history type %s has no severity in notify/severity.go", typ)
		}
	}
	for typ := range severities {
		if !slices.Contains(types, typ) {
			t.Errorf("notify/severity.go names %s, which is no history type", typ)
		}
	}
}

// The CRD's enum of spec.filter.types is the list of history types.
func TestFilterTypesEnumIsTheHistoryTypes(t *testing.T) {
	data, err := os.ReadFile("../manifests/crd/fulcrum.dev_notifiers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema struct {
						Properties map[string]struct {
							Properties map[string]struct {
								Properties map[string]struct {
									Items struct {
										Enum []string `json:"enum"`
									} `json:"items"`
								} `json:"properties"`
							} `json:"properties"`
						} `json:"properties"`
					} `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	enum := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["filter"].Properties["types"].Items.Enum
	want := historyTypes(t)
	slices.Sort(enum)
	slices.Sort(want)
	if !slices.Equal(enum, want) {
		t.Errorf("spec.filter.types enum %v, history types %v: edit the items:Enum marker in api/v1alpha1/notifier_types.go", enum, want)
	}
}

func TestSeverityOf(t *testing.T) {
	cases := []struct {
		typ     string
		outcome v1alpha1.ExperimentOutcome
		want    v1alpha1.Severity
	}{
		{v1alpha1.HistoryRolledBack, "", v1alpha1.SeverityCritical},
		{v1alpha1.HistoryFailed, "", v1alpha1.SeverityCritical},
		{v1alpha1.HistoryPaused, "", v1alpha1.SeverityWarning},
		{v1alpha1.HistoryPromoted, "", v1alpha1.SeverityInfo},
		{v1alpha1.HistoryExperimentEnded, v1alpha1.ExperimentWinner, v1alpha1.SeverityInfo},
		{v1alpha1.HistoryExperimentEnded, v1alpha1.ExperimentStopped, v1alpha1.SeverityWarning},
		{"SomethingNew", "", v1alpha1.SeverityInfo},
	}
	for _, c := range cases {
		if got := SeverityOf(c.typ, c.outcome); got != c.want {
			t.Errorf("SeverityOf(%s, %q) = %s, want %s", c.typ, c.outcome, got, c.want)
		}
	}
}
