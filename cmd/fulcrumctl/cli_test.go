package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/admin"
	"github.com/fulcrum-ml/fulcrum/admin/admintest"
	fclient "github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

var env *localenv.Env

func TestMain(m *testing.M) {
	opts := localenv.APIServerOnly()
	for _, u := range admintest.TestUsers {
		opts.Users = append(opts.Users, localenv.User{Name: u.Name, Groups: u.Groups})
	}
	os.Exit(localenv.Main(m, opts, &env))
}

// testServerBuild is the build the admin server reports.
var testServerBuild = admin.BuildInfo{Version: "v9.9.9-test", Commit: "0123abcd", GoVersion: "go1.26.8", Platform: "linux/arm64"}

type cli struct {
	t     *testing.T
	bin   string
	env   []string
	ns    string
	run   *admintest.Running
	token map[string]string
}

func setupCLI(t *testing.T) *cli {
	t.Helper()
	if env == nil {
		t.Skip("needs the local Kubernetes environment (not under -short)")
	}
	bin := filepath.Join(t.TempDir(), "fulcrumctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx := context.Background()
	if err := admintest.InstallRoles(ctx, env.Client); err != nil {
		t.Fatal(err)
	}
	run := admintest.Start(t, env.Config, admintest.Options{Quiet: true, Version: testServerBuild})
	ns, err := env.CreateNamespace(ctx, "cli")
	if err != nil {
		t.Fatal(err)
	}
	tok := map[string]string{}
	for _, u := range env.Users {
		tok[u.Name] = u.Token
	}
	return &cli{t: t, bin: bin, ns: ns, run: run, token: tok,
		env: []string{"FULCRUM_SERVER=" + run.URL, "FULCRUM_TOKEN=" + tok["alice"], "HOME=" + t.TempDir()}}
}

// exec runs the binary and returns its exit code and output.
func (c *cli) exec(extraEnv []string, args ...string) (int, string, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH")}, c.env...), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func TestCLIReadsAndUsage(t *testing.T) {
	c := setupCLI(t)
	ctx := context.Background()
	if _, err := c.run.Fixture(ctx, c.ns, v1alpha1.PhaseProgressing); err != nil {
		t.Fatal(err)
	}
	waitCached(t, c, func(string) bool { return true })

	code, out, errOut := c.exec(nil, "list", "-n", c.ns)
	if code != 0 || !strings.Contains(out, "NAMESPACE") || !strings.Contains(out, "fraud") || !strings.Contains(out, "Progressing") {
		t.Fatalf("list: %d %q %q", code, out, errOut)
	}
	code, out, _ = c.exec(nil, "get", "fraud", "-n", c.ns, "-o", "json")
	var mr v1alpha1.ModelRollout
	if code != 0 || json.Unmarshal([]byte(out), &mr) != nil || mr.Name != "fraud" || mr.Kind != "ModelRollout" {
		t.Fatalf("get -o json: %d %q", code, out)
	}
	if code, out, _ = c.exec(nil, "whoami", "-n", c.ns); code != 0 || !strings.Contains(out, "user: alice") || !strings.Contains(out, "rollback") {
		t.Fatalf("whoami: %d %q", code, out)
	}
	// version needs no token.
	if code, out, errOut = c.exec([]string{"FULCRUM_TOKEN="}, "version"); code != 0 || !strings.Contains(out, "Client: ") ||
		!strings.Contains(out, "Server: v9.9.9-test (commit 0123abcd, go1.26.8, linux/arm64)") {
		t.Fatalf("version: %d %q %q", code, out, errOut)
	}
	// Usage errors: 3.
	for _, args := range [][]string{{"start", "fraud", "-n", c.ns}, {"split", "fraud", "v1=70", "-n", c.ns}, {"get"}, {"list", "--bogus"}, {"split", "fraud", "v1=7.5", "v2=92.5", "-n", c.ns}} {
		if code, _, errOut := c.exec(nil, args...); code != 3 || !strings.Contains(errOut, "error:") {
			t.Errorf("%v: exit %d, want 3 (%s)", args, code, errOut)
		}
	}
	// No server, unreachable server: 3.
	if code, _, errOut := c.exec([]string{"FULCRUM_SERVER="}, "list"); code != 3 || !strings.Contains(errOut, "FULCRUM_SERVER") {
		t.Errorf("no server: %d %s", code, errOut)
	}
	if code, _, _ := c.exec([]string{"FULCRUM_SERVER=http://127.0.0.1:1"}, "list"); code != 3 {
		t.Errorf("unreachable: %d", code)
	}
	// Refused by the server: 1, with the problem's detail.
	code, _, errOut = c.exec([]string{"FULCRUM_TOKEN=" + c.token["vera"]}, "rollback", "fraud", "-n", c.ns, "--reason", "x")
	if code != 1 || !strings.Contains(errOut, "may not 'rollback'") {
		t.Fatalf("forbidden: %d %s", code, errOut)
	}
	code, _, errOut = c.exec(nil, "split", "fraud", "v1=70", "v9=30", "-n", c.ns)
	if code != 1 || !strings.Contains(errOut, `"v9"`) {
		t.Fatalf("unknown subset: %d %s", code, errOut)
	}
}

// waitCached waits until the admin API's cache shows the rollout in a state
// match accepts (reads come from the informer cache).
func waitCached(t *testing.T, c *cli, match func(out string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, _ := c.exec(nil, "get", "fraud", "-n", c.ns, "-o", "json")
		if code == 0 && match(out) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout not visible through the API: %d %s", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// playController waits for the next intent on the rollout and answers it
// with the given phases in turn, as the controller would.
func playController(t *testing.T, c *cli, phases ...v1alpha1.Phase) chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			var mr v1alpha1.ModelRollout
			if err := c.run.Client.Get(ctx, client.ObjectKey{Namespace: c.ns, Name: "fraud"}, &mr); err != nil {
				done <- err
				return
			}
			if mr.Spec.Intent != nil && mr.Spec.Intent.ID != mr.Status.ObservedIntent {
				for _, p := range phases {
					time.Sleep(200 * time.Millisecond)
					if err := c.run.Observe(ctx, c.ns, "fraud", p, v1alpha1.SubsetWeight{Subset: "v1", Weight: 50}, v1alpha1.SubsetWeight{Subset: "v2", Weight: 50}); err != nil {
						done <- err
						return
					}
				}
				done <- nil
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		done <- ctx.Err()
	}()
	return done
}

func TestCLIWaitExitCodes(t *testing.T) {
	c := setupCLI(t)
	ctx := context.Background()
	if _, err := c.run.Fixture(ctx, c.ns, v1alpha1.PhaseStable); err != nil {
		t.Fatal(err)
	}
	waitCached(t, c, func(string) bool { return true })

	// Promoted: exit 0.
	ctrl := playController(t, c, v1alpha1.PhaseProgressing, v1alpha1.PhasePromoted)
	code, out, errOut := c.exec(nil, "start", "fraud", "-n", c.ns, "--candidate", "v2", "--reason", "ci", "--wait", "--timeout", "30s")
	if err := <-ctrl; err != nil {
		t.Fatal(err)
	}
	if code != 0 || !strings.Contains(out, "Promoted") || !strings.Contains(out, "phase=Progressing") {
		t.Fatalf("promoted: exit %d\n%s\n%s", code, out, errOut)
	}

	// Rolled back: exit 1 (JSON output names the result).
	waitCached(t, c, func(out string) bool { return strings.Contains(out, `"Promoted"`) })
	ctrl = playController(t, c, v1alpha1.PhaseProgressing, v1alpha1.PhaseRolledBack)
	code, out, errOut = c.exec(nil, "start", "fraud", "-n", c.ns, "--candidate", "v3", "--wait", "--timeout", "30s", "-o", "json")
	if err := <-ctrl; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last struct {
		Result   string `json:"result"`
		ExitCode int    `json:"exitCode"`
	}
	if code != 1 || json.Unmarshal([]byte(lines[len(lines)-1]), &last) != nil || last.Result != "RolledBack" || last.ExitCode != 1 {
		t.Fatalf("rolled back: exit %d\n%s\n%s", code, out, errOut)
	}

	// Nobody applies the intent: exit 2 after the timeout.
	waitCached(t, c, func(out string) bool { return strings.Contains(out, `"RolledBack"`) })
	code, out, errOut = c.exec(nil, "start", "fraud", "-n", c.ns, "--candidate", "v2", "--wait", "--timeout", "2s")
	if code != 2 || !strings.Contains(out, "timed out") {
		t.Fatalf("timeout: exit %d\n%s\n%s", code, out, errOut)
	}
	// The intent is still pending: a different action now is refused (1),
	// and the error shows the server's detail.
	if code, _, errOut := c.exec(nil, "pause", "fraud", "-n", c.ns); code != 1 || !strings.Contains(errOut, "not been applied") {
		t.Fatalf("pending: exit %d %s", code, errOut)
	}
	code, _, errOut = c.exec(nil, "start", "fraud", "-n", c.ns, "--candidate", "v3")
	if code != 1 || !strings.Contains(errOut, `409 Previous action pending:`) || !strings.Contains(errOut, `start of candidate "v2" requested by alice`) {
		t.Fatalf("start over a pending start: exit %d %s", code, errOut)
	}
	// A rollback is not refused: it supersedes the pending start at once.
	code, out, errOut = c.exec(nil, "rollback", "fraud", "-n", c.ns, "--reason", "wrong build")
	if code != 0 || !strings.Contains(out, "it supersedes the pending start by alice") {
		t.Fatalf("rollback over a pending start: exit %d\n%s\n%s", code, out, errOut)
	}
	// History shows who asked and why.
	code, out, _ = c.exec(nil, "history", "fraud", "-n", c.ns)
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "ci") {
		t.Fatalf("history: %d %s", code, out)
	}
}

// TestCLIWaitEndsWhenSuperseded: start --wait ends (exit 1) as soon as a
// rollback supersedes the start, instead of waiting for a phase that will not
// come.
func TestCLIWaitEndsWhenSuperseded(t *testing.T) {
	c := setupCLI(t)
	ctx := context.Background()
	if _, err := c.run.Fixture(ctx, c.ns, v1alpha1.PhaseStable); err != nil {
		t.Fatal(err)
	}
	waitCached(t, c, func(string) bool { return true })
	rolledBack := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ada := &fclient.Client{Server: c.run.URL, Token: c.token["ada"]}
		for ctx.Err() == nil {
			var mr v1alpha1.ModelRollout
			if err := c.run.Client.Get(ctx, client.ObjectKey{Namespace: c.ns, Name: "fraud"}, &mr); err == nil && mr.Spec.Intent != nil {
				_, err := ada.Act(ctx, c.ns, "fraud", "rollback", fclient.ActionRequest{Reason: "not today"})
				rolledBack <- err
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		rolledBack <- ctx.Err()
	}()
	start := time.Now()
	code, out, errOut := c.exec(nil, "start", "fraud", "-n", c.ns, "--candidate", "v2", "--wait", "--timeout", "30s")
	if err := <-rolledBack; err != nil {
		t.Fatal(err)
	}
	if code != 1 || !strings.Contains(out, "NotApplied: superseded by rollback from ada") || time.Since(start) > 20*time.Second {
		t.Fatalf("exit %d after %s\n%s\n%s", code, time.Since(start), out, errOut)
	}
}
