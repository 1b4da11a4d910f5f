package istio

import (
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestClusterDomainFQDN(t *testing.T) {
	tests := map[string]struct {
		domain    ClusterDomain
		host, ns  string
		wantFQDN  string
		wantSvc   string
		sameAsDR  bool // the same host as fraud.ml.svc.<domain>, written in ml
		wantNames []string
	}{
		"short name": {
			host: "fraud", ns: "ml", wantFQDN: "fraud.ml.svc.cluster.local", wantSvc: "fraud", sameAsDR: true,
			wantNames: []string{"fraud.ml.svc.cluster.local", "fraud", "fraud.ml", "fraud.ml.svc"},
		},
		"full name": {
			host: "fraud.ml.svc.cluster.local", ns: "ml", wantFQDN: "fraud.ml.svc.cluster.local", wantSvc: "fraud", sameAsDR: true,
		},
		"name.namespace is taken as written, as Istio does": {
			host: "fraud.ml", ns: "ml", wantFQDN: "fraud.ml", wantNames: []string{"fraud.ml"},
		},
		"name.namespace.svc is taken as written, as Istio does": {
			host: "fraud.ml.svc", ns: "ml", wantFQDN: "fraud.ml.svc",
		},
		"upper case": {
			host: "Fraud.ML.svc.Cluster.Local", ns: "ml", wantFQDN: "fraud.ml.svc.cluster.local", wantSvc: "fraud", sameAsDR: true,
		},
		"trailing dot": {
			host: "fraud.ml.svc.cluster.local.", ns: "ml", wantFQDN: "fraud.ml.svc.cluster.local", wantSvc: "fraud", sameAsDR: true,
		},
		"a short name with a trailing dot is absolute, never expanded": {
			host: "fraud.", ns: "ml", wantFQDN: "fraud",
		},
		"short name in another namespace": {
			host: "fraud", ns: "other", wantFQDN: "fraud.other.svc.cluster.local", wantSvc: "fraud",
		},
		"full name of another namespace": {
			host: "fraud.other.svc.cluster.local", ns: "ml", wantFQDN: "fraud.other.svc.cluster.local",
		},
		"external host": {
			host: "api.example.com", ns: "ml", wantFQDN: "api.example.com", wantNames: []string{"api.example.com"},
		},
		"wildcard": {host: "*", ns: "ml", wantFQDN: "*"},
		"wildcard domain": {
			host: "*.ml.svc.cluster.local", ns: "ml", wantFQDN: "*.ml.svc.cluster.local",
		},
		"IPv6 address": {host: "fd00::1", ns: "ml", wantFQDN: "fd00::1"},
		"IPv4 address": {host: "10.0.0.1", ns: "ml", wantFQDN: "10.0.0.1"},
		"empty":        {host: "", ns: "ml", wantFQDN: ""},
		"custom domain, short name": {
			domain: "corp.internal", host: "fraud", ns: "ml", wantFQDN: "fraud.ml.svc.corp.internal", wantSvc: "fraud", sameAsDR: true,
			wantNames: []string{"fraud.ml.svc.corp.internal", "fraud", "fraud.ml", "fraud.ml.svc"},
		},
		"custom domain, full name": {
			domain: "corp.internal", host: "fraud.ml.svc.corp.internal", ns: "ml", wantFQDN: "fraud.ml.svc.corp.internal", wantSvc: "fraud", sameAsDR: true,
		},
		"custom domain, upper case and trailing dot": {
			domain: "Corp.Internal.", host: "FRAUD.ml.svc.corp.internal.", ns: "ml", wantFQDN: "fraud.ml.svc.corp.internal", wantSvc: "fraud", sameAsDR: true,
		},
		"custom domain, a cluster.local name is some other host": {
			domain: "corp.internal", host: "fraud.ml.svc.cluster.local", ns: "ml", wantFQDN: "fraud.ml.svc.cluster.local",
		},
		"custom domain, another namespace": {
			domain: "corp.internal", host: "fraud", ns: "other", wantFQDN: "fraud.other.svc.corp.internal", wantSvc: "fraud",
		},
		"custom domain, external host": {
			domain: "corp.internal", host: "api.example.com", ns: "ml", wantFQDN: "api.example.com",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := tc.domain
			if got := d.FQDN(tc.host, tc.ns); got != tc.wantFQDN {
				t.Errorf("FQDN(%q, %q) = %q, want %q", tc.host, tc.ns, got, tc.wantFQDN)
			}
			if got := d.Service(tc.host, tc.ns); got != tc.wantSvc {
				t.Errorf("Service(%q, %q) = %q, want %q", tc.host, tc.ns, got, tc.wantSvc)
			}
			dr := Host{Name: "fraud.ml.svc." + d.String(), Namespace: "ml"}
			if got := d.Same(Host{Name: tc.host, Namespace: tc.ns}, dr); got != tc.sameAsDR {
				t.Errorf("Same(%q in %s, %q) = %t, want %t", tc.host, tc.ns, dr.Name, got, tc.sameAsDR)
			}
			if tc.wantNames != nil && !slices.Equal(d.DNSNames(tc.host, tc.ns), tc.wantNames) {
				t.Errorf("DNSNames(%q, %q) = %q, want %q", tc.host, tc.ns, d.DNSNames(tc.host, tc.ns), tc.wantNames)
			}
		})
	}
}

func TestClusterDomainSameIsRelativeToEachRulesNamespace(t *testing.T) {
	var d ClusterDomain
	if !d.Same(Host{"fraud", "ml"}, Host{"fraud.ml.svc.cluster.local", "other"}) {
		t.Error("a short name in ml and the full name written in another namespace are the same Service")
	}
	if d.Same(Host{"fraud", "ml"}, Host{"fraud", "other"}) {
		t.Error("the same short name in two namespaces names two Services")
	}
	if d.Same(Host{"", "ml"}, Host{"", "ml"}) {
		t.Error("an empty host names nothing")
	}
}

func TestClusterDomainCheck(t *testing.T) {
	for _, ok := range []ClusterDomain{"", "cluster.local", "corp.internal", "Corp.Internal.", "local"} {
		if err := ok.Check(); err != nil {
			t.Errorf("Check(%q) = %v, want nil", ok, err)
		}
	}
	for bad, want := range map[ClusterDomain]string{
		"cluster_local":     "not a DNS domain",
		"-cluster.local":    "not a DNS domain",
		"svc.cluster.local": "includes the svc label",
		"cluster local":     "not a DNS domain",
	} {
		err := bad.Check()
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "cluster.local") {
			t.Errorf("Check(%q) = %v, want an error saying %q and naming the default", bad, err, want)
		}
	}
}

// TestRouterCustomClusterDomain: a VirtualService and DestinationRule that
// spell the model's host in a custom cluster domain are the model's host
// when the controller is told that domain, and another host (refused, never
// weighed) under the default one.
func TestRouterCustomClusterDomain(t *testing.T) {
	vs := decodeUnstructured(t, yamlJSON(t, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: fraud, namespace: ml}
spec:
  hosts: [fraud]
  http:
    - name: predict
      route:
        - destination: {host: fraud.ml.svc.corp.internal, subset: v1}
          weight: 70
        - destination: {host: fraud, subset: v2}
          weight: 30
`))
	dr, err := DecodeDestinationRule(decodeUnstructured(t, yamlJSON(t, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: fraud, namespace: ml}
spec:
  host: fraud.ml.svc.corp.internal
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`)))
	if err != nil {
		t.Fatal(err)
	}
	custom := Target{Routes: []string{"predict"}, DestinationRule: dr, Domain: "corp.internal"}
	rw, err := ReadWeights(vs, custom)
	if err != nil {
		t.Fatalf("ReadWeights in corp.internal: %v", err)
	}
	if got := rw["predict"]; got["v1"] != 70 || got["v2"] != 30 {
		t.Errorf("weights in corp.internal = %v, want v1 70, v2 30", got)
	}

	def := custom
	def.Domain = ""
	_, err = ReadWeights(vs, def)
	if err == nil || !strings.Contains(err.Error(), `points at host "fraud"`) || !strings.Contains(err.Error(), "fraud.ml.svc.cluster.local") {
		t.Fatalf("ReadWeights in the default domain = %v, want a host mismatch for the short name", err)
	}
}

func yamlJSON(t *testing.T, s string) []byte {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
