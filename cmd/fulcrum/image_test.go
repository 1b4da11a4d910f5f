package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
)

const imageVersion = "v0.0.0-imagetest"

// TestImage builds the release image with hack/image for this machine's
// architecture (`make image` builds amd64 and arm64; hack/image's own tests
// check the two-platform index), twice, then unpacks its layers and runs its
// entrypoint as the image's user in a chroot of them: --version, and the
// controller against a real kube-apiserver until /readyz answers.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the image and starts a kube-apiserver")
	}
	root, err := localenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	builder := filepath.Join(tmp, "image-builder")
	mustRun(t, exec.Command("go", "-C", filepath.Join(root, "hack", "image"), "build", "-o", builder, "."))

	// Given the image built twice from this checkout
	platform := "linux/" + runtime.GOARCH
	var layouts [2]ociLayout
	var digests [2]string
	for i := range layouts {
		layouts[i] = ociLayout(filepath.Join(tmp, fmt.Sprintf("image-%d", i)))
		start := time.Now()
		out := mustRun(t, exec.Command(builder, "-root", root, "-out", string(layouts[i]), "-platforms", platform, "-version", imageVersion))
		t.Logf("build %d in %s:\n%s", i+1, time.Since(start).Round(time.Second), out)
		d, _ := layouts[i].index(t)
		digests[i] = d.Digest
	}
	// Then both builds have the same digest
	if digests[0] != digests[1] {
		t.Fatalf("two builds of one checkout differ: %s and %s", digests[0], digests[1])
	}
	layout := layouts[0]
	_, idx := layout.index(t)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Platform == nil || idx.Manifests[0].Platform.OS+"/"+idx.Manifests[0].Platform.Architecture != platform {
		t.Fatalf("index manifests %+v, want one for %s", idx.Manifests, platform)
	}
	var m ociManifest
	layout.json(t, idx.Manifests[0], &m)
	var cfg ociConfig
	layout.json(t, m.Config, &cfg)

	// And its config runs /fulcrum as a numeric non-root user, labelled
	commit := strings.TrimSpace(mustRun(t, exec.Command("git", "-C", root, "rev-parse", "HEAD")))
	uid, gid := imageUser(t, cfg.Config.User)
	if uid == 0 || gid == 0 {
		t.Fatalf("image user %q is root", cfg.Config.User)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != "/fulcrum" || len(cfg.Config.Cmd) != 0 {
		t.Fatalf("entrypoint %q cmd %q, want [/fulcrum] and none", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.source":   "https://github.com/fulcrum-ml/fulcrum",
		"org.opencontainers.image.revision": commit,
		"org.opencontainers.image.version":  imageVersion,
	} {
		if got := cfg.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}

	// And its layers hold one executable, static, and no shell
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	entries := layout.unpack(t, m, cfg, rootfs)
	checkFiles(t, rootfs, entries)

	// When its entrypoint is asked for the version
	out, err := entrypoint(rootfs, cfg, uid, gid, "--version").CombinedOutput()
	// Then it prints the stamped version
	if err != nil || !strings.HasPrefix(string(out), "fulcrum "+imageVersion+" (commit "+commit) {
		t.Fatalf("--version: %v\n%s", err, out)
	}

	// When it runs the controller against a real API server, logging JSON
	ctx := t.Context()
	env, err := localenv.Start(ctx, localenv.APIServerOnly())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	kubeconfig, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "kubeconfig"), kubeconfig, 0o644); err != nil {
		t.Fatal(err)
	}
	probe, metrics := freeAddr(t), freeAddr(t)
	logFile, err := os.Create(filepath.Join(tmp, "fulcrum.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	logs := func() string { b, _ := os.ReadFile(logFile.Name()); return string(b) }
	cmd := entrypoint(rootfs, cfg, uid, gid, "--kubeconfig=/kubeconfig", "--health-probe-bind-address="+probe,
		"--metrics-bind-address="+metrics, "--log-format=json")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })

	// Then it becomes ready
	start := time.Now()
	if err := waitReady(ctx, "http://"+probe+"/readyz", exited, 60*time.Second); err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, logs())
	}
	t.Logf("ready in %s", time.Since(start).Round(10*time.Millisecond))
	// And every log line is JSON, the first naming the version
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit 30s after SIGTERM\n%s", logs())
	}
	checkJSONLogs(t, []byte(logs()))
}

func mustRun(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%s: %v\n%s%s", strings.Join(cmd.Args, " "), err, out, ee.Stderr)
		}
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return string(out)
}

// imageUser parses a numeric "UID:GID", as Kubernetes' runAsNonRoot needs.
func imageUser(t *testing.T, user string) (int, int) {
	t.Helper()
	u, g, ok := strings.Cut(user, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("image user %q is not numeric UID:GID", user)
	}
	return uid, gid
}

// checkFiles: /fulcrum is the only executable file and a static binary;
// nothing that could be a shell exists; the CA bundle is Debian's.
func checkFiles(t *testing.T, rootfs string, entries map[string]os.FileMode) {
	t.Helper()
	for name, mode := range entries {
		if mode.IsRegular() && mode&0o111 != 0 && name != "fulcrum" {
			t.Errorf("%s is executable: only /fulcrum should be", name)
		}
		switch filepath.Base(strings.TrimSuffix(name, "/")) {
		case "sh", "bash", "ash", "dash", "busybox", "bin", "sbin":
			t.Errorf("%s is in the image", name)
		}
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "bin", "sh")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/bin/sh: %v", err)
	}
	f, err := elf.Open(filepath.Join(rootfs, "fulcrum"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("/fulcrum is dynamically linked")
		}
	}
	want, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt")); !bytes.Equal(got, want) {
		t.Errorf("the image's CA bundle is not this machine's /etc/ssl/certs/ca-certificates.crt")
	}
}

// entrypoint runs the image's entrypoint chrooted into rootfs as uid:gid,
// with the image's environment and working directory. Not root, it maps
// uid:gid to the caller in a new user namespace to be allowed the chroot.
func entrypoint(rootfs string, cfg ociConfig, uid, gid int, args ...string) *exec.Cmd {
	argv := append(append([]string(nil), cfg.Config.Entrypoint...), args...)
	cmd := &exec.Cmd{Path: argv[0], Args: argv, Env: cfg.Config.Env, Dir: cfg.Config.WorkingDir}
	attr := &syscall.SysProcAttr{
		Chroot:     rootfs,
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: os.Getuid() != 0},
		Pdeathsig:  syscall.SIGKILL,
	}
	if os.Getuid() != 0 {
		attr.Cloneflags = syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: os.Getuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: os.Getgid(), Size: 1}}
	}
	cmd.SysProcAttr = attr
	return cmd
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(ctx context.Context, url string, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.After(limit)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("the entrypoint exited before %s answered", url)
		case <-deadline:
			return fmt.Errorf("%s not ready after %s", url, limit)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkJSONLogs: every line is a JSON object, the first says which version
// started and the controller was enabled.
func checkJSONLogs(t *testing.T, logs []byte) {
	t.Helper()
	var msgs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q\nall logs:\n%s", sc.Text(), logs)
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 || msgs[0]["msg"] != "starting fulcrum" || msgs[0]["version"] != imageVersion {
		t.Fatalf("first log line should name the version %s:\n%s", imageVersion, logs)
	}
	for _, m := range msgs {
		if m["msg"] == "component enabled" && m["component"] == "controller" {
			return
		}
	}
	t.Fatalf("no 'component enabled' for the controller:\n%s", logs)
}
