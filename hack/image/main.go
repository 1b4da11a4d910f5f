// Command image builds Fulcrum's container image without a container
// runtime or registry: a static fulcrum binary per architecture, Debian's CA
// certificates and a non-root user, assembled with go-containerregistry into
// an OCI image index and written as an OCI image layout.
//
// The same commit gives the same digest: the binary is built with
// -trimpath and no build ID, every file time is the commit time
// (SOURCE_DATE_EPOCH), tar entries are sorted with numeric owners, and the
// layers are compressed once with fixed settings. What remains outside the
// commit is the Go release and the ca-certificates package version (which
// the image records as a label).
//
//	go -C hack/image run .    # bin/image of the checkout, linux/amd64 and linux/arm64
//	go -C hack/image run . -platforms linux/amd64 -version v0.1.0
//
// `make image` runs it with the Makefile's VERSION and COMMIT.
//
// It lives in its own module so that go-containerregistry and crane (pinned
// here as a tool for pushing) stay out of Fulcrum's go.mod.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

type options struct {
	root, out, pkg, platforms string
	version, commit, source   string
	sourceDateEpoch, caCerts  string
	caCertsVersion            string
}

func main() {
	var o options
	flag.StringVar(&o.root, "root", "", "Fulcrum checkout to build; the git top level of the working directory when empty")
	flag.StringVar(&o.out, "out", "bin/image", "OCI image layout to write (replaced), relative to -root unless absolute")
	flag.StringVar(&o.pkg, "pkg", "./cmd/fulcrum", "package to build as the entrypoint")
	flag.StringVar(&o.platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated platforms, in index order")
	flag.StringVar(&o.version, "version", "", "version to stamp and label; `git describe --tags --always --dirty` when empty")
	flag.StringVar(&o.commit, "commit", "", "commit to stamp and label; `git rev-parse HEAD` when empty")
	flag.StringVar(&o.source, "source", "https://github.com/fulcrum-ml/fulcrum", "repository URL for the org.opencontainers.image.source label")
	flag.StringVar(&o.sourceDateEpoch, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "file and creation time, seconds since 1970; the commit time when empty")
	flag.StringVar(&o.caCerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle from Debian's ca-certificates package")
	flag.StringVar(&o.caCertsVersion, "ca-certs-version", "", "version of the ca-certificates package for the label; asked of dpkg-query when empty")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, w io.Writer) error {
	start := time.Now()
	m, err := resolve(ctx, &o)
	if err != nil {
		return err
	}
	archs, err := parsePlatforms(o.platforms)
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(o.caCerts)
	if err != nil {
		return fmt.Errorf("CA certificates (install Debian's ca-certificates, or `make deps`): %w", err)
	}
	var bins []Binary
	for _, arch := range archs {
		data, err := goBuild(ctx, o.root, o.pkg, arch, m.Version, m.Commit)
		if err != nil {
			return err
		}
		bins = append(bins, Binary{Arch: arch, Data: data})
	}
	built := time.Since(start)
	idx, err := buildIndex(m, ca, bins)
	if err != nil {
		return err
	}
	if err := writeLayout(o.out, idx, m.Version); err != nil {
		return fmt.Errorf("write %s: %w", o.out, err)
	}
	sum, err := summarize(idx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "OCI layout %s: fulcrum %s (commit %s, created %s)\n", o.out, m.Version, m.Commit, m.Created.UTC().Format(time.RFC3339))
	sum.print(w)
	fmt.Fprintf(w, "built in %s (go build %s)\n", time.Since(start).Round(100*time.Millisecond), built.Round(100*time.Millisecond))
	return nil
}

// resolve fills the defaults that come from git and returns the metadata.
func resolve(ctx context.Context, o *options) (Meta, error) {
	var err error
	if o.root == "" {
		if o.root, err = git(ctx, "", "rev-parse", "--show-toplevel"); err != nil {
			return Meta{}, err
		}
	}
	if !strings.HasPrefix(o.out, "/") {
		o.out = o.root + "/" + o.out
	}
	if o.version == "" {
		if o.version, err = git(ctx, o.root, "describe", "--tags", "--always", "--dirty"); err != nil {
			return Meta{}, err
		}
	}
	if o.commit == "" {
		if o.commit, err = git(ctx, o.root, "rev-parse", "HEAD"); err != nil {
			return Meta{}, err
		}
	}
	if o.sourceDateEpoch == "" {
		if o.sourceDateEpoch, err = git(ctx, o.root, "log", "-1", "--format=%ct", "HEAD"); err != nil {
			return Meta{}, err
		}
	}
	secs, err := strconv.ParseInt(o.sourceDateEpoch, 10, 64)
	if err != nil {
		return Meta{}, fmt.Errorf("source date epoch %q: %w", o.sourceDateEpoch, err)
	}
	if o.caCertsVersion == "" {
		// Best effort: a machine without dpkg gets no label.
		out, _ := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Version}", "ca-certificates").Output()
		o.caCertsVersion = strings.TrimSpace(string(out))
	}
	return Meta{Version: o.version, Commit: o.commit, Source: o.source, Created: time.Unix(secs, 0).UTC(), CACertsVersion: o.caCertsVersion}, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// parsePlatforms returns the GOARCH of each linux/ARCH, refusing others.
func parsePlatforms(s string) ([]string, error) {
	var archs []string
	seen := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		goos, arch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok || goos != "linux" || arch == "" || strings.Contains(arch, "/") {
			return nil, fmt.Errorf("platform %q: want linux/GOARCH", p)
		}
		if seen[arch] {
			return nil, fmt.Errorf("platform %q twice", p)
		}
		seen[arch] = true
		archs = append(archs, arch)
	}
	return archs, nil
}
