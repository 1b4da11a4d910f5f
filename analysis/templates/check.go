package templates

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"
)

// Limits on a query template and on what it renders to (issue 14). A query
// is text with field references: its output is at most a few times its
// length, and it runs in time linear in it. The limits bound the work a
// MetricTemplate or an inline query can ask of the controller and of the
// webhook, which renders every query it admits.
const (
	// MaxTemplateLength is the longest query template, in characters: the
	// CRD's maxLength of every query field, enforced here too because an
	// AdmissionReview sent straight to the webhook skips the schema.
	MaxTemplateLength = 4096
	// MaxRenderedBytes is the longest rendered query. The longest built-in
	// renders to about 1.8 KiB (with 63-character names).
	MaxRenderedBytes = 16 << 10
)

// Fields are the fields of Data a query template may refer to, as
// .Field or $.Field.
var Fields = []string{"Namespace", "Service", "Subsets", "SubsetRegex", "Stable", "Candidate", "Window", "VersionLabel"}

// Functions are the functions a query template may call: index (a subset
// by position: index .Subsets 1), len and print. Every other function,
// printf included (its width can ask for gigabytes), is refused.
var Functions = []string{"index", "len", "print"}

// ErrTooLong: a template, or what it renders to, is over its limit.
var ErrTooLong = errors.New("query template too long")

// fieldList is Fields as a template writes them, for messages.
var fieldList = func() string {
	out := make([]string, len(Fields))
	for i, f := range Fields {
		out[i] = "." + f
	}
	return strings.Join(out, " ")
}()

// allowed says in a message what a query template may contain.
var allowed = fmt.Sprintf("a query template may contain only text, the fields %s, and the functions %s",
	fieldList, strings.Join(Functions, ", "))

// Check parses a query template and accepts it only when it is text,
// fields of Data (.Namespace, $.Window, ...) and calls of Functions, at
// most MaxTemplateLength characters long. It rejects range, if, with,
// template, define, block, variables and every other function, with an
// error that names the construct, where it is, and what to write instead.
// The template it returns runs with missingkey=error. Check is the one
// gate of every query template: Template.Render calls it, so the
// controller (analysis.Engine) and the webhook (package validation) parse
// templates only through it.
func Check(name, src string) (*template.Template, error) {
	if n := utf8.RuneCountInString(src); n > MaxTemplateLength {
		return nil, fmt.Errorf("%s: %w: %d characters, more than the %d allowed; shorten the query", name, ErrTooLong, n, MaxTemplateLength)
	}
	tree := parse.New(name)
	// Unknown functions are reported by the walk below, with the list of
	// those allowed, rather than by the parser.
	tree.Mode = parse.SkipFuncCheck
	trees := map[string]*parse.Tree{}
	if _, err := tree.Parse(src, "", "", trees); err != nil {
		return nil, fmt.Errorf("%w; %s", err, allowed)
	}
	for other := range trees {
		if other != name {
			return nil, fmt.Errorf("%s: {{define}} and {{block}} (here %q) are not allowed: %s; write the query out in full", name, other, allowed)
		}
	}
	c := checker{tree: tree}
	c.list(tree.Root)
	if c.err != nil {
		return nil, c.err
	}
	t, err := template.New(name).Option("missingkey=error").AddParseTree(name, tree)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// checker walks a parse tree and keeps the first construct it refuses.
type checker struct {
	tree *parse.Tree
	err  error
}

func (c *checker) fail(n parse.Node, what, fix string) {
	if c.err != nil {
		return
	}
	loc, _ := c.tree.ErrorContext(n)
	c.err = fmt.Errorf("%s: %s is not allowed in a query template: %s; %s", loc, what, fix, allowed)
}

func (c *checker) list(l *parse.ListNode) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		c.node(n)
	}
}

func (c *checker) node(n parse.Node) {
	switch n := n.(type) {
	case *parse.TextNode, *parse.CommentNode:
	case *parse.ActionNode:
		c.pipe(n.Pipe)
	case *parse.RangeNode, *parse.BreakNode, *parse.ContinueNode:
		c.fail(n, "{{range}}", "a loop's output has no bound; .SubsetRegex matches every subset (v1|v2), and index .Subsets 1 is one of them")
	case *parse.IfNode:
		c.fail(n, "{{if}}", "write the query for the case at hand; .Candidate and .Stable are always set during analysis")
	case *parse.WithNode:
		c.fail(n, "{{with}}", "refer to the field itself, such as .Candidate")
	case *parse.TemplateNode:
		c.fail(n, "{{template}}", "write the query out in full")
	default:
		c.fail(n, fmt.Sprintf("%T", n), "use text and fields only")
	}
}

func (c *checker) pipe(p *parse.PipeNode) {
	if p == nil {
		return
	}
	if len(p.Decl) > 0 {
		c.fail(p, "declaring or assigning a variable ($x := ...)", "refer to the field itself, such as .Namespace or $.Namespace")
		return
	}
	for i, cmd := range p.Cmds {
		c.command(cmd, i > 0)
	}
}

// command checks one command of a pipeline; piped is true for commands
// after the first, which receive the previous result as their last
// argument and so must be functions.
func (c *checker) command(cmd *parse.CommandNode, piped bool) {
	if len(cmd.Args) == 0 {
		return
	}
	head := cmd.Args[0]
	if id, ok := head.(*parse.IdentifierNode); ok {
		if !slices.Contains(Functions, id.Ident) {
			c.fail(id, fmt.Sprintf("function %q", id.Ident), "use text and fields, or one of the functions listed next")
			return
		}
		for _, a := range cmd.Args[1:] {
			c.operand(a)
		}
		return
	}
	if piped {
		c.fail(head, fmt.Sprintf("piping into %s", head), "only a function can take a piped value, such as {{.Subsets | len}}")
		return
	}
	if len(cmd.Args) > 1 {
		c.fail(cmd, fmt.Sprintf("calling %s with arguments", head), "fields take no arguments")
		return
	}
	c.operand(head)
}

func (c *checker) operand(n parse.Node) {
	switch n := n.(type) {
	case *parse.FieldNode:
		c.field(n, n.Ident, "."+strings.Join(n.Ident, "."))
	case *parse.VariableNode:
		// $ is the data; $.Field is a field of it.
		if n.Ident[0] != "$" {
			c.fail(n, "variable "+n.Ident[0], "refer to the field itself, such as .Namespace or $.Namespace")
			return
		}
		if len(n.Ident) == 1 {
			c.fail(n, "$ alone (it prints all the data)", "name a field, such as $.Namespace")
			return
		}
		c.field(n, n.Ident[1:], strings.Join(n.Ident, "."))
	case *parse.DotNode:
		c.fail(n, "{{.}} (it prints all the data)", "name a field, such as .Namespace")
	case *parse.StringNode, *parse.NumberNode, *parse.BoolNode:
	case *parse.PipeNode:
		c.pipe(n)
	case *parse.IdentifierNode:
		c.command(&parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pos, Args: []parse.Node{n}}, false)
	case *parse.ChainNode:
		c.fail(n, "a field of a parenthesised value ("+n.String()+")", "refer to a field of the data, such as .Namespace")
	default:
		c.fail(n, n.String(), "use fields, strings and numbers as arguments")
	}
}

func (c *checker) field(n parse.Node, path []string, text string) {
	if len(path) != 1 || !slices.Contains(Fields, path[0]) {
		c.fail(n, "field "+text, "it is not one of the fields listed next (names are case-sensitive)")
	}
}

// limitWriter fails once more than n bytes have been written, which stops
// the template's execution.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("%w: it renders to more than %d bytes; shorten the query", ErrTooLong, MaxRenderedBytes)
	}
	l.n -= len(p)
	return l.w.Write(p)
}
