// Package connections decides how a metric template's queries reach their
// Prometheus, and keeps the clients it builds. The rules keep the
// controller's credentials with the controller's Prometheus (issue 14):
//
//   - a template with neither address nor Secret reference (every built-in
//     template and inline query) uses the controller's connection: its
//     address, credentials, headers and TLS settings;
//   - a template with spec.provider.httpClientConfigSecretRef uses that
//     Secret's settings and nothing of the controller's, at its own address
//     or, without one, at the controller's;
//   - a template with an address and no Secret connects with no
//     credentials, no headers and no client certificate, and verifies the
//     server against the system's CAs;
//   - a template's own address must be the controller's or allowed by
//     Config.AllowedAddresses (--prometheus-allowed-addresses); any other
//     gets an error and no request. Template connections follow no
//     redirects, which could lead anywhere.
//
// Secrets are read with a direct GET in the template's namespace, never
// through a cache that would list and watch every Secret in the cluster,
// and each read is reused for SecretTTL. Clients are cached by address and
// by the Secret's UID and resourceVersion, so an edited Secret takes effect
// at the next read; the cache holds at most MaxClients.
package connections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/common/config"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Defaults of Config.
const (
	DefaultMaxClients = 256
	DefaultSecretTTL  = 10 * time.Second
)

// Config configures New.
type Config struct {
	// Global is the controller's connection (--prometheus-url or
	// --prometheus-config-file); its Timeout and Metrics apply to every
	// connection, its address and HTTP settings only as the rules say.
	Global provider.PrometheusConfig
	// Secrets reads the Secrets templates refer to: pass the manager's
	// API reader (mgr.GetAPIReader()), which GETs one object, not its
	// cache. Nil: a template with a Secret reference gets an error.
	Secrets client.Reader
	// MaxClients bounds the cached clients of templates' own connections
	// (and the cached Secret reads); DefaultMaxClients when zero.
	MaxClients int
	// SecretTTL is how long a Secret read is reused before the next GET:
	// the delay before an edited Secret takes effect, traded for fewer
	// reads (one per Secret per SecretTTL, whatever the number of
	// rollouts). DefaultSecretTTL when zero.
	SecretTTL time.Duration
	// Clock times Secret reads; the real clock when nil.
	Clock clock.PassiveClock
	// AllowedAddresses are the addresses templates may name besides the
	// controller's own (Allowlist says how entries match). Empty: a
	// template may not name any other, so queries go only where the
	// operator pointed the controller.
	AllowedAddresses []string
}

// Template says whose connection is asked for.
type Template struct {
	// Namespace of the template, where its Secret is read.
	Namespace string
	// Provider is the template's spec.provider; nil for built-in templates
	// and inline queries.
	Provider *v1alpha1.Provider
}

// Pool hands out providers by the rules above.
type Pool struct {
	cfg     Config
	global  provider.Provider
	allowed Allowlist

	mu      sync.Mutex // serialises building, so one key is built once
	clients *lru.Cache // clientKey -> provider.Provider
	secrets *lru.Cache // types.NamespacedName -> secretRead
}

type clientKey struct {
	typ     v1alpha1.ProviderType
	address string
	// The Secret's identity and version, and the key read; empty for an
	// address without a Secret.
	secret   types.NamespacedName
	key      string
	uid      types.UID
	revision string
}

type secretRead struct {
	at     time.Time
	secret *corev1.Secret
	err    error
}

// closer is what a cached provider may offer to drop its idle connections
// when evicted.
type closer interface{ Close() }

// New builds the controller's own provider and an empty cache. It contacts
// nothing.
func New(cfg Config) (*Pool, error) {
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.SecretTTL <= 0 {
		cfg.SecretTTL = DefaultSecretTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	global, err := provider.New(v1alpha1.ProviderPrometheus, cfg.Global)
	if err != nil {
		return nil, err
	}
	allowed, err := NewAllowlist(cfg.Global.Address, cfg.AllowedAddresses)
	if err != nil {
		return nil, err
	}
	return &Pool{
		cfg:     cfg,
		global:  global,
		allowed: allowed,
		clients: lru.NewWithEvictionFunc(cfg.MaxClients, func(_ lru.Key, v any) {
			if c, ok := v.(closer); ok {
				c.Close()
			}
		}),
		secrets: lru.New(cfg.MaxClients),
	}, nil
}

// Len is the number of cached clients of templates' own connections.
func (p *Pool) Len() int { return p.clients.Len() }

// For returns the provider that t's queries run on. Errors say what is
// wrong and how to fix it; they are meant for the metric's Error round.
func (p *Pool) For(ctx context.Context, t Template) (provider.Provider, error) {
	spec := v1alpha1.Provider{Type: v1alpha1.ProviderPrometheus}
	if t.Provider != nil {
		spec = *t.Provider
	}
	if spec.Type != "" && spec.Type != v1alpha1.ProviderPrometheus {
		return nil, fmt.Errorf("provider.type %q: %w; the supported type is %q", spec.Type, provider.ErrUnknownProvider, v1alpha1.ProviderPrometheus)
	}
	ref := spec.HTTPClientConfigSecretRef
	if spec.Address == "" && ref == nil {
		return p.global, nil
	}
	address := spec.Address
	if address == "" {
		address = p.cfg.Global.Address
	} else if err := p.allowed.Check(address); err != nil {
		return nil, err
	}
	key := clientKey{typ: v1alpha1.ProviderPrometheus, address: address}
	// An address alone gets Prometheus's defaults and nothing else.
	http := config.DefaultHTTPClientConfig
	if ref != nil {
		secret, err := p.readSecret(ctx, t, ref)
		if err != nil {
			return nil, err
		}
		key.secret, key.key = types.NamespacedName{Namespace: secret.Namespace, Name: secret.Name}, ref.Key
		key.uid, key.revision = secret.UID, secret.ResourceVersion
		if v, ok := p.clients.Get(key); ok {
			return v.(provider.Provider), nil
		}
		cfg, err := ParseSecretConfig(secret.Data[ref.Key])
		if err != nil {
			return nil, fmt.Errorf("%s: %w; fix the value in the Secret", secretWhere(t, ref), err)
		}
		http = *cfg
	}
	// A redirect would take the query, and a Secret's credentials, to an
	// address the allowlist never saw.
	http.FollowRedirects = false
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.clients.Get(key); ok {
		return v.(provider.Provider), nil
	}
	prov, err := provider.New(key.typ, provider.PrometheusConfig{
		Address: address, Timeout: p.cfg.Global.Timeout, HTTP: http, Metrics: p.cfg.Global.Metrics,
		MaxResponseBytes: p.cfg.Global.MaxResponseBytes, MaxSeries: p.cfg.Global.MaxSeries,
	})
	if err != nil {
		if ref != nil {
			return nil, fmt.Errorf("%s: %w; fix the settings in the Secret", secretWhere(t, ref), err)
		}
		return nil, err
	}
	p.clients.Add(key, prov)
	return prov, nil
}

// readSecret GETs the Secret, or reuses a read younger than SecretTTL,
// and checks that it has the key.
func (p *Pool) readSecret(ctx context.Context, t Template, ref *v1alpha1.SecretKeyRef) (*corev1.Secret, error) {
	name := types.NamespacedName{Namespace: t.Namespace, Name: ref.Name}
	where := secretWhere(t, ref)
	if p.cfg.Secrets == nil {
		return nil, fmt.Errorf("%s: this controller reads no Secrets; give the analysis engine a Secret reader", where)
	}
	now := p.cfg.Clock.Now()
	var r secretRead
	if v, ok := p.secrets.Get(name); ok && now.Sub(v.(secretRead).at) < p.cfg.SecretTTL {
		r = v.(secretRead)
	} else {
		s := &corev1.Secret{}
		err := p.cfg.Secrets.Get(ctx, name, s)
		r = secretRead{at: now, secret: s, err: err}
		// A failed read is reused too, so a missing Secret costs one GET
		// per SecretTTL, not one per round of every rollout that uses it;
		// a cancelled one is not, since it says nothing of the Secret.
		if err == nil || !errors.Is(err, ctx.Err()) {
			p.secrets.Add(name, r)
		}
	}
	switch {
	case apierrors.IsNotFound(r.err):
		return nil, fmt.Errorf("%s: no such Secret: create it with this key holding Prometheus's http client settings in YAML, or remove the reference", where)
	case apierrors.IsForbidden(r.err):
		return nil, fmt.Errorf("%s: reading it is forbidden: grant Fulcrum's service account get on secrets (the install manifests and the chart do): %w", where, r.err)
	case r.err != nil:
		return nil, fmt.Errorf("%s: read: %w", where, r.err)
	}
	if _, ok := r.secret.Data[ref.Key]; !ok {
		return nil, fmt.Errorf("%s: the Secret has no such key: add it with Prometheus's http client settings in YAML, or set httpClientConfigSecretRef.key to the key that holds them", where)
	}
	return r.secret, nil
}

// secretWhere names the reference in messages; the caller adds the
// template's name.
func secretWhere(t Template, ref *v1alpha1.SecretKeyRef) string {
	return fmt.Sprintf("spec.provider.httpClientConfigSecretRef: Secret %s/%s key %q", t.Namespace, ref.Name, ref.Key)
}
