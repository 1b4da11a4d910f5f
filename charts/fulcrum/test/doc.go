// Package test holds the tests of the Helm chart charts/fulcrum, in a module
// of their own so that Helm, a heavy dependency, stays out of Fulcrum's
// module. They render the chart with Helm as a library for several value
// sets, lint it, check it against the single sources it copies
// (manifests/crd, manifests/alerts, manifests/grafana, manifests/webhook and
// the RBAC of manifests/install), check that every flag it passes exists in
// the fulcrum binary, and dry-run its output on a real kube-apiserver.
//
//	cd charts/fulcrum/test && go test ./...
package test
