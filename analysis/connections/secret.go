package connections

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/common/config"
	"go.yaml.in/yaml/v2"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
)

// ParseSecretConfig decodes a template's HTTP client settings from a
// Secret's value: strict YAML in Prometheus's format, Prometheus's own
// checks, and no field that names a file or a secret manager's entry.
//
// Files are refused because they would be read on the controller's
// filesystem: a template author could otherwise send the controller's
// service-account token (credentials_file:
// /var/run/secrets/kubernetes.io/serviceaccount/token) or its client key
// to an address of their choosing. Everything comes inline instead
// (password, credentials, tls_config.ca/cert/key as PEM text).
//
// Errors never quote the value: a YAML type error would otherwise show a
// password in the rollout's status, which people who may not read the
// Secret can read.
func ParseSecretConfig(data []byte) (*config.HTTPClientConfig, error) {
	if strings.TrimSpace(string(data)) == "" {
		return nil, errors.New("the value is empty")
	}
	var raw any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, redact(provider.YAMLError(err, ""))
	}
	if _, ok := raw.(map[any]any); !ok {
		return nil, errors.New("invalid YAML: want a mapping of Prometheus's http client settings")
	}
	cfg := config.DefaultHTTPClientConfig
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return nil, redact(provider.YAMLError(err, "the value takes "+provider.HTTPFields))
	}
	if refs := fileRefs(&cfg); len(refs) > 0 {
		return nil, fmt.Errorf("%s name files or secret-manager entries, which would be read on the controller's filesystem; write the values inline instead (password, credentials, client_secret, tls_config.ca, tls_config.cert, tls_config.key, http_headers.<name>.values or secrets)", strings.Join(refs, ", "))
	}
	return &cfg, nil
}

// backquoted is how the YAML decoder quotes the value it could not use.
var backquoted = regexp.MustCompile("`[^`]*`")

func redact(err error) error {
	return errors.New(backquoted.ReplaceAllString(err.Error(), "(value hidden)"))
}

// fileRefs lists the fields of c that name a file or a secret manager's
// entry, as YAML paths.
func fileRefs(c *config.HTTPClientConfig) []string {
	var out []string
	set := func(path, v string) {
		if v != "" {
			out = append(out, path)
		}
	}
	tls := func(prefix string, t config.TLSConfig) {
		set(prefix+"ca_file", t.CAFile)
		set(prefix+"cert_file", t.CertFile)
		set(prefix+"key_file", t.KeyFile)
		set(prefix+"ca_ref", t.CARef)
		set(prefix+"cert_ref", t.CertRef)
		set(prefix+"key_ref", t.KeyRef)
	}
	set("bearer_token_file", c.BearerTokenFile)
	if b := c.BasicAuth; b != nil {
		set("basic_auth.username_file", b.UsernameFile)
		set("basic_auth.password_file", b.PasswordFile)
		set("basic_auth.username_ref", b.UsernameRef)
		set("basic_auth.password_ref", b.PasswordRef)
	}
	if a := c.Authorization; a != nil {
		set("authorization.credentials_file", a.CredentialsFile)
		set("authorization.credentials_ref", a.CredentialsRef)
	}
	if o := c.OAuth2; o != nil {
		set("oauth2.client_secret_file", o.ClientSecretFile)
		set("oauth2.client_secret_ref", o.ClientSecretRef)
		set("oauth2.client_certificate_key_file", o.ClientCertificateKeyFile)
		set("oauth2.client_certificate_key_ref", o.ClientCertificateKeyRef)
		tls("oauth2.tls_config.", o.TLSConfig)
	}
	tls("tls_config.", c.TLSConfig)
	if h := c.HTTPHeaders; h != nil {
		names := make([]string, 0, len(h.Headers))
		for n, v := range h.Headers {
			if len(v.Files) > 0 {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, "http_headers."+n+".files")
		}
	}
	return out
}
