// Package faults is Fulcrum's fault suite: each test breaks something under
// a rollout that serves live traffic (the rollout deleted, the candidate's
// pods or subset gone, the API server restarted, etcd stalled, Prometheus
// flapping, the controller or its leader killed at the worst moment) and
// asserts the invariants of docs/reliability.md from the data plane's own
// counts: no request reaches a missing or unready subset later than a
// stated bound after the fault is visible to the controller, no history
// entry is lost or duplicated, and the weights end where they should.
//
// The tests (in the _test files) run on one local environment (e2e/localenv)
// with the rig of e2e/rig and are skipped under go test -short. This file's
// package holds what they measure with: Traffic, which samples the
// data-plane stand-in's istio_requests_total over time, and HistoryProblems,
// which compares a rollout's history before and after a fault.
//
//	go test -count=1 ./e2e/faults/
//	go test -run '^$' -bench TimeToSafe -benchtime 5x ./e2e/faults/
package faults
