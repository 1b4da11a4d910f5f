package docs

import (
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// flagDef is one flag as a program's help shows it.
type flagDef struct {
	name      string
	shorthand string // cobra only
	typ       string // "bool" when help shows no type
	def       string // as printed, strings unquoted; the type's zero value when not printed
	printed   bool   // help printed the default (it does not for zero values)
	// commands are the fulcrumctl commands that have the flag ("start",
	// "experiment start"); "all" for a global (persistent) flag. Empty for
	// single-command programs.
	commands map[string]bool
}

// program is the flags of one main package.
type program struct {
	pkg   string
	cobra bool
	flags map[string]*flagDef
}

var (
	buildMu  sync.Mutex
	binDir   string
	programs = map[string]*program{}
)

// buildProgram builds the main package pkg (a path from the repository
// root, such as ./cmd/fulcrum) once per test binary and reads its flags
// from its help.
func buildProgram(t *testing.T, pkg string) *program {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := programs[pkg]; ok {
		return p
	}
	if binDir == "" {
		binDir = t.TempDir()
	}
	bin := filepath.Join(binDir, strings.ReplaceAll(strings.Trim(pkg, "./"), "/", "_"))
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	help := func(args ...string) string {
		out, _ := exec.Command(bin, args...).CombinedOutput() // -h may exit non-zero
		return string(out)
	}
	p := &program{pkg: pkg}
	root := help("--help")
	var err error
	if strings.Contains(root, "\nAvailable Commands:\n") {
		p.cobra = true
		p.flags, err = cobraFlags(root, help)
	} else {
		p.flags, err = goFlags(root)
	}
	if err != nil {
		t.Fatalf("%s --help: %v", pkg, err)
	}
	if len(p.flags) == 0 {
		t.Fatalf("%s --help shows no flags:\n%s", pkg, root)
	}
	programs[pkg] = p
	return p
}

// goFlags parses flag.PrintDefaults output:
//
//	-name type
//	  	usage (default "x")
var (
	goFlagLine = regexp.MustCompile(`^  -([^\s=]+)(?: (\S+))?$`)
	// A one-letter bool flag has its usage on the same line.
	goShortBool = regexp.MustCompile(`^  -(\S)\t(.*)$`)
)

func goFlags(help string) (map[string]*flagDef, error) {
	out := map[string]*flagDef{}
	var cur *flagDef
	var usage []string
	flush := func() {
		if cur == nil {
			return
		}
		setDefault(cur, strings.Join(usage, " "))
		out[cur.name] = cur
		cur, usage = nil, nil
	}
	for _, line := range strings.Split(help, "\n") {
		if m := goShortBool.FindStringSubmatch(line); m != nil {
			flush()
			cur, usage = &flagDef{name: m[1]}, []string{m[2]}
			continue
		}
		if m := goFlagLine.FindStringSubmatch(line); m != nil {
			flush()
			cur = &flagDef{name: m[1], typ: m[2]}
			continue
		}
		if cur != nil && strings.HasPrefix(line, "    \t") {
			usage = append(usage, strings.TrimSpace(line))
		}
	}
	flush()
	return out, nil
}

// pflag's lines: "  -n, --namespace string   usage (default "x")".
var pflagLine = regexp.MustCompile(`^\s+(?:-(\S), )?--(\S+)(?: (\S+))?\s{2,}(.*)$`)

// cobraFlags reads the root's global flags and each command's own from
// `--help` of the root and of every command it lists.
func cobraFlags(root string, help func(...string) string) (map[string]*flagDef, error) {
	out := map[string]*flagDef{}
	add := func(section, cmd string) error {
		for _, line := range strings.Split(section, "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			m := pflagLine.FindStringSubmatch(line)
			if m == nil {
				return fmt.Errorf("cannot read flag line %q", line)
			}
			if m[2] == "help" {
				continue
			}
			f := out[m[2]]
			if f == nil {
				f = &flagDef{name: m[2], shorthand: m[1], typ: m[3], commands: map[string]bool{}}
				setDefault(f, m[4])
				out[f.name] = f
			}
			f.commands[cmd] = true
		}
		return nil
	}
	if err := add(helpSection(root, "Flags:"), "all"); err != nil {
		return nil, err
	}
	// A command group (fulcrumctl experiment) lists commands of its own:
	// their flags are on "experiment start" and so on.
	var walk func(path []string) error
	walk = func(path []string) error {
		cmd := strings.Join(path, " ")
		h := help(append(slices.Clone(path), "--help")...)
		if err := add(helpSection(h, "Flags:"), cmd); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		for _, sub := range commandNames(h) {
			if err := walk(append(slices.Clone(path), sub)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, cmd := range commandNames(root) {
		if cmd == "help" || cmd == "completion" {
			continue
		}
		if err := walk([]string{cmd}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// helpSection returns the lines under a heading of cobra's help, up to the
// next blank line.
func helpSection(help, heading string) string {
	_, after, ok := strings.Cut("\n"+help, "\n"+heading+"\n")
	if !ok {
		return ""
	}
	section, _, _ := strings.Cut(after, "\n\n")
	return section
}

func commandNames(root string) []string {
	var out []string
	for _, line := range strings.Split(helpSection(root, "Available Commands:"), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

var printedDefault = regexp.MustCompile(`\(default (.*)\)$`)

// setDefault reads the default from the end of the usage text, or takes
// the type's zero value, which help does not print.
func setDefault(f *flagDef, usage string) {
	if f.typ == "" {
		f.typ = "bool"
	}
	m := printedDefault.FindStringSubmatch(usage)
	if m == nil {
		f.def = zeroValue(f.typ)
		return
	}
	f.def, f.printed = m[1], true
	if s, err := strconv.Unquote(m[1]); err == nil {
		f.def = s
	}
}

func zeroValue(typ string) string {
	switch typ {
	case "bool":
		return "false"
	case "int", "uint", "int64", "uint64", "float", "float64", "count":
		return "0"
	case "duration":
		return "0s"
	}
	return ""
}

// docDefault is what a default cell says: its first code span, or the
// whole cell when it has none; a quoted string is unquoted (`""` is empty).
func docDefault(cell string) string {
	v := strings.TrimSpace(cell)
	if spans := codeSpans(cell); len(spans) > 0 {
		v = spans[0]
	}
	if s, err := strconv.Unquote(v); err == nil {
		return s
	}
	return v
}

// sameDefault compares a documented default with the program's.
func sameDefault(f *flagDef, doc string) bool {
	switch f.typ {
	case "value":
		// A flag.Value of its own: help omits its zero, whatever it is.
		if !f.printed {
			return slices.Contains([]string{"", "0", "false", "0s"}, doc)
		}
	case "duration":
		a, errA := time.ParseDuration(doc)
		b, errB := time.ParseDuration(f.def)
		return errA == nil && errB == nil && a == b
	case "float", "float64":
		a, errA := strconv.ParseFloat(doc, 64)
		b, errB := strconv.ParseFloat(f.def, 64)
		return errA == nil && errB == nil && a == b
	}
	return doc == f.def
}

// TestFlagTables compares every flag table with the flags of the program
// its marker names, and checks that every flag of each program is in some
// table.
func TestFlagTables(t *testing.T) {
	documented := map[string]map[string]bool{} // program → flags in its tables
	for _, d := range parseDocs(t) {
		for _, tb := range d.tables {
			if tb.column("flag") != 0 {
				continue
			}
			if tb.marker == "" {
				t.Errorf("%s: a flag table needs <!-- flags: PACKAGE --> on the line above it, naming the program (./cmd/fulcrum, ./cmd/fulcrumctl, ...)", tb.where(tb.line))
				continue
			}
			p := buildProgram(t, tb.marker)
			if documented[p.pkg] == nil {
				documented[p.pkg] = map[string]bool{}
			}
			checkFlagTable(t, tb, p, documented[p.pkg])
		}
	}
	for _, pkg := range []string{"./cmd/fulcrum", "./cmd/fulcrumctl"} {
		if documented[pkg] == nil {
			t.Errorf("no flag table describes %s", pkg)
		}
	}
	for pkg, seen := range documented {
		p := programs[pkg]
		for _, name := range slices.Sorted(maps.Keys(p.flags)) {
			if !seen[name] {
				t.Errorf("flag --%s of %s is in no flag table (default %q)", name, pkg, p.flags[name].def)
			}
		}
	}
}

func checkFlagTable(t *testing.T, tb table, p *program, seen map[string]bool) {
	t.Helper()
	defCol, cmdCol := tb.column("default"), tb.column("commands")
	if defCol < 0 {
		t.Errorf("%s: a flag table needs a default column", tb.where(tb.line))
		return
	}
	for _, r := range tb.rows {
		at := tb.where(r.line)
		var long, short []string
		for _, s := range codeSpans(r.cells[0]) {
			name := strings.TrimLeft(s, "-")
			if p.cobra && !strings.HasPrefix(s, "--") {
				short = append(short, name)
			} else {
				long = append(long, name)
			}
		}
		if len(long) != 1 || len(short) > 1 {
			t.Errorf("%s: one flag per row (and at most its shorthand), found %q", at, codeSpans(r.cells[0]))
			continue
		}
		f := p.flags[long[0]]
		if f == nil {
			t.Errorf("%s: %s has no flag --%s", at, p.pkg, long[0])
			continue
		}
		seen[f.name] = true
		if len(short) == 1 && short[0] != f.shorthand {
			t.Errorf("%s: --%s has shorthand %q in %s, the table says -%s", at, f.name, f.shorthand, p.pkg, short[0])
		}
		if len(r.cells) <= defCol {
			t.Errorf("%s: no default cell", at)
			continue
		}
		if doc := docDefault(r.cells[defCol]); !sameDefault(f, doc) {
			t.Errorf("%s: --%s defaults to %q in %s, the table says %q", at, f.name, f.def, p.pkg, doc)
		}
		if cmdCol >= 0 && cmdCol < len(r.cells) {
			want := map[string]bool{}
			for _, c := range strings.Split(r.cells[cmdCol], ",") {
				want[strings.Trim(strings.TrimSpace(c), "`")] = true
			}
			if !maps.Equal(want, f.commands) {
				t.Errorf("%s: --%s is on %v in %s, the table says %v", at, f.name, slices.Sorted(maps.Keys(f.commands)), p.pkg, slices.Sorted(maps.Keys(want)))
			}
		}
	}
}
