package main

import (
	"archive/tar"
	"bytes"
	"io"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var (
	created = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	meta    = Meta{Version: "v0.1.0", Commit: "0123456789abcdef0123456789abcdef01234567", Source: "https://github.com/fulcrum-ml/fulcrum", Created: created, CACertsVersion: "20230311+deb12u1"}
	fakeCA  = []byte("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n")
)

// fakeBinaries stand in for the real builds: the index's shape does not
// depend on what the binary is.
func fakeBinaries() []Binary {
	return []Binary{{Arch: "amd64", Data: []byte("amd64 binary")}, {Arch: "arm64", Data: []byte("arm64 binary")}}
}

func TestIndexShape(t *testing.T) {
	idx, err := buildIndex(meta, fakeCA, fakeBinaries())
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
		t.Fatalf("index media type %s", mt)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.Annotations["org.opencontainers.image.revision"] != meta.Commit {
		t.Fatalf("index annotations %v", im.Annotations)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("want 2 manifests, got %d", len(im.Manifests))
	}
	var baseLayers []v1.Hash
	for i, arch := range []string{"amd64", "arm64"} {
		d := im.Manifests[i]
		if d.MediaType != types.OCIManifestSchema1 || d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != arch {
			t.Fatalf("manifest %d: %s %+v", i, d.MediaType, d.Platform)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 2 || m.Layers[0].MediaType != types.OCILayer || m.Layers[1].MediaType != types.OCILayer {
			t.Fatalf("%s manifest %+v", arch, m)
		}
		baseLayers = append(baseLayers, m.Layers[0].Digest)
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != arch || !cf.Created.Time.Equal(created) {
			t.Fatalf("%s config platform/created %s/%s %s", arch, cf.OS, cf.Architecture, cf.Created)
		}
		if cf.Config.User != "65532:65532" || !reflect.DeepEqual(cf.Config.Entrypoint, []string{"/fulcrum"}) || cf.Config.Cmd != nil {
			t.Fatalf("%s user %q entrypoint %q cmd %q", arch, cf.Config.User, cf.Config.Entrypoint, cf.Config.Cmd)
		}
		for k, want := range map[string]string{
			"org.opencontainers.image.source":     meta.Source,
			"org.opencontainers.image.revision":   meta.Commit,
			"org.opencontainers.image.version":    meta.Version,
			"org.opencontainers.image.created":    "2026-06-01T12:00:00Z",
			"dev.fulcrum.ca-certificates.version": meta.CACertsVersion,
		} {
			if got := cf.Config.Labels[k]; got != want {
				t.Fatalf("%s label %s = %q, want %q", arch, k, got, want)
			}
		}
		for _, h := range cf.History {
			if !h.Created.Time.Equal(created) {
				t.Fatalf("%s history time %s", arch, h.Created)
			}
		}
	}
	if baseLayers[0] != baseLayers[1] {
		t.Fatalf("the base layer differs between architectures: %v", baseLayers)
	}
}

func TestDigestStable(t *testing.T) {
	digest := func(m Meta, bins []Binary) v1.Hash {
		t.Helper()
		idx, err := buildIndex(m, fakeCA, bins)
		if err != nil {
			t.Fatal(err)
		}
		h, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	first := digest(meta, fakeBinaries())
	if again := digest(meta, fakeBinaries()); again != first {
		t.Fatalf("same inputs, different digests: %s %s", first, again)
	}
	other := meta
	other.Version = "v0.1.1"
	changed := fakeBinaries()
	changed[1].Data = []byte("arm64 binary, rebuilt")
	for name, d := range map[string]v1.Hash{"version": digest(other, fakeBinaries()), "binary": digest(meta, changed)} {
		if d == first {
			t.Errorf("a different %s gave the same digest", name)
		}
	}
}

func TestLayerTar(t *testing.T) {
	b, err := layerTar(baseFiles(fakeCA), created.Add(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !h.ModTime.Equal(created) || h.Uname != "" || h.Gname != "" {
			t.Fatalf("%s: time %s owner names %q/%q", h.Name, h.ModTime, h.Uname, h.Gname)
		}
		want := 0
		if h.Name == "home/nonroot/" {
			want = nonRoot
		}
		if h.Uid != want || h.Gid != want {
			t.Fatalf("%s owned by %d:%d, want %d", h.Name, h.Uid, h.Gid, want)
		}
		if h.Name == "tmp/" && h.Mode != 0o1777 {
			t.Fatalf("tmp/ mode %o", h.Mode)
		}
	}
	want := []string{"etc/", "etc/group", "etc/passwd", "etc/ssl/", "etc/ssl/certs/", "etc/ssl/certs/ca-certificates.crt", "home/", "home/nonroot/", "tmp/"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("entries %q, want %q (sorted, nothing else)", names, want)
	}
	if _, err := layerTar([]file{{name: "a"}, {name: "a"}}, created); err == nil {
		t.Fatal("a duplicate entry was accepted")
	}
}

func TestWriteLayout(t *testing.T) {
	idx, err := buildIndex(meta, fakeCA, fakeBinaries())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "image")
	for range 2 { // the second write replaces the first
		if err := writeLayout(dir, idx, meta.Version); err != nil {
			t.Fatal(err)
		}
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != want || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "v0.1.0" {
		t.Fatalf("index.json %+v, want one entry %s named v0.1.0", im.Manifests, want)
	}
	s, err := summarize(idx)
	if err != nil {
		t.Fatal(err)
	}
	if s.index != want || len(s.platforms) != 2 || s.platforms[1].platform != "linux/arm64" || s.platforms[0].compressed <= 0 || s.platforms[0].uncompressed <= 0 {
		t.Fatalf("summary %+v", s)
	}
}

func TestParsePlatforms(t *testing.T) {
	tests := map[string]struct {
		in   string
		want []string
		err  bool
	}{
		"both":           {in: "linux/amd64, linux/arm64", want: []string{"amd64", "arm64"}},
		"one":            {in: "linux/arm64", want: []string{"arm64"}},
		"not linux":      {in: "darwin/arm64", err: true},
		"variant":        {in: "linux/arm/v7", err: true},
		"twice":          {in: "linux/amd64,linux/amd64", err: true},
		"no arch":        {in: "linux/", err: true},
		"not a platform": {in: "amd64", err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parsePlatforms(tc.in)
			if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parsePlatforms(%q) = %q, %v", tc.in, got, err)
			}
		})
	}
}
