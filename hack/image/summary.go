package main

import (
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
)

// summary is what `make image` prints: the digests, and per platform what a
// node pulls (compressed) and unpacks (uncompressed).
type summary struct {
	index     v1.Hash
	platforms []platformSummary
}

type platformSummary struct {
	platform     string
	digest       v1.Hash
	compressed   int64 // manifest, config and layers as stored and pulled
	uncompressed int64 // the layers' tar streams
}

func summarize(idx v1.ImageIndex) (summary, error) {
	var s summary
	var err error
	if s.index, err = idx.Digest(); err != nil {
		return s, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return s, err
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return s, err
		}
		m, err := img.Manifest()
		if err != nil {
			return s, err
		}
		p := platformSummary{platform: d.Platform.String(), digest: d.Digest, compressed: d.Size + m.Config.Size}
		for _, l := range m.Layers {
			p.compressed += l.Size
		}
		layers, err := img.Layers()
		if err != nil {
			return s, err
		}
		for _, l := range layers {
			u, err := partial.UncompressedSize(l)
			if err != nil {
				return s, err
			}
			p.uncompressed += u
		}
		s.platforms = append(s.platforms, p)
	}
	return s, nil
}

func (s summary) print(w io.Writer) {
	fmt.Fprintf(w, "%-12s %s\n", "index", s.index)
	for _, p := range s.platforms {
		fmt.Fprintf(w, "%-12s %s  compressed %s  uncompressed %s\n", p.platform, p.digest, mib(p.compressed), mib(p.uncompressed))
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
