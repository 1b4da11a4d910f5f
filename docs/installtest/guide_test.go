package installtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// command is one simple command of the guide, expanded as the shell would.
type command struct {
	line int    // in the Markdown file
	raw  string // as written
	args []string
	// stdin is the here-document fed to it, expanded unless its delimiter is
	// quoted; out is the file of a `> FILE` redirection.
	stdin, out string
}

func (c command) String() string { return fmt.Sprintf("install.md:%d: %s", c.line, c.raw) }

// hasPrefix reports whether the command's words start with words.
func (c command) hasPrefix(words ...string) bool {
	return len(c.args) >= len(words) && slices.Equal(c.args[:len(words)], words)
}

// flag returns the value of --name=V, --name V (or -short V), and whether
// it is there.
func (c command) flag(name, short string) (string, bool) {
	for i, a := range c.args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if (a == "--"+name || (short != "" && a == "-"+short)) && i+1 < len(c.args) {
			return c.args[i+1], true
		}
	}
	return "", false
}

// guideFile is the guide, relative to this package.
const guideFile = "../install.md"

// shBlock is a fenced ```sh block and the line its first line is on.
type shBlock struct {
	line int
	text string
}

func readShBlocks(t *testing.T) []shBlock {
	t.Helper()
	f, err := os.Open(guideFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out  []shBlock
		cur  *shBlock
		body strings.Builder
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```sh":
			cur = &shBlock{line: n + 1}
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.text = body.String()
			out = append(out, *cur)
			cur = nil
			body.Reset()
		case cur != nil:
			body.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s: the sh block at line %d is not closed", guideFile, cur.line)
	}
	return out
}

// shellEnv is the shell's variables. Get records the names of unset variables
// a command used.
type shellEnv struct {
	vars  map[string]string
	unset map[string]bool
}

func (e *shellEnv) Get(name string) expand.Variable {
	v, ok := e.vars[name]
	if !ok {
		e.unset[name] = true
		return expand.Variable{}
	}
	return expand.Variable{Set: true, Exported: true, Kind: expand.String, Str: v}
}

func (e *shellEnv) Each(fn func(string, expand.Variable) bool) {
	for k, v := range e.vars {
		if !fn(k, expand.Variable{Set: true, Exported: true, Kind: expand.String, Str: v}) {
			return
		}
	}
}

// shellVars are set by the reader's shell, not by the guide.
var shellVars = map[string]bool{"PATH": true, "PWD": true, "IFS": true, "HOME": true}

// assignment is a variable set by the guide.
type assignment struct {
	line        int
	name, value string
}

// guide is the guide's commands for one choice among the variables it sets
// more than once (the options of a step, such as PROMETHEUS_URL).
type guide struct {
	commands    []command
	assignments []assignment
	vars        map[string]string
}

// parseGuide reads every sh block. A variable assigned more than once keeps
// its pick-th value (the last one when pick is past it), so that each
// option can be checked; assignments reports every one.
func parseGuide(t *testing.T, pick int) *guide {
	t.Helper()
	g := &guide{vars: map[string]string{}}
	e := &shellEnv{vars: g.vars, unset: map[string]bool{}}
	seen := map[string]int{} // name → assignments so far
	var walk func(s *syntax.Stmt)
	cfg := &expand.Config{
		Env: e,
		// $(...) is not run: its commands are checked like the others, and
		// it stands for their output.
		CmdSubst: func(w io.Writer, cs *syntax.CmdSubst) error {
			for _, s := range cs.Stmts {
				walk(s)
			}
			_, err := fmt.Fprintf(w, "<output of line %d>", cs.Pos().Line())
			return err
		},
	}
	parser := syntax.NewParser()
	for _, b := range readShBlocks(t) {
		file, err := parser.Parse(strings.NewReader(b.text), guideFile)
		if err != nil {
			t.Fatalf("%s: the sh block at line %d does not parse: %v", guideFile, b.line, err)
		}
		lines := strings.Split(b.text, "\n")
		assign := func(a *syntax.Assign, line int) {
			if a.Value == nil {
				return
			}
			v, err := expand.Literal(cfg, a.Value)
			if err != nil {
				t.Fatalf("%s:%d: %v", guideFile, line, err)
			}
			name := a.Name.Value
			g.assignments = append(g.assignments, assignment{line: line, name: name, value: v})
			if seen[name] <= pick {
				g.vars[name] = v
			}
			seen[name]++
		}
		walk = func(s *syntax.Stmt) {
			line := b.line + int(s.Pos().Line()) - 1
			switch c := s.Cmd.(type) {
			case *syntax.BinaryCmd: // a | b, a && b
				walk(c.X)
				walk(c.Y)
			case *syntax.DeclClause: // export A=b
				for _, a := range c.Args {
					assign(a, line)
				}
			case *syntax.CallExpr:
				if len(c.Args) == 0 {
					for _, a := range c.Assigns {
						assign(a, line)
					}
					return
				}
				outer := e.unset
				e.unset = map[string]bool{}
				defer func() { e.unset = outer }()
				args, err := expand.Fields(cfg, c.Args...)
				if err != nil {
					t.Fatalf("%s:%d: %v", guideFile, line, err)
				}
				cmd := command{line: line, args: args, raw: strings.TrimSpace(lines[s.Pos().Line()-1])}
				for _, r := range s.Redirs {
					switch r.Op {
					case syntax.Hdoc, syntax.DashHdoc:
						if cmd.stdin, err = expand.Document(cfg, r.Hdoc); err != nil {
							t.Fatalf("%s:%d: here-document: %v", guideFile, line, err)
						}
					case syntax.RdrOut:
						if cmd.out, err = expand.Literal(cfg, r.Word); err != nil {
							t.Fatalf("%s:%d: %v", guideFile, line, err)
						}
					}
				}
				// A prefix assignment (ISTIO_VERSION=x sh -) is the command's
				// own; PATH, PWD and IFS are the shell's.
				for name := range e.unset {
					if !shellVars[name] && !slices.ContainsFunc(c.Assigns, func(a *syntax.Assign) bool { return a.Name.Value == name }) {
						t.Errorf("%s: uses $%s, which the guide does not set before", cmd, name)
					}
				}
				g.commands = append(g.commands, cmd)
			default:
				t.Fatalf("%s:%d: the tests do not know this kind of shell command (%T)", guideFile, line, c)
			}
		}
		for _, s := range file.Stmts {
			walk(s)
		}
	}
	if len(g.commands) == 0 {
		t.Fatalf("%s has no sh commands", guideFile)
	}
	return g
}

// choices is how many values the most often assigned variable takes: the
// number of guides to check.
func choices(g *guide) int {
	n := map[string]int{}
	most := 1
	for _, a := range g.assignments {
		n[a.name]++
		most = max(most, n[a.name])
	}
	return most
}

// repoRoot is the Fulcrum checkout.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}
