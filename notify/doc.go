// Package notify sends ModelRollouts' history to the sinks that Notifiers
// and ClusterNotifiers name: a generic webhook (CloudEvents 1.0), Slack,
// Microsoft Teams and Alertmanager.
//
// The controller builds an Event from a rollout and one of its history
// entries (NewEvent) and hands it to a Dispatcher (Publish), which never
// blocks: events wait in a bounded queue (the oldest is dropped, and
// counted, when it is full) until a worker finds the matching sinks and
// delivers to each with retries. Payloads are built by pure functions of the
// event (cloudevents.go, slack.go, teams.go, alertmanager.go); transport and
// retries live apart (transport.go, retry.go), and so do the Notifiers'
// status (status.go) and the per-rollout failures the controller reports
// (failures.go).
//
// Secrets are read one at a time by name (a direct GET), never listed or
// watched, as the controller's RBAC allows; their values never appear in
// errors, status or logs.
package notify
