package docs

import (
	"maps"
	"strings"
	"testing"
)

func TestGoFlagsParse(t *testing.T) {
	help := "Usage of x:\n" +
		"  -a\tone-letter bool, same line\n" +
		"  -addr string\n    \taddress (default \":8080\")\n" +
		"  -batch\n    \tbatch (default true)\n" +
		"  -lease duration\n    \tlease (default 15s)\n" +
		"  -name string\n    \ta name; empty means\n    \tall of them\n" +
		"  -qps float\n    \tqps (default 50)\n" +
		"  -v value\n    \tverbosity\n"
	got, err := goFlags(help)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]flagDef{
		"a":     {name: "a", typ: "bool", def: "false"},
		"addr":  {name: "addr", typ: "string", def: ":8080", printed: true},
		"batch": {name: "batch", typ: "bool", def: "true", printed: true},
		"lease": {name: "lease", typ: "duration", def: "15s", printed: true},
		"name":  {name: "name", typ: "string", def: ""},
		"qps":   {name: "qps", typ: "float", def: "50", printed: true},
		"v":     {name: "v", typ: "value", def: ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d flags, want %d: %v", len(got), len(want), got)
	}
	for k, w := range want {
		if g := got[k]; g == nil || g.name != w.name || g.typ != w.typ || g.def != w.def || g.printed != w.printed {
			t.Errorf("%s: got %+v, want %+v", k, g, w)
		}
	}
	for doc, ok := range map[string]bool{"15s": true, "15000ms": true, "15": false} {
		if sameDefault(got["lease"], doc) != ok {
			t.Errorf("lease vs %q: want %v", doc, ok)
		}
	}
	for doc, ok := range map[string]bool{"0": true, "": true, "1": false} {
		if sameDefault(got["v"], doc) != ok {
			t.Errorf("v vs %q: want %v", doc, ok)
		}
	}
}

func TestCobraFlagsParse(t *testing.T) {
	root := "Usage:\n  x [command]\n\nAvailable Commands:\n  completion  Generate\n  help        Help\n  start       Start\n  version     Version\n\n" +
		"Flags:\n  -h, --help            help for x\n  -o, --output string   format (default \"text\")\n      --timeout duration   t (default 30s)\n\nUse \"x [command] --help\"\n"
	sub := map[string]string{
		"start":   "Flags:\n      --candidate string   the subset\n  -h, --help   help\n      --wait   wait\n\nGlobal Flags:\n  -o, --output string   format (default \"text\")\n",
		"version": "Flags:\n      --client   client only\n  -h, --help   help\n",
		// A group: its commands' flags are read from their own help.
		"experiment":       "Available Commands:\n  start       Start\n\nFlags:\n  -h, --help   help\n\nGlobal Flags:\n  -o, --output string   format (default \"text\")\n",
		"experiment start": "Flags:\n      --arm string   the arm\n  -h, --help   help\n      --wait   wait\n",
	}
	help := func(args ...string) string { return sub[strings.Join(args[:len(args)-1], " ")] }
	got, err := cobraFlags(strings.Replace(root, "  start       Start\n", "  experiment  Experiments\n  start       Start\n", 1), help)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name, short, typ, def string, cmds ...string) {
		t.Helper()
		f := got[name]
		want := map[string]bool{}
		for _, c := range cmds {
			want[c] = true
		}
		if f == nil || f.shorthand != short || f.typ != typ || f.def != def || !maps.Equal(f.commands, want) {
			t.Errorf("%s: got %+v", name, f)
		}
	}
	check("output", "o", "string", "text", "all")
	check("timeout", "", "duration", "30s", "all")
	check("candidate", "", "string", "", "start")
	check("wait", "", "bool", "false", "start", "experiment start")
	check("arm", "", "string", "", "experiment start")
	check("client", "", "bool", "false", "version")
	if len(got) != 6 {
		t.Errorf("got %d flags: %v", len(got), got)
	}
}
