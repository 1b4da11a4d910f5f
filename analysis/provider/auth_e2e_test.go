package provider

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
	"github.com/fulcrum-ml/fulcrum/e2e/promserver/promauth"
)

// The connection modes users run, each against a real Prometheus (Debian's,
// `make deps`) behind that kind of auth, through the same path the
// controller takes: a --prometheus-config-file as users write it, loaded by
// LoadFileConfig, then a query.

func TestBasicAuthAndCAAgainstRealPrometheus(t *testing.T) {
	pki := newPKI(t)
	// Given a Prometheus that serves HTTPS with the test CA's certificate
	// and lets in only promauth.User with promauth.Password,
	srv := startProm(t, promauth.Web{BasicAuth: true, TLS: pki}, config.HTTPClientConfig{
		BasicAuth: &config.BasicAuth{Username: promauth.User, Password: promauth.Password},
		TLSConfig: config.TLSConfig{CAFile: pki.CAFile},
	})
	dir := t.TempDir()
	password := filepath.Join(dir, "password")
	writeFile(t, password, promauth.Password+"\n")

	right := fmt.Sprintf("url: %s\nbasic_auth:\n  username: %s\n  password_file: %s\ntls_config:\n  ca_file: %s\n", srv.URL, promauth.User, password, pki.CAFile)
	// when the controller connects with the right password and the CA,
	// then the query answers.
	p := connect(t, dir, right)
	queryOK(t, p)

	// When the password file is rotated to a wrong one, the next query is
	// refused: the file is re-read on every request, as Prometheus does.
	writeFile(t, password, "wrong")
	queryRefused(t, p, "401")
	writeFile(t, password, promauth.Password)
	queryOK(t, p)

	// A wrong inline password is refused too.
	wrong := fmt.Sprintf("url: %s\nbasic_auth:\n  username: %s\n  password: nope\ntls_config:\n  ca_file: %s\n", srv.URL, promauth.User, pki.CAFile)
	queryRefused(t, connect(t, dir, wrong), "401")

	// Without the CA the server's certificate is not trusted.
	noCA := fmt.Sprintf("url: %s\nbasic_auth:\n  username: %s\n  password_file: %s\n", srv.URL, promauth.User, password)
	queryRefused(t, connect(t, dir, noCA), "certificate")
}

func TestClientCertificateAgainstRealPrometheus(t *testing.T) {
	pki := newPKI(t)
	// Given a Prometheus that wants a client certificate signed by the CA,
	srv := startProm(t, promauth.Web{TLS: pki, ClientCerts: true}, config.HTTPClientConfig{
		TLSConfig: config.TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile},
	})
	dir := t.TempDir()
	// when the controller presents one, the query answers;
	mtls := fmt.Sprintf("url: %s\ntls_config:\n  ca_file: %s\n  cert_file: %s\n  key_file: %s\n", srv.URL, pki.CAFile, pki.ClientCertFile, pki.ClientKeyFile)
	queryOK(t, connect(t, dir, mtls))
	// without one, the server refuses the connection. Under TLS 1.3 the
	// server checks the client's certificate after the client considers the
	// handshake done, so the client sees either the server's alert or, when
	// HTTP/2 was about to start on the connection, a failed HTTP/2 setup.
	noCert := fmt.Sprintf("url: %s\ntls_config:\n  ca_file: %s\n", srv.URL, pki.CAFile)
	queryRefused(t, connect(t, dir, noCert), "certificate", "http2: client conn could not be established")
}

func TestBearerAndTenantHeaderAgainstRealPrometheus(t *testing.T) {
	// Given a Prometheus behind a gateway that wants a bearer token and an
	// X-Scope-OrgID header (promauth.Gateway: Prometheus's web config
	// cannot check a bearer token itself),
	srv := startProm(t, promauth.Web{}, config.HTTPClientConfig{})
	gw, err := promauth.StartGateway(promauth.GatewayConfig{Target: srv.URL, Token: "t0ken", Header: "X-Scope-OrgID", Value: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	writeFile(t, token, "t0ken\n")
	header := "http_headers:\n  X-Scope-OrgID:\n    values: [team-a]\n"

	// when the controller sends both, the query answers;
	queryOK(t, connect(t, dir, fmt.Sprintf("url: %s\nauthorization:\n  credentials_file: %s\n%s", gw.URL, token, header)))
	// the deprecated bearer_token_file spelling works as in Prometheus;
	queryOK(t, connect(t, dir, fmt.Sprintf("url: %s\nbearer_token_file: %s\n%s", gw.URL, token, header)))
	// a wrong token or a missing header is refused.
	queryRefused(t, connect(t, dir, fmt.Sprintf("url: %s\nauthorization:\n  credentials: wrong\n%s", gw.URL, header)), "401")
	queryRefused(t, connect(t, dir, fmt.Sprintf("url: %s\nauthorization:\n  credentials_file: %s\n", gw.URL, token)), "403")
}

func newPKI(t *testing.T) *promauth.PKI {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	pki, err := promauth.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return pki
}

// startProm runs Prometheus with web's auth; client is what the readiness
// check needs to get in.
func startProm(t *testing.T, web promauth.Web, client config.HTTPClientConfig) *promserver.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	hc, err := config.NewClientFromConfig(client, "ready")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := promserver.Start(ctx, promserver.Config{WebConfig: web.Config(), HTTPS: web.TLS != nil, Client: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// connect loads a connection file with content yaml, as the controller
// does for --prometheus-config-file.
func connect(t *testing.T, dir, yaml string) *Prometheus {
	t.Helper()
	path := filepath.Join(dir, "prometheus.yaml")
	writeFile(t, path, yaml)
	fc, err := LoadFileConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPrometheus(PrometheusConfig{Address: fc.URL, Timeout: 5 * time.Second, HTTP: fc.HTTPClientConfig})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func queryOK(t *testing.T, p *Prometheus) {
	t.Helper()
	got, err := p.Query(context.Background(), "vector(1)", time.Now())
	if err != nil || len(got) != 1 || got[0].Value != 1 {
		t.Fatalf("query: %v %+v", err, got)
	}
}

// queryRefused wants the query to fail as the provider being unreachable
// (never as no data, which a judge would read as an empty window), with
// one of the causes in the message.
func queryRefused(t *testing.T, p *Prometheus, causes ...string) {
	t.Helper()
	_, err := p.Query(context.Background(), "vector(1)", time.Now())
	if !errors.Is(err, ErrUnreachable) || !slices.ContainsFunc(causes, func(c string) bool { return strings.Contains(err.Error(), c) }) {
		t.Fatalf("query: %v; want ErrUnreachable mentioning one of %q", err, causes)
	}
}
