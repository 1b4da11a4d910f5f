package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image runs /fulcrum as this numeric user and group (distroless's
// "nonroot"), so Kubernetes' runAsNonRoot can check it without a passwd
// lookup.
const (
	nonRoot    = 65532
	entrypoint = "/fulcrum"
	caPath     = "etc/ssl/certs/ca-certificates.crt"
)

// Meta is what every image of a build is stamped with.
type Meta struct {
	Version string // v0.1.0 or `git describe` output
	Commit  string // full git revision
	Source  string // repository URL
	// Created is the commit time (SOURCE_DATE_EPOCH): every file time,
	// the config's created field and the label.
	Created time.Time
	// CACertsVersion is the Debian ca-certificates package version the
	// certificates came from; recorded as a label when known.
	CACertsVersion string
}

// Binary is the fulcrum executable built for one architecture.
type Binary struct {
	Arch string // GOARCH
	Data []byte
}

// baseFiles are the same on every architecture: CA certificates, a passwd
// and group naming root and nonroot (no login shell), a home for nonroot and
// a sticky /tmp. No shell and no other program.
func baseFiles(caCerts []byte) []file {
	return []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: caPath, mode: 0o644, data: caCerts},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: nonRoot, gid: nonRoot},
		{name: "tmp/", mode: 0o1777},
	}
}

// labels are the OCI annotations of the image config, also set on the index.
func labels(m Meta) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":    "fulcrum",
		"org.opencontainers.image.source":   m.Source,
		"org.opencontainers.image.revision": m.Commit,
		"org.opencontainers.image.version":  m.Version,
		"org.opencontainers.image.created":  m.Created.UTC().Format(time.RFC3339),
	}
	if m.CACertsVersion != "" {
		l["dev.fulcrum.ca-certificates.version"] = m.CACertsVersion
	}
	return l
}

// buildIndex assembles one image per binary over the shared base layer and
// an OCI image index of them, in the order given.
func buildIndex(m Meta, caCerts []byte, bins []Binary) (v1.ImageIndex, error) {
	base, err := newLayer(baseFiles(caCerts), m.Created)
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, b := range bins {
		img, err := buildImage(m, base, b)
		if err != nil {
			return nil, fmt.Errorf("linux/%s: %w", b.Arch, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: b.Arch}},
		})
	}
	return mutate.Annotations(idx, labels(m)).(v1.ImageIndex), nil
}

// buildImage is the base layer plus /fulcrum, run as nonroot.
func buildImage(m Meta, base v1.Layer, b Binary) (v1.Image, error) {
	bin, err := newLayer([]file{{name: entrypoint[1:], mode: 0o755, data: b.Data}}, m.Created)
	if err != nil {
		return nil, fmt.Errorf("binary layer: %w", err)
	}
	created := v1.Time{Time: m.Created.UTC()}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "hack/image: CA certificates (Debian ca-certificates), passwd, /tmp"}},
		mutate.Addendum{Layer: bin, History: v1.History{Created: created, CreatedBy: "hack/image: go build ./cmd/fulcrum (CGO_ENABLED=0, -trimpath)"}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", b.Arch, created
	user := strconv.Itoa(nonRoot)
	cf.Config = v1.Config{
		User:       user + ":" + user,
		Entrypoint: []string{entrypoint},
		WorkingDir: "/",
		Env:        []string{"SSL_CERT_FILE=/" + caPath},
		Labels:     labels(m),
	}
	return mutate.ConfigFile(img, cf)
}

// writeLayout replaces dir with an OCI image layout holding idx, named by
// version (org.opencontainers.image.ref.name) in index.json.
func writeLayout(dir string, idx v1.ImageIndex, version string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": version}))
}
