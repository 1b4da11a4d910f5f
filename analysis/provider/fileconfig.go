package provider

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"
)

// FileConfig is the controller's Prometheus connection as a file
// (--prometheus-config-file): the address, the query timeout, and
// Prometheus's own HTTP client settings inline, written exactly as in a
// Prometheus scrape config or remote_write block:
//
//	url: https://mimir.monitoring:8080/prometheus
//	timeout: 20s
//	basic_auth:
//	  username: fulcrum
//	  password_file: /etc/fulcrum/prometheus/password
//	tls_config:
//	  ca_file: /etc/fulcrum/prometheus/ca.crt
//	http_headers:
//	  X-Scope-OrgID:
//	    values: [team-a]
type FileConfig struct {
	// URL is the base URL of the Prometheus HTTP API.
	URL string `yaml:"url,omitempty"`
	// Timeout bounds each query; DefaultTimeout when unset.
	Timeout model.Duration `yaml:"timeout,omitempty"`

	// HTTPClientConfig is a named field, not an embedded one: embedded, its
	// UnmarshalYAML would be promoted and decode the whole file as HTTP
	// settings alone (Prometheus's scrape config does the same).
	HTTPClientConfig config.HTTPClientConfig `yaml:",inline"`
}

// UnmarshalYAML starts from Prometheus's defaults (follow redirects,
// HTTP/2), as a scrape config does, and checks the HTTP settings. The
// inline HTTPClientConfig's own UnmarshalYAML is not called by the YAML
// decoder for an inline field, so its defaults and checks are done here.
func (c *FileConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = FileConfig{HTTPClientConfig: config.DefaultHTTPClientConfig}
	type plain FileConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	return c.HTTPClientConfig.Validate()
}

// LoadFileConfig reads and checks a connection file. Unknown fields are
// errors (a misspelt password_file must not silently send no password),
// and every error names the file. Relative file names inside it are taken
// relative to the file's folder, as Prometheus does.
func LoadFileConfig(path string) (*FileConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("prometheus config file %s: %w", path, err)
	}
	c, err := ParseFileConfig(data)
	if err != nil {
		return nil, fmt.Errorf("prometheus config file %s: %w", path, err)
	}
	c.HTTPClientConfig.SetDirectory(filepath.Dir(path))
	return c, nil
}

// ParseFileConfig decodes a connection file's content strictly.
func ParseFileConfig(data []byte) (*FileConfig, error) {
	c := &FileConfig{}
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return nil, YAMLError(err, "the file takes url, timeout and "+HTTPFields)
	}
	if c.URL != "" {
		if err := CheckAddress(c.URL); err != nil {
			return nil, fmt.Errorf("url: %w", err)
		}
	}
	if c.Timeout < 0 {
		return nil, fmt.Errorf("timeout %s: want a positive duration such as 10s", c.Timeout)
	}
	return c, nil
}

// QueryTimeout is Timeout as a time.Duration.
func (c *FileConfig) QueryTimeout() time.Duration { return time.Duration(c.Timeout) }

// HTTPFields lists the top-level fields of Prometheus's HTTP client
// settings, for error messages.
const HTTPFields = "Prometheus's http client settings (basic_auth, authorization, oauth2, tls_config, proxy_url, no_proxy, proxy_from_environment, proxy_connect_header, http_headers, follow_redirects, enable_http2)"

// goTypeName matches the Go type the YAML decoder names in an unknown-field
// or type error ("field usernme not found in type config.plain", "cannot
// unmarshal !!str `x` into config.plain"): the type means nothing to
// someone writing YAML, the field and line do.
var goTypeName = regexp.MustCompile(` (in type|into) [][*A-Za-z0-9_.]+`)

// YAMLError rewrites a YAML decoding error for the person who wrote the
// YAML: one line, the line number and field kept, Go type names dropped,
// and fields, the hint on what the YAML takes, added to an unknown-field
// error. A check of the settings themselves (two kinds of auth, say) is
// returned as it is.
func YAMLError(err error, fields string) error {
	msg := err.Error()
	if !strings.HasPrefix(msg, "yaml: ") {
		return fmt.Errorf("invalid settings: %w", err)
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	unknown := strings.Contains(msg, " not found in type ")
	msg = goTypeName.ReplaceAllString(msg, "")
	lines := strings.Split(msg, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	msg = "invalid YAML: " + strings.Join(lines, "; ")
	if unknown {
		msg += "; " + fields
	}
	return errors.New(msg)
}
