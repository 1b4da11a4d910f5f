package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/time/rate"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/fulcrum-ml/fulcrum/admin"
	"github.com/fulcrum-ml/fulcrum/admin/auth"
	"github.com/fulcrum-ml/fulcrum/admin/dashboard"
	"github.com/fulcrum-ml/fulcrum/analysis/connections"
	"github.com/fulcrum-ml/fulcrum/controller"
	"github.com/fulcrum-ml/fulcrum/webhook"
	"github.com/fulcrum-ml/fulcrum/webhook/certs"
)

// setupAdmin serves the admin API and the dashboard on every replica (the
// server's NeedLeaderElection is false): any replica can take a request,
// because actions are recorded on the ModelRollout and only the leader's
// controller applies them.
func setupAdmin(_ context.Context, mgr ctrl.Manager, f *flags) error {
	// Reviews go through a client of their own, so that a burst of new
	// tokens cannot slow the controller's writes, nor the controller's
	// work every user's authentication.
	reviewCfg := rest.CopyConfig(mgr.GetConfig())
	reviewCfg.QPS, reviewCfg.Burst = float32(f.adminReviewQPS), f.adminReviewBurst
	cs, err := kubernetes.NewForConfig(reviewCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	var authn auth.Union
	if f.adminTokenFile != "" {
		tf, err := auth.LoadTokenFile(f.adminTokenFile)
		if err != nil {
			return fmt.Errorf("--admin-token-file: %w", err)
		}
		authn = append(authn, tf)
	}
	authn = append(authn, auth.NewTokenReview(auth.TokenReviewConfig{
		Reviewer:  cs.AuthenticationV1().TokenReviews(),
		Audiences: splitList(f.adminTokenAudiences),
	}))
	var ui = dashboard.Handler()
	if !f.dashboard {
		ui = nil
	}
	var tlsSource admin.TLSSource
	if f.adminTLSSelfSigned {
		// The webhook's CA Secret: one CA for both servers, read through an
		// uncached client (a cached one would watch every Secret).
		c, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
		if err != nil {
			return fmt.Errorf("admin TLS client: %w", err)
		}
		ss, err := certs.NewSelfSigned(certs.SelfSignedConfig{
			Client: c, Namespace: f.webhookCANamespace, SecretName: f.webhookCASecret, Hosts: splitList(f.adminTLSHosts),
		})
		if err != nil {
			return fmt.Errorf("--admin-tls-self-signed: %w", err)
		}
		tlsSource = ss
	}
	srv, err := admin.NewServer(admin.Config{
		IstioVersion:  istioVersion(mgr, "admin"),
		GatewayKinds:  gatewayKinds(mgr, "admin"),
		ClusterDomain: f.clusterDomain,
		Addr:          f.adminAddr,
		TLSSource:     tlsSource,
		TLSCertFile:   f.adminTLSCert,
		TLSKeyFile:    f.adminTLSKey,
		Client:        mgr.GetClient(),
		APIReader:     mgr.GetAPIReader(),
		Informers:     mgr.GetCache(),
		Authenticator: authn,
		Authorizer:    auth.NewSubjectAccessReview(auth.SARConfig{Reviewer: cs.AuthorizationV1().SubjectAccessReviews()}),
		Namespaces:    splitList(f.namespaces),
		// Checked in parseFlags.
		TrustedProxies:    must(parseCIDRs(f.adminTrustedProxies)),
		RateLimit:         rate.Limit(f.adminRateLimit),
		RateBurst:         f.adminRateBurst,
		ClientRateLimit:   rate.Limit(f.adminClientRateLimit),
		ClientRateBurst:   f.adminClientRateBurst,
		MaxStreamsPerUser: f.adminMaxStreamsPerUser,
		Recorder:          mgr.GetEventRecorder("fulcrum-admin"),
		UI:                ui,
		Logger:            ctrl.Log.WithName("admin"),
		Registry:          metrics.Registry,
	})
	if err != nil {
		return fmt.Errorf("admin server: %w", err)
	}
	return mgr.Add(srv)
}

// setupWebhook serves admission on every replica: with certificates from
// --webhook-cert-dir (a mounted Secret, e.g. from cert-manager), or with
// --webhook-self-signed, a CA it generates and writes into the webhook
// configurations itself.
func setupWebhook(_ context.Context, mgr ctrl.Manager, f *flags) error {
	if !f.webhookSelfSigned && f.webhookCertDir == "" {
		return fmt.Errorf("--webhook needs --webhook-cert-dir (a folder with tls.crt and tls.key) or --webhook-self-signed")
	}
	cfg := webhook.Config{
		IstioVersion: istioVersion(mgr, "webhook"),
		GatewayKinds: gatewayKinds(mgr, "webhook"),
		Addr:         fmt.Sprintf(":%d", f.webhookPort),
		CertDir:      f.webhookCertDir,
		RESTConfig:   mgr.GetConfig(),
		FulcrumUsers: splitList(f.webhookFulcrumUsers),
		GuardMode:    webhook.GuardMode(f.webhookGuardMode),
		// Inline queries are refused at admission as the controller
		// refuses them.
		AllowInlineQueries: f.allowInlineQueries,
		// Hosts compared as the controller compares them.
		ClusterDomain: f.clusterDomain,
		Metrics:       metrics.Registry,
		Log:           ctrl.Log.WithName("webhook"),
	}
	if f.prometheus.Address != "" {
		// Warn at admission as the engine refuses (parseFlags checked it).
		allowed, err := connections.NewAllowlist(f.prometheus.Address, f.allowedAddresses)
		if err != nil {
			return err
		}
		cfg.ProviderAddresses = &allowed
	}
	if f.webhookBindHost != "" {
		cfg.Addr = fmt.Sprintf("%s:%d", f.webhookBindHost, f.webhookPort)
	}
	if f.webhookSelfSigned {
		c, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
		if err != nil {
			return fmt.Errorf("webhook client: %w", err)
		}
		cfg.CertDir = ""
		cfg.SelfSigned = &certs.SelfSignedConfig{
			Client:                c,
			Namespace:             f.webhookCANamespace,
			SecretName:            f.webhookCASecret,
			Hosts:                 splitList(f.webhookHosts),
			WebhookConfigurations: []string{webhook.ConfigModelRollouts, webhook.ConfigVirtualServices},
		}
	}
	srv, err := webhook.NewServer(cfg)
	if err != nil {
		return fmt.Errorf("webhook server: %w", err)
	}
	if err := mgr.Add(srv); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("webhook", srv.Ready)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseCIDRs parses comma-separated CIDRs; a bare address is a /32 or /128.
func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range splitList(s) {
		if a, err := netip.ParseAddr(c); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR (10.0.0.0/8) nor an address", c)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// istioVersion is the networking.istio.io version the API server serves
// (v1, else v1beta1, else v1alpha3), which the admin API and the webhook
// read VirtualServices and DestinationRules at. Without Istio's CRDs it is
// v1, logged: those servers then answer that the objects are missing,
// rather than not starting.
func istioVersion(mgr ctrl.Manager, component string) string {
	v, err := controller.DetectIstioVersion(mgr.GetRESTMapper())
	if err != nil {
		ctrl.Log.WithName(component).Info("reading Istio objects as networking.istio.io/v1", "reason", err.Error())
		return "v1"
	}
	return v
}

// gatewayKinds are the Gateway API route kinds (HTTPRoute, GRPCRoute) the
// API server serves at gateway.networking.k8s.io/v1. Without them, rollouts
// that name such a route fail, saying the API is not served.
func gatewayKinds(mgr ctrl.Manager, component string) []string {
	kinds, err := controller.DetectGatewayKinds(mgr.GetRESTMapper())
	if err != nil {
		ctrl.Log.WithName(component).Info("not routing through Gateway API", "reason", err.Error())
		return nil
	}
	return kinds
}
