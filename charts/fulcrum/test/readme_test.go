package test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// documentedValues are the values.yaml keys preceded by a "# --" comment
// (the helm-docs convention), as dotted paths, in file order.
func documentedValues(t *testing.T, text string) []string {
	t.Helper()
	key := regexp.MustCompile(`^( *)([A-Za-z0-9_]+):`)
	type level struct {
		indent int
		key    string
	}
	var stack []level
	var out []string
	documented := false
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "# --"):
			documented = true
			continue
		case trimmed == "":
			documented = false
			continue
		case strings.HasPrefix(trimmed, "#"):
			continue
		}
		m := key.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= len(m[1]) {
			stack = stack[:len(stack)-1]
		}
		var path []string
		for _, l := range stack {
			path = append(path, l.key)
		}
		path = append(path, m[2])
		if documented {
			out = append(out, strings.Join(path, "."))
		}
		documented = false
		stack = append(stack, level{len(m[1]), m[2]})
	}
	return out
}

// leaves are the dotted paths of the values that are not maps, or empty ones.
func leaves(prefix string, v any) []string {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return []string{prefix}
	}
	var out []string
	for k, child := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		out = append(out, leaves(p, child)...)
	}
	return out
}

// TestEveryValueIsDocumented: each value in values.yaml is documented by a
// "# --" comment (on itself or a parent), and the README's table lists
// exactly the documented values.
func TestEveryValueIsDocumented(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(chartDir(t), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	documented := documentedValues(t, string(text))
	var values map[string]any
	if err := yaml.Unmarshal(text, &values); err != nil {
		t.Fatal(err)
	}
	for _, leaf := range leaves("", values) {
		if !slices.ContainsFunc(documented, func(d string) bool { return leaf == d || strings.HasPrefix(leaf, d+".") }) {
			t.Errorf("value %s has no \"# --\" comment in values.yaml", leaf)
		}
	}
	readme, err := os.ReadFile(filepath.Join(chartDir(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z0-9_.]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		rows = append(rows, m[1])
	}
	for _, d := range documented {
		if !slices.Contains(rows, d) {
			t.Errorf("README.md's values table has no row for %s", d)
		}
	}
	for _, r := range rows {
		if !slices.Contains(documented, r) {
			t.Errorf("README.md's values table lists %s, which values.yaml does not document", r)
		}
	}
}

// TestReadmeSaysWhatValuesSay: each row's meaning in README.md is the
// value's "# --" comment in values.yaml (backticks aside), and no comment
// line starts with a flag ("# --flag" reads as the start of another value's
// comment, which cut several rows short).
func TestReadmeSaysWhatValuesSay(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(chartDir(t), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	flagFirst := regexp.MustCompile(`^\s*# --\S`)
	key := regexp.MustCompile(`^( *)([A-Za-z0-9_]+):`)
	docs := map[string]string{}
	var stack []struct {
		indent int
		key    string
	}
	var cur []string
	for i, line := range strings.Split(string(text), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case flagFirst.MatchString(line):
			t.Errorf("values.yaml:%d: a comment line starts with a flag (%q): rewrap it, or it reads as a new value's comment", i+1, trimmed)
			continue
		case strings.HasPrefix(trimmed, "# --"):
			cur = []string{strings.TrimSpace(trimmed[4:])}
			continue
		case trimmed == "":
			cur = nil
			continue
		case strings.HasPrefix(trimmed, "#"):
			if cur != nil {
				cur = append(cur, strings.TrimSpace(trimmed[1:]))
			}
			continue
		}
		m := key.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= len(m[1]) {
			stack = stack[:len(stack)-1]
		}
		path := m[2]
		for j := len(stack) - 1; j >= 0; j-- {
			path = stack[j].key + "." + path
		}
		if cur != nil {
			docs[path] = strings.Join(cur, " ")
		}
		cur = nil
		stack = append(stack, struct {
			indent int
			key    string
		}{len(m[1]), m[2]})
	}
	readme, err := os.ReadFile(filepath.Join(chartDir(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z0-9_.]+)` \\| .*? \\| (.*) \\|$").FindAllStringSubmatch(string(readme), -1) {
		want, ok := docs[m[1]]
		if !ok {
			continue // TestEveryValueIsDocumented reports it
		}
		if got := strings.ReplaceAll(m[2], "`", ""); got != strings.ReplaceAll(want, "`", "") {
			t.Errorf("README.md row %s says\n\t%s\nvalues.yaml says\n\t%s", m[1], got, want)
		}
	}
}
