package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the CA Secret.
const (
	SecretCACert = "ca.crt"
	SecretCAKey  = "ca.key"
)

// Validity of generated certificates; serving certificates are renewed in
// the last third of their life.
const (
	CAValidity      = 10 * 365 * 24 * time.Hour
	ServingValidity = 365 * 24 * time.Hour
)

// SelfSignedConfig configures generated certificates.
type SelfSignedConfig struct {
	// Client reads and writes the CA Secret and the webhook configurations.
	// Use an uncached client: a cached one would watch every Secret.
	Client client.Client
	// Namespace and SecretName of the Secret that holds the CA, so that
	// every replica serves certificates from the same CA and one caBundle
	// fits them all. Created at first start.
	Namespace, SecretName string
	// Hosts are the DNS names and IP addresses the API server dials, for
	// example fulcrum.fulcrum-system.svc (or 127.0.0.1 for a url webhook).
	Hosts []string
	// WebhookConfigurations are the ValidatingWebhookConfigurations whose
	// every webhook gets the CA as clientConfig.caBundle.
	WebhookConfigurations []string
	// CheckInterval is how often the caBundle is checked (re-applied
	// manifests may have emptied it) and the serving certificate renewal
	// considered; one minute when zero.
	CheckInterval time.Duration
	// Clock; the real one when nil.
	Clock clock.WithTicker
}

// SelfSigned generates the serving certificate from a CA it keeps in a
// Secret, and publishes the CA into the webhook configurations.
type SelfSigned struct {
	cfg     SelfSignedConfig
	ca      KeyPair
	current atomic.Pointer[tls.Certificate]
	expiry  time.Time
}

// NewSelfSigned checks the configuration; Setup does the work.
func NewSelfSigned(cfg SelfSignedConfig) (*SelfSigned, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("self-signed certificates need a client")
	case cfg.Namespace == "" || cfg.SecretName == "":
		return nil, errors.New("self-signed certificates need the namespace and name of the CA Secret")
	case len(cfg.Hosts) == 0:
		return nil, errors.New("self-signed certificates need at least one host (the webhook Service's DNS name)")
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &SelfSigned{cfg: cfg}, nil
}

// GetCertificate serves the current certificate.
func (s *SelfSigned) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := s.current.Load()
	if c == nil {
		return nil, errors.New("webhook certificate not generated yet")
	}
	return c, nil
}

// CABundle is the PEM CA the API server must trust (after Setup).
func (s *SelfSigned) CABundle() []byte { return s.ca.CertPEM }

// Setup loads or creates the CA, issues a serving certificate and publishes
// the caBundle. The server calls it before it listens.
func (s *SelfSigned) Setup(ctx context.Context) error {
	ca, err := s.loadOrCreateCA(ctx)
	if err != nil {
		return err
	}
	s.ca = ca
	if err := s.renew(); err != nil {
		return err
	}
	return s.inject(ctx)
}

// Start keeps the caBundle published and the serving certificate fresh
// until ctx ends.
func (s *SelfSigned) Start(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	t := s.cfg.Clock.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
		if s.cfg.Clock.Now().After(s.expiry.Add(-ServingValidity / 3)) {
			if err := s.renew(); err != nil {
				log.Error(err, "renew webhook serving certificate")
			}
		}
		if err := s.inject(ctx); err != nil {
			log.Error(err, "publish webhook caBundle")
		}
	}
}

func (s *SelfSigned) renew() error {
	kp, err := NewServingCert(s.ca, s.cfg.Hosts, s.cfg.Clock.Now(), ServingValidity)
	if err != nil {
		return err
	}
	c, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return fmt.Errorf("load serving certificate: %w", err)
	}
	s.current.Store(&c)
	s.expiry = s.cfg.Clock.Now().Add(ServingValidity)
	return nil
}

func (s *SelfSigned) loadOrCreateCA(ctx context.Context) (KeyPair, error) {
	key := client.ObjectKey{Namespace: s.cfg.Namespace, Name: s.cfg.SecretName}
	for range 3 {
		var sec corev1.Secret
		err := s.cfg.Client.Get(ctx, key, &sec)
		if err == nil {
			kp := KeyPair{CertPEM: sec.Data[SecretCACert], KeyPEM: sec.Data[SecretCAKey]}
			if _, _, perr := parse(kp); perr != nil {
				return KeyPair{}, fmt.Errorf("CA Secret %s is unusable (%v): delete it and restart to generate a new CA", key, perr)
			}
			return kp, nil
		}
		if !apierrors.IsNotFound(err) {
			return KeyPair{}, fmt.Errorf("read CA Secret %s: %w", key, err)
		}
		ca, err := NewCA("fulcrum-webhook-ca", s.cfg.Clock.Now(), CAValidity)
		if err != nil {
			return KeyPair{}, err
		}
		sec = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: map[string]string{"app.kubernetes.io/name": "fulcrum"}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{SecretCACert: ca.CertPEM, SecretCAKey: ca.KeyPEM},
		}
		err = s.cfg.Client.Create(ctx, &sec)
		if err == nil {
			return ca, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return KeyPair{}, fmt.Errorf("create CA Secret %s: %w", key, err)
		}
		// Another replica created it first: read theirs.
	}
	return KeyPair{}, fmt.Errorf("CA Secret %s: created and deleted concurrently, giving up", key)
}

// inject writes the CA into every webhook of the named configurations,
// updating only those that differ.
func (s *SelfSigned) inject(ctx context.Context) error {
	for _, name := range s.cfg.WebhookConfigurations {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var vwc admissionregistrationv1.ValidatingWebhookConfiguration
			if err := s.cfg.Client.Get(ctx, client.ObjectKey{Name: name}, &vwc); err != nil {
				return err
			}
			changed := false
			for i := range vwc.Webhooks {
				if !bytes.Equal(vwc.Webhooks[i].ClientConfig.CABundle, s.ca.CertPEM) {
					vwc.Webhooks[i].ClientConfig.CABundle = s.ca.CertPEM
					changed = true
				}
			}
			if !changed {
				return nil
			}
			return s.cfg.Client.Update(ctx, &vwc)
		})
		if err != nil {
			return fmt.Errorf("write caBundle into ValidatingWebhookConfiguration %s: %w", name, err)
		}
	}
	return nil
}
