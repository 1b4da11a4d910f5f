// Package validation holds the checks on a ModelRollout that one object cannot
// prove on its own (CEL rules in the CRD cover those): the VirtualService and
// DestinationRule it names exist and fit, its metric templates exist and
// render to valid PromQL, no other rollout manages the same route, and stable
// does not move under a running rollout. It also finds risky but legal
// settings and returns them as warnings.
//
// The admission webhook is their caller. What a rollout's route object
// means (which routes are managed, their weights, the versions) is not
// decided here but by package router, which the controller and the admin
// API use too: a check that resolves routes goes through it. The
// controller does not call these checks; it meets a bad reference with
// phase Failed and the router's message, since a webhook may be bypassed.
// They read the cluster only through Lookups (and Options.Routers), so
// callers choose live reads or a cache, and tests use plain maps.
//
// Every function returns a field.ErrorList whose paths name the offending
// field (spec.virtualService.routes[0], spec.analysis.metrics[1].query, ...)
// and whose details say how to fix it, plus a list of warnings.
package validation
