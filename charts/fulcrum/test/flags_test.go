package test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// fulcrumFlags builds cmd/fulcrum from this checkout and reads the flags
// `fulcrum --help` lists, so the chart is checked against the binary itself
// (flags added by libraries, such as -v, included).
func fulcrumFlags(t *testing.T) map[string]bool {
	t.Helper()
	flagsOnce.Do(func() {
		dir := t.TempDir()
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "fulcrum"), "./cmd/fulcrum")
		build.Dir = repoRoot(t)
		if out, err := build.CombinedOutput(); err != nil {
			flagsErr = "go build ./cmd/fulcrum: " + err.Error() + "\n" + string(out)
			return
		}
		var out bytes.Buffer
		help := exec.Command(filepath.Join(dir, "fulcrum"), "--help")
		help.Stdout, help.Stderr = &out, &out
		if err := help.Run(); err != nil {
			flagsErr = "fulcrum --help: " + err.Error() + "\n" + out.String()
			return
		}
		flagsSeen = map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)^  -([A-Za-z0-9][A-Za-z0-9_-]*)`).FindAllStringSubmatch(out.String(), -1) {
			flagsSeen[m[1]] = true
		}
		if len(flagsSeen) == 0 {
			flagsErr = "fulcrum --help lists no flags:\n" + out.String()
		}
	})
	if flagsErr != "" {
		t.Fatal(flagsErr)
	}
	return flagsSeen
}

var (
	flagsOnce sync.Once
	flagsSeen map[string]bool
	flagsErr  string
)

// flagName is the name of a command-line argument such as --a-b=c or -v=0.
func flagName(arg string) string {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return name
}

// TestChartFlagsExistInTheBinary: every flag the chart passes, in every
// value set, is one the fulcrum binary defines.
func TestChartFlagsExistInTheBinary(t *testing.T) {
	known := fulcrumFlags(t)
	used := map[string]bool{}
	for name, vs := range valueSets {
		t.Run(name, func(t *testing.T) {
			d := one[appsv1.Deployment](t, render(t, vs, false), "Deployment", vs.releaseName()+suffix(vs))
			for _, arg := range d.Spec.Template.Spec.Containers[0].Args {
				if !strings.HasPrefix(arg, "-") {
					t.Errorf("argument %q is not a flag", arg)
					continue
				}
				used[flagName(arg)] = true
				if !known[flagName(arg)] {
					t.Errorf("the chart passes %s, which fulcrum --help does not list", arg)
				}
			}
		})
	}
	var unused []string
	for f := range known {
		if !used[f] {
			unused = append(unused, f)
		}
	}
	slices.Sort(unused)
	t.Logf("flags no value set passes (reachable through extraArgs): %v", unused)
}
