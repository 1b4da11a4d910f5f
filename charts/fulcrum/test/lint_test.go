package test

import (
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestLint runs `helm lint` (schema, templates, Chart.yaml, rendered YAML)
// with every value set; warnings fail as errors do.
func TestLint(t *testing.T) {
	for name, vs := range valueSets {
		t.Run(name, func(t *testing.T) {
			res := lint.AllWithKubeVersion(chartDir(t), vs.parse(t), vs.releaseNamespace(), kubeVersion)
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint: %s", m)
				}
			}
		})
	}
}

// TestBadValuesAreRefused: values the binary would reject at start-up, or
// that would install a broken release, fail at `helm install` with a
// message naming the value.
func TestBadValuesAreRefused(t *testing.T) {
	cases := map[string]struct{ values, want string }{
		"unknown guard mode":           {"webhook: {guardMode: block}", "guardMode"},
		"unknown certificate source":   {"webhook: {certificates: vault}", "certificates"},
		"admin TLS Secret unnamed":     {"admin: {tls: {mode: secret}}", "admin.tls.secretName"},
		"webhook Secret without CA":    {"webhook: {certificates: secret, secret: {name: wh}}", "webhook.secret.caBundle"},
		"nothing enabled":              {"controller: {enabled: false}\nadmin: {enabled: false}\nwebhook: {enabled: false}", "nothing would run"},
		"misspelt value":               {"replica: 3", "replica"},
		"lease duration not duration":  {"leaderElection: {leaseDuration: 15}", "leaseDuration"},
		"image digest without sha256":  {"image: {digest: abc}", "digest"},
		"failure policy":               {"webhook: {guard: {failurePolicy: Deny}}", "failurePolicy"},
		"existing SA unnamed":          {"serviceAccount: {create: false}", "serviceAccount.name"},
		"admin on the webhook's port":  {"admin: {servicePort: 443}", "admin.servicePort"},
		"replicas without election":    {"leaderElection: {enabled: false}", "leader election"},
		"bearer and basic auth":        {"prometheus: {bearerToken: {secretName: t}, basicAuth: {secretName: b}}", "prometheus.bearerToken and prometheus.basicAuth"},
		"two CA sources":               {"prometheus: {tls: {ca: {secretName: s, configMapName: c}}}", "prometheus.tls.ca.secretName and prometheus.tls.ca.configMapName"},
		"own file and rendered values": {"prometheus: {configSecret: {name: mine}, headers: {X-Scope-OrgID: a}}", "prometheus.configSecret"},
		"authorization header":         {"prometheus: {headers: {authorization: Bearer x}}", "prometheus.headers.Authorization"},
		"header name with a space":     {"prometheus: {headers: {\"X Org\": a}}", "X Org"},
		"proxy without scheme":         {"prometheus: {proxyURL: proxy:3128}", "proxyURL"},
		"misspelt prometheus value":    {"prometheus: {basicAuth: {secret: b}}", "secret"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			install := action.NewInstall(&action.Configuration{})
			install.ClientOnly, install.DryRun, install.Replace = true, true, true
			install.ReleaseName, install.Namespace, install.KubeVersion = "fulcrum", "fulcrum-system", kubeVersion
			_, err := install.Run(loadChart(t), valueSet{values: tc.values}.parse(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming %q, got %v", tc.want, err)
			}
		})
	}
}
