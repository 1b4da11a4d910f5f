package main

// A reader of OCI image layouts written with the standard library only, so
// that the image test checks hack/image's output with other code than the
// go-containerregistry that wrote it.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type ociIndex struct {
	MediaType   string            `json:"mediaType"`
	Manifests   []ociDescriptor   `json:"manifests"`
	Annotations map[string]string `json:"annotations"`
}

type ociManifest struct {
	MediaType string          `json:"mediaType"`
	Config    ociDescriptor   `json:"config"`
	Layers    []ociDescriptor `json:"layers"`
}

type ociConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		User       string            `json:"User"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		Env        []string          `json:"Env"`
		WorkingDir string            `json:"WorkingDir"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// ociLayout is an OCI image layout folder.
type ociLayout string

// blob reads a blob and checks it against its digest and size.
func (l ociLayout) blob(t *testing.T, d ociDescriptor) []byte {
	t.Helper()
	hexDigest, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok {
		t.Fatalf("digest %q is not sha256", d.Digest)
	}
	b, err := os.ReadFile(filepath.Join(string(l), "blobs", "sha256", hexDigest))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hexDigest || int64(len(b)) != d.Size {
		t.Fatalf("blob %s: content does not match its digest or size %d", d.Digest, d.Size)
	}
	return b
}

func (l ociLayout) json(t *testing.T, d ociDescriptor, v any) {
	t.Helper()
	if err := json.Unmarshal(l.blob(t, d), v); err != nil {
		t.Fatalf("%s: %v", d.Digest, err)
	}
}

// index is the one image index index.json points to.
func (l ociLayout) index(t *testing.T) (ociDescriptor, ociIndex) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(string(l), "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var top ociIndex
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if len(top.Manifests) != 1 || top.Manifests[0].MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("index.json should point to one image index: %+v", top.Manifests)
	}
	var idx ociIndex
	l.json(t, top.Manifests[0], &idx)
	return top.Manifests[0], idx
}

// unpack extracts the layers in order into dir, checking each layer's
// uncompressed digest against the config's diff IDs, and returns every
// entry's mode by path ("etc/", "fulcrum"). Only directories and regular
// files are expected; anything else fails.
func (l ociLayout) unpack(t *testing.T, m ociManifest, cfg ociConfig, dir string) map[string]os.FileMode {
	t.Helper()
	if len(m.Layers) != len(cfg.RootFS.DiffIDs) {
		t.Fatalf("%d layers, %d diff IDs", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	entries := map[string]os.FileMode{}
	for i, d := range m.Layers {
		if d.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
			t.Fatalf("layer %d media type %s", i, d.MediaType)
		}
		zr, err := gzip.NewReader(bytes.NewReader(l.blob(t, d)))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		tr := tar.NewReader(io.TeeReader(zr, h))
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := extract(dir, hdr, tr); err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			entries[hdr.Name] = hdr.FileInfo().Mode()
		}
		if _, err := io.Copy(io.Discard, zr); err != nil { // tar padding
			t.Fatal(err)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != cfg.RootFS.DiffIDs[i] {
			t.Fatalf("layer %d: uncompressed digest %s, config says %s", i, got, cfg.RootFS.DiffIDs[i])
		}
	}
	return entries
}

func extract(dir string, hdr *tar.Header, r io.Reader) error {
	name := filepath.Clean(hdr.Name)
	if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("entry %q leaves the root", hdr.Name)
	}
	path := filepath.Join(dir, name)
	mode := hdr.FileInfo().Mode()
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(path, 0o700); err != nil {
			return err
		}
	case tar.TypeReg:
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("entry %q has type %q: only directories and regular files are expected", hdr.Name, hdr.Typeflag)
	}
	if err := os.Chmod(path, mode.Perm()|mode&os.ModeSticky); err != nil {
		return err
	}
	if os.Getuid() == 0 { // as in a container, so the image's user owns its home
		return os.Lchown(path, hdr.Uid, hdr.Gid)
	}
	return nil
}
