package docs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// table is a Markdown table outside code blocks.
type table struct {
	file string
	line int // of the header row
	// marker is X of a "<!-- flags: X -->" comment on the nearest
	// non-blank line above the table, if any.
	marker string
	header []string
	rows   []row
}

type row struct {
	line  int
	cells []string
}

func (t table) where(line int) string {
	return fmt.Sprintf("%s:%d", t.file, line)
}

// column returns the index of the header cell named name (case-insensitive),
// or -1.
func (t table) column(name string) int {
	for i, h := range t.header {
		if strings.EqualFold(strings.TrimSpace(h), name) {
			return i
		}
	}
	return -1
}

// codeBlock is a fenced code block.
type codeBlock struct {
	file string
	line int // of the first line inside the fence
	lang string
	text string
}

// doc is one Markdown file, split into tables and code blocks.
type doc struct {
	path   string
	text   string
	tables []table
	blocks []codeBlock
}

var flagsMarker = regexp.MustCompile(`^<!--\s*flags:\s*(.+?)\s*-->$`)

// parseDoc reads path's tables and fenced code blocks.
func parseDoc(path string) (*doc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := &doc{path: path, text: string(data)}
	var (
		fence        string // the fence that opened the current block, "" outside
		block        *codeBlock
		body         strings.Builder
		cur          *table
		lastNonBlank string
	)
	sc := bufio.NewScanner(strings.NewReader(d.text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				block.text = body.String()
				d.blocks = append(d.blocks, *block)
				fence, block = "", nil
				body.Reset()
				continue
			}
			body.WriteString(line)
			body.WriteByte('\n')
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			cur = endTable(d, cur)
			fence = trimmed[:3]
			block = &codeBlock{file: path, line: n + 1, lang: strings.TrimSpace(trimmed[3:])}
			lastNonBlank = trimmed
			continue
		}
		if strings.HasPrefix(trimmed, "|") {
			cells := splitRow(trimmed)
			switch {
			case cur == nil:
				cur = &table{file: path, line: n, header: cells}
				if m := flagsMarker.FindStringSubmatch(lastNonBlank); m != nil {
					cur.marker = m[1]
				}
			case isSeparator(cells):
			default:
				cur.rows = append(cur.rows, row{line: n, cells: cells})
			}
		} else {
			cur = endTable(d, cur)
		}
		if trimmed != "" {
			lastNonBlank = trimmed
		}
	}
	endTable(d, cur)
	return d, sc.Err()
}

func endTable(d *doc, t *table) *table {
	if t != nil {
		d.tables = append(d.tables, *t)
	}
	return nil
}

func isSeparator(cells []string) bool {
	for _, c := range cells {
		if strings.Trim(strings.TrimSpace(c), ":-") != "" {
			return false
		}
	}
	return true
}

// splitRow splits a table row on the pipes outside code spans; \| is a
// literal pipe.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	if strings.HasSuffix(line, "|") && !strings.HasSuffix(line, `\|`) {
		line = line[:len(line)-1]
	}
	var cells []string
	var cur strings.Builder
	inCode := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case c == '`':
			inCode = !inCode
			cur.WriteByte(c)
		case c == '|' && !inCode:
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

var codeSpan = regexp.MustCompile("`([^`]*)`")

// codeSpans returns the contents of the code spans in s.
func codeSpans(s string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// markdownFiles are docs/*.md and the README.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append(files, filepath.Join("..", "README.md"))
}

func parseDocs(t *testing.T) []*doc {
	t.Helper()
	var out []*doc
	for _, f := range markdownFiles(t) {
		d, err := parseDoc(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, d)
	}
	return out
}

func TestParseDoc(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.md")
	md := "# T\n\n<!-- flags: ./cmd/x -->\n\n| flag | default |\n|---|---|\n| `--a` | `\"\"` (none) |\n| `--b`, `-b` | `x|y` \\| z |\n\n" +
		"```sh\n| not | a table |\n```\n\n| method and path | answer |\n|---|---|\n| `GET /x` | ok |\n"
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := parseDoc(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.tables) != 2 || len(d.blocks) != 1 {
		t.Fatalf("%d tables, %d blocks", len(d.tables), len(d.blocks))
	}
	ft := d.tables[0]
	if ft.marker != "./cmd/x" || ft.line != 5 || len(ft.rows) != 2 || ft.column("Default") != 1 {
		t.Fatalf("flag table %+v", ft)
	}
	if got := ft.rows[1].cells; len(got) != 2 || got[1] != "`x|y` | z" {
		t.Fatalf("cells %q", got)
	}
	if got := codeSpans(ft.rows[1].cells[0]); len(got) != 2 || got[1] != "-b" {
		t.Fatalf("code spans %q", got)
	}
	if d.tables[1].marker != "" || d.blocks[0].lang != "sh" || d.blocks[0].line != 11 || d.blocks[0].text != "| not | a table |\n" {
		t.Fatalf("route table %+v, block %+v", d.tables[1], d.blocks[0])
	}
}
