// Package controller reconciles ModelRollouts: it gathers the rollout's
// VirtualService, DestinationRule and subset pods, asks the pure state machine
// (package controller/rollout) what to do, computes the new VirtualService
// with the pure router (package router/istio), and writes — the
// VirtualService first, then the spec on promotion, then the status — only
// when something changed.
//
// It is built on controller-runtime: its manager gives one shared informer
// cache for the four kinds watched here (so 1,000 rollouts cost one watch per
// kind, not one per rollout), field indexes to map a VirtualService,
// DestinationRule or pod event back to the rollouts that use it, a work queue
// that deduplicates and rate-limits retries, requeue-after scheduling (steps
// are timed from status timestamps, never by per-rollout goroutines), Lease
// leader election, and the /metrics and health endpoints. Istio objects are
// read and written as unstructured data in whichever networking.istio.io
// version the API server serves (see DetectIstioVersion), which keeps every
// field the user wrote intact.
package controller
