// Command fulcrum is Fulcrum's server: the ModelRollout controller, the admin
// API and the admission webhook in one binary, each switched on by a flag.
// Leader election (a Lease) makes only one replica reconcile; components that
// serve requests run on every replica.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/analysis/templates"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/cmd/internal/version"
	"github.com/fulcrum-ml/fulcrum/controller"
	"github.com/fulcrum-ml/fulcrum/controller/gates"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

// flags are every command-line setting; components read what they need.
type flags struct {
	version   bool
	logFormat string

	kubeconfig    string
	namespaces    string
	clusterDomain string

	controller, admin, webhook bool

	metricsAddr, probeAddr string

	leaderElect                               bool
	leaderElectionNamespace, leaderElectionID string
	leaseDuration, renewDeadline, retryPeriod time.Duration

	maxConcurrentReconciles int
	kubeAPIQPS              float64
	kubeAPIBurst            int

	prometheusURL, prometheusBearerTokenFile string
	prometheusConfigFile                     string
	prometheusTimeout                        time.Duration
	analysisBatch                            bool
	allowInlineQueries                       bool
	queryNamespaceLabel                      string
	// prometheus is the connection the flags above make (prometheus.go).
	prometheus provider.PrometheusConfig

	prometheusAllowed          string
	warmupGateways             string
	dashboardURL               string
	gateAllowedHosts           string
	gateMaxInFlight            int
	prometheusMaxResponseBytes int64
	prometheusMaxSeries        int
	// allowedAddresses is --prometheus-allowed-addresses, checked and split.
	allowedAddresses []string

	adminAddr, adminTokenFile, adminTLSCert, adminTLSKey string
	adminTokenAudiences                                  string
	adminReviewQPS                                       float64
	adminReviewBurst                                     int
	adminRateLimit, adminClientRateLimit                 float64
	adminRateBurst, adminClientRateBurst                 int
	adminTrustedProxies                                  string
	adminMaxStreamsPerUser                               int
	adminTLSSelfSigned                                   bool
	adminTLSHosts                                        string
	dashboard                                            bool

	webhookPort                                       int
	webhookBindHost, webhookCertDir                   string
	webhookSelfSigned                                 bool
	webhookCANamespace, webhookCASecret, webhookHosts string
	webhookGuardMode, webhookFulcrumUsers             string
}

func parseFlags(args []string) (*flags, *textlogger.Config, error) {
	f := &flags{}
	fs := flag.NewFlagSet("fulcrum", flag.ContinueOnError)
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.StringVar(&f.logFormat, "log-format", logText, "log format: text (klog) or json (one object per line; -v sets the level, -vmodule is ignored)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means in-cluster config or $KUBECONFIG")
	fs.StringVar(&f.namespaces, "namespaces", "", "comma-separated namespaces whose rollouts this process reconciles and serves; every namespace when empty")
	fs.StringVar(&f.clusterDomain, "cluster-domain", istio.DefaultClusterDomain, "the cluster's DNS domain (the kubelet's --cluster-domain): short hosts such as fraud expand to fraud.NAMESPACE.svc.DOMAIN, and the controller and webhook compare VirtualService and DestinationRule hosts in it")
	fs.BoolVar(&f.controller, "controller", true, "run the ModelRollout controller (only the leader reconciles)")
	fs.BoolVar(&f.admin, "admin", false, "serve the admin API and dashboard")
	fs.BoolVar(&f.webhook, "webhook", false, "serve the admission webhook")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8082", "address of /metrics; 0 turns it off")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 turns them off")
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "elect a leader through a Lease so one replica reconciles")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the Lease; empty means the pod's namespace (in cluster)")
	fs.StringVar(&f.leaderElectionID, "leader-election-id", "fulcrum-controller", "name of the Lease")
	fs.DurationVar(&f.leaseDuration, "lease-duration", 15*time.Second, "how long a lost leader's Lease blocks others; a killed leader is replaced within this")
	fs.DurationVar(&f.renewDeadline, "renew-deadline", 10*time.Second, "how long the leader retries renewing before it gives up leadership")
	fs.DurationVar(&f.retryPeriod, "retry-period", 2*time.Second, "how often candidates try to acquire or renew the Lease")
	fs.IntVar(&f.maxConcurrentReconciles, "max-concurrent-reconciles", 4, "rollouts reconciled in parallel")
	fs.Float64Var(&f.kubeAPIQPS, "kube-api-qps", 50, "steady queries per second to the API server (client-side limit)")
	fs.IntVar(&f.kubeAPIBurst, "kube-api-burst", 100, "burst of queries to the API server above --kube-api-qps")
	fs.StringVar(&f.prometheusURL, "prometheus-url", "", "Prometheus base URL for analysis; without it rollouts with metrics get Error rounds (never Pass)")
	fs.StringVar(&f.prometheusBearerTokenFile, "prometheus-bearer-token-file", "", "file with a bearer token for Prometheus, re-read on every query")
	fs.DurationVar(&f.prometheusTimeout, "prometheus-timeout", 0, "timeout of each Prometheus query; the provider's default when 0")
	fs.StringVar(&f.prometheusConfigFile, "prometheus-config-file", "", "YAML file with url, timeout and Prometheus's HTTP client settings (basic_auth, authorization, oauth2, tls_config, proxy_url, http_headers, ...); files it names are re-read; a setting also given by a flag above is refused")
	fs.StringVar(&f.prometheusAllowed, "prometheus-allowed-addresses", "", "comma-separated addresses a MetricTemplate's spec.provider.address may name besides the controller's Prometheus: host:port (any scheme and path) or scheme://host:port/path (that scheme, under that path); empty allows none, and a template naming another address gets Error rounds")
	fs.Int64Var(&f.prometheusMaxResponseBytes, "prometheus-max-response-bytes", provider.DefaultMaxResponseBytes, "largest Prometheus response body read, after decompression; a larger one makes the query an error (never a truncated result)")
	fs.IntVar(&f.prometheusMaxSeries, "prometheus-max-series", provider.DefaultMaxSeries, "most series one query may return; more makes the query an error that asks to aggregate it")
	fs.BoolVar(&f.analysisBatch, "analysis-batch", true, "run built-in metric templates once per round for every rollout (grouped by namespace and service) instead of once per rollout")
	fs.BoolVar(&f.allowInlineQueries, "allow-inline-queries", false, "accept metrics with their own PromQL (spec.analysis.metrics[].query) in the webhook and the controller; off, only built-in templates and MetricTemplates run")
	fs.StringVar(&f.queryNamespaceLabel, "query-namespace-label", templates.DefaultNamespaceLabel, "label set to the rollout's namespace on every selector of inline queries and of MetricTemplates without spec.namespaceLabel")
	fs.StringVar(&f.dashboardURL, "dashboard-url", "", "the dashboard's external address (https://fulcrum.example.com), which notifications link to; empty: they carry no link")
	fs.StringVar(&f.warmupGateways, "warmup-gateways", "", "comma-separated hosts (host or host:port) a ModelRollout's spec.readiness.warmup.requests.url may name besides the model's own hosts: mesh gateways the VirtualService is bound to; empty allows only the model's hosts")
	fs.StringVar(&f.gateAllowedHosts, "gate-allowed-hosts", "", "comma-separated hosts an HTTP gate (spec.gates[].http.url) may call besides the Services of its rollout's own namespace: host, host:port, *.domain (any subdomain), *.svc (every namespace's Services) or * (anything); empty allows only the rollout's namespace, so a ModelRollout cannot make the controller reach other addresses")
	fs.IntVar(&f.gateMaxInFlight, "gate-max-in-flight", 16, "HTTP gate requests open at once, over every rollout; more wait their turn")
	fs.StringVar(&f.adminAddr, "admin-bind-address", ":8080", "address of the admin API")
	fs.StringVar(&f.adminTokenFile, "admin-token-file", "", "static token file (kube-apiserver CSV: token,user,uid,\"group1,group2\") for local use, checked before TokenReview")
	fs.StringVar(&f.adminTokenAudiences, "admin-token-audiences", "", "comma-separated audiences a bearer token must be valid for (e.g. fulcrum, for tokens from 'kubectl create token NAME --audience fulcrum'); empty accepts tokens for the API server, which a token sent to the admin API could then be replayed against")
	fs.Float64Var(&f.adminReviewQPS, "admin-review-qps", 20, "queries per second of the admin API's own API server client for TokenReviews and SubjectAccessReviews, apart from the controller's")
	fs.IntVar(&f.adminReviewBurst, "admin-review-burst", 40, "burst of TokenReviews and SubjectAccessReviews above --admin-review-qps")
	fs.Float64Var(&f.adminRateLimit, "admin-rate-limit", 20, "requests per second each authenticated user may send to the admin API")
	fs.IntVar(&f.adminRateBurst, "admin-rate-burst", 60, "burst of a user's requests above --admin-rate-limit")
	fs.Float64Var(&f.adminClientRateLimit, "admin-client-rate-limit", 50, "requests per second per client address, checked before authentication")
	fs.IntVar(&f.adminClientRateBurst, "admin-client-rate-burst", 150, "burst of a client address's requests above --admin-client-rate-limit")
	fs.StringVar(&f.adminTrustedProxies, "admin-trusted-proxies", "", "comma-separated CIDRs of proxies (an ingress) whose X-Forwarded-For or X-Real-IP names the client address; ignored from anyone else")
	fs.IntVar(&f.adminMaxStreamsPerUser, "admin-max-streams-per-user", 8, "event streams one user may keep open at once; more get 429")
	fs.StringVar(&f.adminTLSCert, "admin-tls-cert", "", "certificate file; with --admin-tls-key the admin API serves HTTPS")
	fs.StringVar(&f.adminTLSKey, "admin-tls-key", "", "private key file for --admin-tls-cert")
	fs.BoolVar(&f.adminTLSSelfSigned, "admin-tls-self-signed", false, "serve HTTPS with a certificate from the self-signed CA in --webhook-ca-namespace/--webhook-ca-secret (made if missing, shared with the webhook); clients trust that CA's ca.crt")
	fs.StringVar(&f.adminTLSHosts, "admin-tls-hosts", "fulcrum.fulcrum-system.svc,fulcrum.fulcrum-system.svc.cluster.local,localhost,127.0.0.1", "comma-separated DNS names and IPs of the self-signed admin certificate (localhost for kubectl port-forward)")
	fs.BoolVar(&f.dashboard, "dashboard", true, "serve the web dashboard at / of the admin API")
	fs.IntVar(&f.webhookPort, "webhook-port", 9443, "port of the admission webhook server")
	fs.StringVar(&f.webhookBindHost, "webhook-bind-host", "", "host of the webhook listener; all interfaces when empty")
	fs.StringVar(&f.webhookCertDir, "webhook-cert-dir", "", "folder with the webhook's tls.crt and tls.key (reloaded when they change)")
	fs.BoolVar(&f.webhookSelfSigned, "webhook-self-signed", false, "generate a CA and serving certificate and write the caBundle into the webhook configurations")
	fs.StringVar(&f.webhookCANamespace, "webhook-ca-namespace", "fulcrum-system", "namespace of the Secret holding the self-signed CA")
	fs.StringVar(&f.webhookCASecret, "webhook-ca-secret", "fulcrum-webhook-ca", "Secret holding the self-signed CA, shared by every replica")
	fs.StringVar(&f.webhookHosts, "webhook-hosts", "fulcrum.fulcrum-system.svc,fulcrum.fulcrum-system.svc.cluster.local", "comma-separated DNS names and IPs for the self-signed serving certificate")
	fs.StringVar(&f.webhookGuardMode, "webhook-guard-mode", "deny", "route guards (VirtualService, HTTPRoute, GRPCRoute): deny or warn on a weight edit of a managed route")
	fs.StringVar(&f.webhookFulcrumUsers, "webhook-fulcrum-users", "system:serviceaccount:fulcrum-system:fulcrum", "comma-separated user names of Fulcrum itself, allowed to write managed weights")
	logs := textlogger.NewConfig()
	logs.AddFlags(fs) // -v and -vmodule
	if err := fs.Parse(args); err != nil {
		return nil, logs, err
	}
	if f.logFormat != logText && f.logFormat != logJSON {
		return nil, logs, fmt.Errorf("--log-format %q: want %s or %s", f.logFormat, logText, logJSON)
	}
	if f.adminTLSSelfSigned && (f.adminTLSCert != "" || f.adminTLSKey != "") {
		return nil, logs, errors.New("--admin-tls-self-signed and --admin-tls-cert/--admin-tls-key exclude each other: pick one source of the admin certificate")
	}
	if _, err := parseCIDRs(f.adminTrustedProxies); err != nil {
		return nil, logs, fmt.Errorf("--admin-trusted-proxies: %w", err)
	}
	if f.leaseDuration <= f.renewDeadline || f.renewDeadline <= f.retryPeriod {
		return nil, logs, fmt.Errorf("--lease-duration (%s) must exceed --renew-deadline (%s), which must exceed --retry-period (%s)", f.leaseDuration, f.renewDeadline, f.retryPeriod)
	}
	if err := istio.ClusterDomain(f.clusterDomain).Check(); err != nil {
		return nil, logs, fmt.Errorf("--cluster-domain: %w", err)
	}
	for _, h := range splitList(f.gateAllowedHosts) {
		if err := gates.CheckPattern(h); err != nil {
			return nil, logs, fmt.Errorf("--gate-allowed-hosts: %w", err)
		}
	}
	if f.gateMaxInFlight < 1 {
		return nil, logs, fmt.Errorf("--gate-max-in-flight %d: at least 1", f.gateMaxInFlight)
	}
	if err := templates.ValidNamespaceLabel(f.queryNamespaceLabel); err != nil {
		return nil, logs, fmt.Errorf("--query-namespace-label: %w", err)
	}
	var err error
	if f.prometheus, err = prometheusConfig(f); err != nil {
		return nil, logs, err
	}
	if f.allowedAddresses, err = allowedAddresses(f.prometheusAllowed, f.prometheus.Address); err != nil {
		return nil, logs, err
	}
	return f, logs, nil
}

func main() {
	f, logs, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "fulcrum:", err)
		os.Exit(3)
	}
	if f.version {
		fmt.Println("fulcrum", version.Get())
		return
	}
	logger, err := newLogger(f.logFormat, logs, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fulcrum:", err)
		os.Exit(3)
	}
	ctrl.SetLogger(logger)
	if f.logFormat == logJSON {
		// client-go's own messages (leader election, reflectors) too.
		klog.SetLogger(logger)
	}
	v := version.Get()
	ctrl.Log.Info("starting fulcrum", "version", v.Version, "commit", v.Commit, "go", v.GoVersion)
	if err := run(ctrl.SetupSignalHandler(), f); err != nil {
		ctrl.Log.Error(err, "fulcrum stopped")
		os.Exit(1)
	}
}

func restConfig(f *flags) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if f.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, err
	}
	// Each step costs about two writes per rollout; client-go's default of
	// 5 QPS would make 1,000 rollouts take minutes per step.
	cfg.QPS, cfg.Burst = float32(f.kubeAPIQPS), f.kubeAPIBurst
	return cfg, nil
}

func run(ctx context.Context, f *flags) error {
	cfg, err := restConfig(f)
	if err != nil {
		return fmt.Errorf("kubernetes config: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: f.metricsAddr},
		HealthProbeBindAddress:        f.probeAddr,
		LeaderElection:                f.leaderElect,
		LeaderElectionID:              f.leaderElectionID,
		LeaderElectionNamespace:       f.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true, // a clean shutdown hands over at once
		LeaseDuration:                 &f.leaseDuration,
		RenewDeadline:                 &f.renewDeadline,
		RetryPeriod:                   &f.retryPeriod,
		Cache:                         cacheOptions(f),
		// Istio objects are handled as unstructured (see package
		// controller): read them from the cache too.
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: true}},
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	for _, c := range components {
		if !c.enabled(f) {
			continue
		}
		if err := c.setup(ctx, mgr, f); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		ctrl.Log.Info("component enabled", "component", c.name)
	}
	return mgr.Start(ctx)
}

// cacheOptions limits the shared cache, and so the controller and the admin
// API, to --namespaces: several installations (or test scenarios) can then
// share one cluster without reconciling each other's rollouts.
func cacheOptions(f *flags) cache.Options {
	opts := cache.Options{ByObject: controller.CacheByObject()}
	if ns := splitList(f.namespaces); len(ns) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, n := range ns {
			opts.DefaultNamespaces[n] = cache.Config{}
		}
	}
	return opts
}
