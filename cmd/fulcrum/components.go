package main

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/fulcrum-ml/fulcrum/analysis"
	"github.com/fulcrum-ml/fulcrum/controller"
	"github.com/fulcrum-ml/fulcrum/controller/gates"
	"github.com/fulcrum-ml/fulcrum/controller/warmup"
	"github.com/fulcrum-ml/fulcrum/notify"
)

// component is one part of the binary, switched on by a flag. setup adds it
// to the manager: a reconciler runs only on the elected leader; a server that
// must answer on every replica (admin API, webhook) is added as a Runnable
// whose NeedLeaderElection returns false, or through mgr.GetWebhookServer().
type component struct {
	name    string
	enabled func(*flags) bool
	setup   func(ctx context.Context, mgr ctrl.Manager, f *flags) error
}

// components are wired in this order.
var components = []component{
	{name: "controller", enabled: func(f *flags) bool { return f.controller }, setup: setupController},
	// The admin API and dashboard serve on --admin-bind-address on every
	// replica (servers.go).
	{name: "admin", enabled: func(f *flags) bool { return f.admin }, setup: setupAdmin},
	// The webhook serves on --webhook-port on every replica (servers.go).
	{name: "webhook", enabled: func(f *flags) bool { return f.webhook }, setup: setupWebhook},
}

func setupController(_ context.Context, mgr ctrl.Manager, f *flags) error {
	version, err := controller.DetectIstioVersion(mgr.GetRESTMapper())
	if err != nil {
		return err
	}
	var analyzer analysis.Analyzer
	if f.prometheus.Address != "" {
		engine, err := analysis.NewEngine(analysis.EngineConfig{
			Prometheus: f.prometheus,
			Templates:  mgr.GetClient(),
			// Addresses MetricTemplates may name besides f.prometheus's.
			AllowedPrometheusAddresses: f.allowedAddresses,
			// A direct GET per Secret read: the cache would list and
			// watch every Secret in the cluster (RBAC grants get only).
			Secrets:         mgr.GetAPIReader(),
			Registerer:      metrics.Registry,
			DisableBatching: !f.analysisBatch,
			// The webhook refuses inline queries by the same flag; the
			// engine refuses them too, since a webhook can be bypassed.
			AllowInlineQueries: f.allowInlineQueries,
			NamespaceLabel:     f.queryNamespaceLabel,
		})
		if err != nil {
			return fmt.Errorf("analysis engine: %w", err)
		}
		analyzer = engine
	} else {
		ctrl.Log.Info("no --prometheus-url or --prometheus-config-file: rollouts with metrics will get Error rounds; rollouts without metrics advance on time")
	}
	m, err := controller.NewMetrics(metrics.Registry)
	if err != nil {
		return err
	}
	var traffic analysis.TrafficReader
	var capacity analysis.CapacityReader
	var rewards analysis.RewardReader
	if engine, ok := analyzer.(*analysis.Engine); ok {
		traffic, capacity, rewards = engine, engine, engine
	}
	// Notifications: the dispatcher runs with the manager (on the leader,
	// like the reconciler) and tells the controller when a rollout's
	// delivery failures change, so its Notified condition follows.
	var rec *controller.Reconciler
	disp, err := notify.New(notify.Config{
		Client: mgr.GetClient(), SecretReader: mgr.GetAPIReader(),
		DashboardURL: f.dashboardURL, Registerer: metrics.Registry,
		OnChange: func(ns, name string) { rec.NotifyChanged(ns, name) },
	})
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	if err := mgr.Add(disp); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	r, err := controller.New(controller.Config{
		Notifier:  disp,
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("fulcrum-controller"),
		Analyzer:  analyzer,
		Traffic:   traffic,
		Capacity:  capacity,
		Rewards:   rewards,
		Warmup: warmup.NewSender(warmup.Config{
			Reader: mgr.GetAPIReader(), AllowedHosts: splitList(f.warmupGateways),
		}),
		Gates: gates.NewRunner(gates.Config{
			Hosts:       gates.Hosts{Allowed: splitList(f.gateAllowedHosts), ClusterDomain: f.clusterDomain},
			MaxInFlight: f.gateMaxInFlight,
		}),
		IstioVersion:  version,
		GatewayKinds:  gatewayKinds(mgr, "controller"),
		Metrics:       m,
		ClusterDomain: f.clusterDomain,
	})
	if err != nil {
		return err
	}
	rec = r
	ctrl.Log.Info("controller configured", "istioVersion", version, "analysis", analyzer != nil)
	return r.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: f.maxConcurrentReconciles})
}
