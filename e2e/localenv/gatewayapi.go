package localenv

import "path/filepath"

// gatewayAPIModule ships the Gateway API CRDs; the project's go.mod pins it.
const gatewayAPIModule = "sigs.k8s.io/gateway-api"

// gatewayAPIKinds are the resources (plural names) of the Gateway API CRDs
// every environment installs, from the module's standard channel: the routes
// Fulcrum writes (HTTPRoute, GRPCRoute) and the kinds they refer to. The
// channel's other kinds (TCPRoute, TLSRoute, UDPRoute, ListenerSet,
// BackendTLSPolicy) are left out, since every test package pays for each CRD
// at start-up, and so is the channel's ValidatingAdmissionPolicy
// (safe-upgrades), which guards upgrades this cluster never does.
var gatewayAPIKinds = []string{"httproutes", "grpcroutes", "gateways", "gatewayclasses", "referencegrants"}

// gatewayAPICRDFiles are the CRD files of gatewayAPIKinds in the module
// folder dir.
func gatewayAPICRDFiles(dir string) []string {
	out := make([]string, 0, len(gatewayAPIKinds))
	for _, k := range gatewayAPIKinds {
		out = append(out, filepath.Join(dir, "config", "crd", "standard", "gateway.networking.k8s.io_"+k+".yaml"))
	}
	return out
}
