package certs

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// Source serves the current certificate to a TLS listener and keeps it
// current until ctx ends.
type Source interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	Start(ctx context.Context) error
}

// FromFiles reads DIR/certName and DIR/keyName now (an error if they are
// missing or do not match) and reloads them whenever they change: kubelet
// swaps a mounted Secret's files on rotation (cert-manager renewals), and
// the server picks the new pair up on the next handshake, without a restart.
// The files are watched with fsnotify and re-read every interval as well, in
// case an event is missed.
func FromFiles(dir, certName, keyName string, interval time.Duration) (Source, error) {
	w, err := certwatcher.New(filepath.Join(dir, certName), filepath.Join(dir, keyName))
	if err != nil {
		return nil, fmt.Errorf("load webhook certificate from %s: %w", dir, err)
	}
	if interval > 0 {
		w = w.WithWatchInterval(interval)
	}
	return w, nil
}
