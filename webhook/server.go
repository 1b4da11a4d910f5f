// Package webhook is Fulcrum's admission webhook server. It validates
// ModelRollouts and MetricTemplates against the cluster (package
// validation), and guards the weights of VirtualService routes that a
// ModelRollout manages against edits by anyone but Fulcrum.
//
// It is plain net/http with admission.k8s.io/v1 types rather than
// controller-runtime's webhook server: the guard must see raw objects of
// three Istio API versions and the requester's identity, the handler is an
// http.Handler that benchmarks and tests call directly, and the server runs
// without a manager. Certificates come from files reloaded on change
// (controller-runtime's certwatcher) or are generated (package certs).
package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/analysis/connections"
	"github.com/fulcrum-ml/fulcrum/router"
	"github.com/fulcrum-ml/fulcrum/router/gatewayapi"
	"github.com/fulcrum-ml/fulcrum/router/istio"
	"github.com/fulcrum-ml/fulcrum/validation"
	"github.com/fulcrum-ml/fulcrum/validation/lookups"
	"github.com/fulcrum-ml/fulcrum/webhook/certs"
)

// Paths the API server calls; the manifests in manifests/webhook use them.
const (
	PathModelRollouts   = "/validate/modelrollouts"
	PathMetricTemplates = "/validate/metrictemplates"
	PathVirtualServices = "/guard/virtualservices"
	// PathGatewayRoutes guards HTTPRoutes and GRPCRoutes.
	PathGatewayRoutes = "/guard/gatewayroutes"
)

// Names of the ValidatingWebhookConfigurations in manifests/webhook.
const (
	ConfigModelRollouts   = "fulcrum-modelrollouts"
	ConfigVirtualServices = "fulcrum-virtualservice-guard"
)

// DefaultFulcrumUser is Fulcrum's service account as the API server names it.
const DefaultFulcrumUser = "system:serviceaccount:fulcrum-system:fulcrum"

// Config configures the webhook server.
type Config struct {
	// Addr to listen on; ":9443" when empty.
	Addr string

	// CertDir holds CertName and KeyName (tls.crt and tls.key when empty),
	// usually a mounted Secret; they are reloaded when they change.
	CertDir, CertName, KeyName string
	// SelfSigned, instead of CertDir, generates the certificate and writes
	// the caBundle into the webhook configurations. Its Client defaults to
	// an uncached client for RESTConfig.
	SelfSigned *certs.SelfSignedConfig

	// RESTConfig reaches the API server for lookups (uncached reads, so
	// objects applied together with a ModelRollout are seen).
	RESTConfig *rest.Config
	// Lookups overrides the lookups built from RESTConfig (tests).
	Lookups validation.Lookups
	// IstioVersion is the networking.istio.io version the cluster serves,
	// at which lookups read VirtualServices and DestinationRules ("v1"
	// when empty).
	IstioVersion string
	// GatewayKinds are the Gateway API route kinds the cluster serves
	// (HTTPRoute, GRPCRoute), which rollouts may name.
	GatewayKinds []string

	// FulcrumUsers are the user names of Fulcrum itself: they may write
	// managed weights and move spec.stable on promotion.
	// [DefaultFulcrumUser] when empty.
	FulcrumUsers []string
	// GuardMode is deny (default) or warn.
	GuardMode GuardMode
	// AllowInlineQueries admits ModelRollouts whose metrics carry their
	// own PromQL (spec.analysis.metrics[].query); false refuses them,
	// naming --allow-inline-queries.
	AllowInlineQueries bool
	// ClusterDomain is the cluster's DNS domain (--cluster-domain), in
	// which a rollout's VirtualService destinations and DestinationRule
	// host are compared, as the controller compares them; empty means
	// cluster.local.
	ClusterDomain string
	// ProviderAddresses is the controller's allowlist of Prometheus
	// addresses (--prometheus-allowed-addresses): a MetricTemplate whose
	// spec.provider.address it refuses is admitted with the controller's
	// message as a warning. Not refused: the list may change after
	// templates are written, so the controller's check is the one that
	// holds. Nil checks nothing (no Prometheus configured).
	ProviderAddresses *connections.Allowlist

	// Metrics registers the webhook's metrics; none when nil.
	Metrics prometheus.Registerer
	// Log; the logger of Start's context when zero.
	Log logr.Logger
}

// Server serves the admission webhooks over TLS.
type Server struct {
	cfg     Config
	lookups validation.Lookups
	// routers read Gateway API routes for rollouts that name one.
	routers *router.Set
	certs   certs.Source
	self    *certs.SelfSigned
	metrics *metrics
	log     logr.Logger
	handler http.Handler
	ready   atomic.Bool
}

// NewServer checks the configuration, loads file certificates (so a
// missing Secret fails at start, not at the first request) and builds the
// handlers. Start serves.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = ":9443"
	}
	if cfg.CertName == "" {
		cfg.CertName = "tls.crt"
	}
	if cfg.KeyName == "" {
		cfg.KeyName = "tls.key"
	}
	if len(cfg.FulcrumUsers) == 0 {
		cfg.FulcrumUsers = []string{DefaultFulcrumUser}
	}
	switch cfg.GuardMode {
	case "":
		cfg.GuardMode = GuardDeny
	case GuardDeny, GuardWarn:
	default:
		return nil, fmt.Errorf("webhook guard mode %q: use deny or warn", cfg.GuardMode)
	}
	if err := istio.ClusterDomain(cfg.ClusterDomain).Check(); err != nil {
		return nil, fmt.Errorf("webhook cluster domain: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Log, lookups: cfg.Lookups}
	var err error
	if s.lookups == nil || cfg.SelfSigned != nil && cfg.SelfSigned.Client == nil {
		if cfg.RESTConfig == nil {
			return nil, errors.New("webhook needs a REST config (or Lookups and a self-signed client)")
		}
		c, err := uncachedClient(cfg.RESTConfig)
		if err != nil {
			return nil, err
		}
		if s.lookups == nil {
			s.lookups = lookups.New(c, cfg.IstioVersion)
		}
		var rs []router.Router
		for _, k := range cfg.GatewayKinds {
			rs = append(rs, gatewayapi.New(gatewayapi.Config{Kind: k, Reader: c}))
		}
		s.routers = router.NewSet(rs...)
		if cfg.SelfSigned != nil && cfg.SelfSigned.Client == nil {
			sc := *cfg.SelfSigned
			sc.Client = c
			cfg.SelfSigned = &sc
		}
	}
	switch {
	case cfg.SelfSigned != nil && cfg.CertDir != "":
		return nil, errors.New("webhook: set either a certificate directory or self-signed certificates, not both")
	case cfg.SelfSigned != nil:
		if s.self, err = certs.NewSelfSigned(*cfg.SelfSigned); err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
		s.certs = s.self
	case cfg.CertDir != "":
		if s.certs, err = certs.FromFiles(cfg.CertDir, cfg.CertName, cfg.KeyName, 0); err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
	default:
		return nil, errors.New("webhook: set a certificate directory (--webhook-cert-dir) or self-signed certificates")
	}
	if s.metrics, err = newMetrics(cfg.Metrics); err != nil {
		return nil, fmt.Errorf("webhook metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(PathModelRollouts, s.serveReview("modelrollouts", s.admitRollout))
	mux.Handle(PathMetricTemplates, s.serveReview("metrictemplates", s.admitMetricTemplate))
	mux.Handle(PathVirtualServices, s.serveReview("virtualservices", s.admitVirtualService))
	mux.Handle(PathGatewayRoutes, s.serveReview("gatewayroutes", s.admitGatewayRoute))
	s.handler = mux
	return s, nil
}

func uncachedClient(cfg *rest.Config) (client.Client, error) {
	scheme := runtime.NewScheme()
	if err := lookups.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("webhook client: %w", err)
	}
	return c, nil
}

// Handler is the admission handler without TLS (for tests and benchmarks).
func (s *Server) Handler() http.Handler { return s.handler }

// GetCertificate serves the current certificate (for tests).
func (s *Server) GetCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.certs.GetCertificate(h)
}

// NeedLeaderElection is false: every replica serves admission requests
// (controller-runtime's manager.LeaderElectionRunnable).
func (s *Server) NeedLeaderElection() bool { return false }

// Ready is a health check (controller-runtime healthz.Checker shape): nil
// once the server listens with a certificate.
func (s *Server) Ready(*http.Request) error {
	if !s.ready.Load() {
		return errors.New("webhook server not serving yet")
	}
	return nil
}

// Start prepares certificates (self-signed: CA Secret, serving certificate,
// caBundle), listens and serves until ctx ends, then drains for up to 5s.
func (s *Server) Start(ctx context.Context) error {
	if s.log.GetSink() == nil {
		s.log = logr.FromContextOrDiscard(ctx).WithName("webhook")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("webhook listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Start on a listener the caller opened (tests use port 0). It
// closes the listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.log.GetSink() == nil {
		s.log = logr.FromContextOrDiscard(ctx).WithName("webhook")
	}
	ctx = logr.NewContext(ctx, s.log)
	if s.self != nil {
		if err := s.self.Setup(ctx); err != nil {
			_ = ln.Close()
			return fmt.Errorf("webhook certificates: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	certDone := make(chan error, 1)
	go func() { certDone <- s.certs.Start(ctx) }()

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.certs.GetCertificate,
		},
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.ServeTLS(ln, "", "") }()
	s.ready.Store(true)
	s.log.Info("serving admission webhooks", "addr", ln.Addr().String(), "guardMode", s.cfg.GuardMode)

	select {
	case err := <-serveDone:
		s.ready.Store(false)
		return fmt.Errorf("webhook server: %w", err)
	case <-ctx.Done():
	}
	s.ready.Store(false)
	shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("webhook shutdown: %w", err)
	}
	if err := <-certDone; err != nil {
		return fmt.Errorf("webhook certificates: %w", err)
	}
	return nil
}
