package templates

import (
	"errors"
	"strings"
	"testing"
	"text/template/parse"
	"time"
)

// rangeBomb rendered 2·10⁹ copies of the namespace: it ran for minutes and
// asked for gigabytes, in the controller and in the webhook (issue 14,
// finding 1).
const rangeBomb = `{{range 2000000000}}{{$.Namespace}}{{end}}`

func TestCheckRefusesWhatQueriesDoNotNeed(t *testing.T) {
	for _, tc := range []struct{ name, src, msg string }{
		{"range bomb", rangeBomb, "{{range}} is not allowed"},
		{"range over subsets", `x{v=~"{{range $i, $s := .Subsets}}{{if $i}}|{{end}}{{$s}}{{end}}"}`, "{{range}} is not allowed"},
		{"range with break", `{{range .Subsets}}{{break}}{{end}}`, "{{range}} is not allowed"},
		{"if", `{{if .Candidate}}x{{end}}`, "{{if}} is not allowed"},
		{"with", `{{with .Candidate}}{{.}}{{end}}`, "{{with}} is not allowed"},
		{"define", `{{define "a"}}{{.Namespace}}{{end}}x`, `{{define}} and {{block}} (here "a") are not allowed`},
		{"block", `{{block "a" .}}{{.Namespace}}{{end}}`, "are not allowed"},
		{"template", `{{template "query" .}}`, "{{template}} is not allowed"},
		{"printf width", `{{printf "%0999999999d" 1}}`, `function "printf" is not allowed`},
		{"unknown function", `{{ sprig .Window }}`, `function "sprig" is not allowed`},
		{"call", `{{call .Namespace}}`, `function "call" is not allowed`},
		{"pipe into printf", `{{.Namespace | printf "%s"}}`, `function "printf" is not allowed`},
		{"pipe into a field", `{{.Namespace | .Service}}`, "piping into .Service is not allowed"},
		{"variable", `{{$x := .Namespace}}{{$x}}`, "declaring or assigning a variable"},
		{"unknown field", `x{{.Windows}}`, "field .Windows is not allowed"},
		{"field of a field", `{{.Subsets.Len}}`, "field .Subsets.Len is not allowed"},
		{"method-like call", `{{.Namespace "a"}}`, "calling .Namespace with arguments"},
		{"all the data", `{{.}}`, "{{.}} (it prints all the data)"},
		{"dollar alone", `{{$}}`, "$ alone"},
		{"chain", `{{(.Subsets).X}}`, "a field of a parenthesised value"},
		{"nested forbidden function", `{{index .Subsets (len (printf "%d" 1))}}`, `function "printf" is not allowed`},
		{"nil", `{{index .Subsets nil}}`, "nil is not allowed"},
		{"syntax", `sum(x{{.Window)`, "query:1: "},
		{"too long", strings.Repeat("x", MaxTemplateLength+1), "4097 characters, more than the 4096 allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check("query", tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Check(%q) = %v; want an error containing %q", tc.src, err, tc.msg)
			}
			if !strings.Contains(err.Error(), "a query template may contain only text, the fields .Namespace") && !errors.Is(err, ErrTooLong) {
				t.Errorf("the error does not say what is allowed: %v", err)
			}
		})
	}
}

func TestCheckAcceptsFieldsAndTheListedFunctions(t *testing.T) {
	d := NewData("ml", "fraud", "v1", "v2", 90*time.Second)
	d.VersionLabel = "destination_version"
	for _, tc := range []struct{ src, want string }{
		{`{{.Namespace}}/{{$.Service}}`, "ml/fraud"},
		{`{{ index .Subsets 1 }}|{{index $.Subsets 0}}`, "v2|v1"},
		{`{{ .Subsets | len }} {{len .Subsets}}`, "2 2"},
		{`{{print .Stable "-" .Candidate}}`, "v1-v2"},
		{`{{- /* a comment */ -}} {{ .Window }} {{"s"}}{{1}}`, "90s s1"},
		{`{{(.SubsetRegex)}} by ({{.VersionLabel}})`, "v1|v2 by (destination_version)"},
	} {
		tpl, err := Check("query", tc.src)
		if err != nil {
			t.Errorf("Check(%q): %v", tc.src, err)
			continue
		}
		var b strings.Builder
		if err := tpl.Execute(&b, d); err != nil || b.String() != tc.want {
			t.Errorf("%q rendered %q (%v), want %q", tc.src, b.String(), err, tc.want)
		}
	}
}

// The range bomb is refused before it runs: Render returns at once. On the
// code before issue 14 the same call rendered 2·10⁹ copies of "ml".
func TestRangeBombIsRefusedBeforeItRuns(t *testing.T) {
	start := time.Now()
	_, err := Template{Name: "mine", Query: rangeBomb}.Render(NewData("ml", "s", "v1", "v2", time.Minute))
	if err == nil || !strings.Contains(err.Error(), "{{range}} is not allowed") {
		t.Fatalf("Render(range bomb) = %v; want {{range}} refused", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing took %s", d)
	}
}

// A template within MaxTemplateLength can still render past
// MaxRenderedBytes (long subset names, many references): rendering stops
// there with ErrTooLong.
func TestRenderedOutputIsBounded(t *testing.T) {
	long := strings.Repeat("a", 63)
	d := NewData("ml", "s", long+"1", long+"2", time.Minute) // SubsetRegex: 127 bytes
	src := `x{v=~"` + strings.Repeat("{{.SubsetRegex}}|", (MaxTemplateLength-8)/len("{{.SubsetRegex}}|")) + `"}`
	_, err := Template{Name: "mine", Query: src}.Render(d)
	if !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), "more than 16384 bytes") {
		t.Fatalf("Render = %v; want ErrTooLong past 16384 bytes", err)
	}
	if _, err := (Template{Name: "mine", Query: src}).Render(NewData("ml", "s", "v1", "v2", time.Minute)); err != nil {
		t.Errorf("the same template with short subsets (1.4 KiB): %v", err)
	}
}

func TestBuiltinsRenderWithinTheLimits(t *testing.T) {
	d := NewData(strings.Repeat("n", 63), strings.Repeat("s", 63), strings.Repeat("a", 63), strings.Repeat("b", 63), time.Hour)
	longest := 0
	for _, name := range BuiltinNames() {
		b, _ := Builtin(name)
		forms := []Template{b}
		if b.Batched != nil {
			forms = append(forms, *b.Batched)
		}
		for _, tpl := range forms {
			r, err := tpl.Render(d)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, q := range []string{r.Query, r.SampleQuery, r.BadQuery, r.HistogramQuery} {
				longest = max(longest, len(q))
			}
		}
	}
	if longest > MaxRenderedBytes/8 {
		t.Errorf("the longest built-in query is %d bytes; MaxRenderedBytes (%d) should leave room for eight such", longest, MaxRenderedBytes)
	}
	t.Logf("longest built-in query: %d bytes", longest)
}

// FuzzTemplateValidation: whatever the text, Check either refuses it or
// returns a template made of text and actions only (no loop, no branch, no
// variable), whose rendering ends with at most MaxRenderedBytes or an
// error. A template Check let through that looped would hang the fuzzer.
func FuzzTemplateValidation(f *testing.F) {
	for _, seed := range []string{
		rangeBomb,
		`{{range 10}}{{.Namespace}}{{end}}`,
		`{{printf "%0999999999d" 1}}`,
		`{{define "a"}}x{{end}}{{template "a"}}`,
		`{{block "b" .}}{{.Window}}{{end}}`,
		`{{with $x := .Namespace}}{{$x}}{{end}}`,
		`{{if .Candidate}}{{else}}{{end}}`,
		`{{index .Subsets 5}}`,
		`{{.Subsets | len | print}}`,
		`{{print (print (print .SubsetRegex .SubsetRegex) .SubsetRegex)}}`,
		`sum by ({{.VersionLabel}}) (rate(x{namespace="{{.Namespace}}",v=~"{{.SubsetRegex}}"}[{{.Window}}]))`,
		istioSel,
		`{{/* c */}}{{- .Window -}}`,
		`{{`, `}}`, `{{.}}`, `{{$}}`, `{{nil}}`,
	} {
		f.Add(seed)
	}
	long := strings.Repeat("v", 63)
	d := NewData("ml", "fraud", long+"1", long+"2", time.Minute)
	d.VersionLabel = DefaultVersionLabel
	f.Fuzz(func(t *testing.T, src string) {
		tpl, err := Check("query", src)
		if err != nil {
			return
		}
		for _, n := range tpl.Tree.Root.Nodes {
			switch n := n.(type) {
			case *parse.TextNode, *parse.CommentNode:
			case *parse.ActionNode:
				if len(n.Pipe.Decl) > 0 {
					t.Fatalf("Check accepted a variable: %q", src)
				}
			default:
				t.Fatalf("Check accepted %T in %q", n, src)
			}
		}
		if len(tpl.Templates()) != 1 {
			t.Fatalf("Check accepted %d templates in %q", len(tpl.Templates()), src)
		}
		var b strings.Builder
		err = tpl.Execute(&limitWriter{w: &b, n: MaxRenderedBytes}, d)
		if b.Len() > MaxRenderedBytes {
			t.Fatalf("%q rendered %d bytes", src, b.Len())
		}
		if err != nil {
			return
		}
		// Render adds PromQL parsing and the namespace rewrite; whatever
		// it says, it says it without a panic and within the bound.
		r, _ := Template{Name: "fuzz", Query: src}.Render(d)
		if len(r.Query) > MaxRenderedBytes {
			t.Fatalf("%q rendered and rewritten to %d bytes", src, len(r.Query))
		}
	})
}
