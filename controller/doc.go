// Package controller reconciles ModelRollouts: it reads the rollout's route
// object and versions through its router (package router: an Istio
// VirtualService with its DestinationRule, or a Gateway API HTTPRoute or
// GRPCRoute with its version Services), counts the versions' Ready pods,
// asks the pure state machine (package controller/rollout) what to do, and
// writes — the route object first (through the router), then the spec on
// promotion, then the status — only when something changed.
//
// It is built on controller-runtime: its manager gives one shared informer
// cache for the four kinds watched here (so 1,000 rollouts cost one watch per
// kind, not one per rollout), field indexes to map a VirtualService,
// DestinationRule or pod event back to the rollouts that use it, a work queue
// that deduplicates and rate-limits retries, requeue-after scheduling (steps
// are timed from status timestamps, never by per-rollout goroutines), Lease
// leader election, and the /metrics and health endpoints. Route objects are
// read and written as unstructured data, Istio's in whichever
// networking.istio.io version the API server serves (see
// DetectIstioVersion), which keeps every field the user wrote intact.
package controller
