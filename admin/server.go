// Package admin is Fulcrum's admin HTTP API: people, pipelines (fulcrumctl)
// and the dashboard list and watch ModelRollouts and ask for actions (start,
// split, promote, rollback, pause, resume). Actions are recorded as an intent
// on the ModelRollout with optimistic concurrency; the controller applies
// them. The API never writes a VirtualService.
//
// Every API request (all of /api/v1 but the server's version) is
// authenticated (bearer token: TokenReview or a static token file) and
// authorized with a SubjectAccessReview on modelrollouts.fulcrum.dev, so who
// may do what is ordinary Kubernetes RBAC.
// See docs/admin-api.md for the routes and /openapi.json for the schema.
package admin

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/admin/auth"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
)

// EventReasonActionRequested is the reason of the Kubernetes Event recorded
// on a ModelRollout for every accepted action request.
const EventReasonActionRequested = "ActionRequested"

// InformerGetter gives the shared informer of a kind; a controller-runtime
// cache (mgr.GetCache()) satisfies it.
type InformerGetter interface {
	GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error)
}

// EventRecorder records Kubernetes Events (events.k8s.io); the recorder of
// mgr.GetEventRecorder(name) satisfies it.
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// VersionLookup returns the versions a rollout can name: the subsets of
// its DestinationRule, or the Services of its namespace for a Gateway API
// route. A missing DestinationRule is a NotFound error.
type VersionLookup interface {
	Versions(ctx context.Context, mr *v1alpha1.ModelRollout) ([]string, error)
}

// Config configures a Server. Client, Informers, Authenticator and
// Authorizer are required.
type Config struct {
	// Addr to listen on, e.g. ":8080"; used by Start.
	Addr string
	// TLSCertFile and TLSKeyFile, when both set, make Start serve HTTPS.
	TLSCertFile, TLSKeyFile string
	// TLSSource, instead of the files, serves HTTPS with certificates it
	// makes (package webhook/certs: a self-signed CA kept in a Secret).
	TLSSource TLSSource

	// Client reads and writes ModelRollouts; a cache-backed client is right
	// (list, get and streams read the cache).
	Client client.Client
	// APIReader reads a rollout fresh from the API server before an action,
	// so a retry after a conflict sees the newest object (mgr.GetAPIReader()).
	// Client when nil.
	APIReader client.Reader
	// Informers feeds the event streams (mgr.GetCache()).
	Informers InformerGetter
	// Versions looks up the versions a start or split may name; by
	// default through Routers.
	Versions VersionLookup
	// IstioVersion is the networking.istio.io version the cluster serves
	// (controller.DetectIstioVersion); "v1" when empty.
	IstioVersion string
	// GatewayKinds are the Gateway API route kinds the cluster serves
	// (controller.DetectGatewayKinds).
	GatewayKinds []string
	// ClusterDomain is the cluster's DNS domain (--cluster-domain).
	ClusterDomain string
	// Routers read the rollouts' route objects; by default read-only
	// routers over APIReader for IstioVersion and GatewayKinds.
	Routers *router.Set

	Authenticator auth.Authenticator
	Authorizer    auth.Authorizer
	// Recorder records an Event on the rollout for every action; none when nil.
	Recorder EventRecorder

	// Namespaces the server serves (--namespaces); every namespace when
	// empty. whoami answers for these, or, when empty, for namespaces that
	// hold a ModelRollout; for any other it answers with the rights held in
	// every namespace, so a made-up namespace costs no review.
	Namespaces []string

	// UI, when set, is mounted at / (the dashboard). API routes win.
	UI http.Handler

	// Version is the server's build, answered at GET /api/v1/version;
	// "unknown" when its Version is empty.
	Version BuildInfo

	Logger logr.Logger
	Clock  clock.WithTicker
	// Registry receives the admin metrics; a fresh registry when nil. Pass
	// controller-runtime's metrics.Registry so that the metrics port serves
	// them. The admin port serves no /metrics: the metrics name every
	// namespace and rollout, and the admin port answers without a token.
	Registry prometheus.Registerer

	// MaxBodyBytes bounds request bodies; 64 KiB when zero.
	MaxBodyBytes int64
	// RateLimit and RateBurst bound each authenticated user's requests;
	// 20/s with a burst of 60 when zero.
	RateLimit rate.Limit
	RateBurst int
	// ClientRateLimit and ClientRateBurst bound requests per client address,
	// checked before authentication (so they also bound TokenReviews of
	// made-up tokens); 50/s with a burst of 150 when zero. Probes are exempt.
	ClientRateLimit rate.Limit
	ClientRateBurst int
	// TrustedProxies are the addresses of proxies (an ingress) whose
	// X-Forwarded-For and X-Real-IP name the client address; those headers
	// are ignored from any other peer.
	TrustedProxies []netip.Prefix
	// MaxStreamsPerUser bounds the event streams one user keeps open; 8
	// when zero.
	MaxStreamsPerUser int
	// HeartbeatInterval between heartbeat events on streams; 15s when zero.
	// Each heartbeat re-checks the caller's token and access.
	HeartbeatInterval time.Duration
	// MaxStreamDuration closes streams after this long so clients reconnect
	// and re-authenticate; 30m when zero.
	MaxStreamDuration time.Duration
	// ShutdownTimeout bounds graceful shutdown; 10s when zero.
	ShutdownTimeout time.Duration
}

// TLSSource provides serving certificates: Setup before the server
// listens, Start keeps them fresh until ctx ends. *certs.SelfSigned is one.
type TLSSource interface {
	Setup(ctx context.Context) error
	Start(ctx context.Context) error
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// Server is the admin API. It implements controller-runtime's Runnable
// (Start) and LeaderElectionRunnable (every replica serves).
type Server struct {
	cfg     Config
	handler http.Handler
	metrics *metrics
	hub     *hub
	clients *keyLimiter
	users   *keyLimiter
	streams *streamSlots
	ready   atomic.Bool
}

// NewServer checks cfg, fills defaults and builds the routes.
func NewServer(cfg Config) (*Server, error) {
	var missing []string
	if cfg.Client == nil {
		missing = append(missing, "Client")
	}
	if cfg.Informers == nil {
		missing = append(missing, "Informers")
	}
	if cfg.Authenticator == nil {
		missing = append(missing, "Authenticator")
	}
	if cfg.Authorizer == nil {
		missing = append(missing, "Authorizer")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("admin: config is missing %v", missing)
	}
	if cfg.APIReader == nil {
		cfg.APIReader = cfg.Client
	}
	routers, is := readOnlyRouters(cfg.APIReader, cfg.IstioVersion, cfg.GatewayKinds, cfg.ClusterDomain)
	if cfg.Routers == nil {
		cfg.Routers = routers
	}
	if cfg.Versions == nil {
		cfg.Versions = RouterVersions{Istio: is, Reader: cfg.APIReader}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit, cfg.RateBurst = 20, 60
	}
	if cfg.RateBurst == 0 {
		cfg.RateBurst = int(cfg.RateLimit) * 3
	}
	if cfg.ClientRateLimit == 0 {
		cfg.ClientRateLimit, cfg.ClientRateBurst = 50, 150
	}
	if cfg.ClientRateBurst == 0 {
		cfg.ClientRateBurst = int(cfg.ClientRateLimit) * 3
	}
	if cfg.MaxStreamsPerUser == 0 {
		cfg.MaxStreamsPerUser = 8
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 15 * time.Second
	}
	if cfg.MaxStreamDuration == 0 {
		cfg.MaxStreamDuration = 30 * time.Minute
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		metrics: m,
		hub:     newHub(),
		clients: newKeyLimiter(cfg.ClientRateLimit, cfg.ClientRateBurst, cfg.Clock),
		users:   newKeyLimiter(cfg.RateLimit, cfg.RateBurst, cfg.Clock),
		streams: newStreamSlots(cfg.MaxStreamsPerUser),
	}
	s.handler = s.routes()
	return s, nil
}

// Handler is the full HTTP handler: API, probes, metrics and the UI.
func (s *Server) Handler() http.Handler { return s.handler }

// NeedLeaderElection is false: every replica serves the API.
func (s *Server) NeedLeaderElection() bool { return false }

// Start listens on Config.Addr and serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then shuts down gracefully. It starts
// the event streams' informer handler first.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	serveTLS := s.cfg.TLSSource != nil || s.cfg.TLSCertFile != "" && s.cfg.TLSKeyFile != ""
	if src := s.cfg.TLSSource; src != nil {
		if err := src.Setup(ctx); err != nil {
			_ = ln.Close()
			return fmt.Errorf("admin: TLS certificate: %w", err)
		}
		go func() {
			if err := src.Start(ctx); err != nil {
				s.cfg.Logger.Error(err, "admin: renewing the TLS certificate stopped; the last one is served")
			}
		}()
		tlsConfig.GetCertificate = src.GetCertificate
	} else if serveTLS {
		// The pair is read now (an error if missing or mismatched) and
		// again whenever the files change: kubelet swaps a mounted
		// Secret's files when cert-manager renews it, and the next
		// handshake gets the new certificate without a restart.
		w, err := certwatcher.New(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("admin: load TLS certificate %s and key %s: %w", s.cfg.TLSCertFile, s.cfg.TLSKeyFile, err)
		}
		go func() {
			if err := w.Start(ctx); err != nil {
				s.cfg.Logger.Error(err, "admin: watching the TLS certificate stopped; the last one read is served")
			}
		}()
		tlsConfig.GetCertificate = w.GetCertificate
	}
	if err := s.startEvents(ctx); err != nil {
		_ = ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Streams extend their own write deadline before every write.
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		// Requests inherit ctx, so streams end when the server stops.
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    nil,
		TLSConfig:   tlsConfig,
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		if serveTLS {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		errc <- err
	}()
	s.cfg.Logger.Info("admin API serving", "addr", ln.Addr().String(), "tls", serveTLS)
	select {
	case err := <-errc:
		return fmt.Errorf("admin: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("admin: shutdown: %w", err)
	}
	return nil
}
