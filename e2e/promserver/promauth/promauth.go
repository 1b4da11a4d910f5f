// Package promauth puts a real Prometheus (package promserver) behind the
// kinds of auth users run it with, for tests of Fulcrum's client side:
// basic auth, TLS and client certificates through Prometheus's own
// --web.config.file, and a bearer token with a tenant header (what Mimir,
// Thanos and Cortex gateways want) through a loopback reverse proxy.
// Everything listens on 127.0.0.1 only.
package promauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The basic-auth user that WebConfig lets in. PasswordHash is Password
// hashed with bcrypt (cost 10), which is what Prometheus's
// basic_auth_users wants; it is fixed here so the tests need no bcrypt.
const (
	User         = "fulcrum"
	Password     = "correct horse battery"
	PasswordHash = "$2a$10$WlcllpuoNbacEjams2uALObBOpmB/C2Z1o1hpv1.8MH3ZdPs3hZCe"
)

// PKI is a test CA with a serving certificate for 127.0.0.1 and a client
// certificate, as PEM text and as files in Dir.
type PKI struct {
	Dir string
	// Files: the CA certificate, the server's pair and the client's pair.
	CAFile, ServerCertFile, ServerKeyFile, ClientCertFile, ClientKeyFile string
	// PEM text of the same, for configs that carry them inline (a Secret).
	CAPEM, ClientCertPEM, ClientKeyPEM []byte
}

// NewPKI makes a CA valid for a day, signs a server certificate for
// 127.0.0.1 and localhost and a client certificate, and writes them to dir.
func NewPKI(dir string) (*PKI, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "promauth test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, server bool) (certPEM, keyPEM []byte, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, fmt.Errorf("sign %s: %w", cn, err)
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pemOf("CERTIFICATE", der), pemOf("EC PRIVATE KEY", kb), nil
	}
	serverCert, serverKey, err := leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, true)
	if err != nil {
		return nil, err
	}
	clientCert, clientKey, err := leaf(3, "fulcrum", x509.ExtKeyUsageClientAuth, false)
	if err != nil {
		return nil, err
	}
	p := &PKI{Dir: dir, CAPEM: pemOf("CERTIFICATE", caDER), ClientCertPEM: clientCert, ClientKeyPEM: clientKey}
	for _, f := range []struct {
		path *string
		name string
		data []byte
	}{
		{&p.CAFile, "ca.crt", p.CAPEM},
		{&p.ServerCertFile, "server.crt", serverCert}, {&p.ServerKeyFile, "server.key", serverKey},
		{&p.ClientCertFile, "client.crt", clientCert}, {&p.ClientKeyFile, "client.key", clientKey},
	} {
		*f.path = filepath.Join(dir, f.name)
		if err := os.WriteFile(*f.path, f.data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func pemOf(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

// Web says what Prometheus's --web.config.file asks of clients.
type Web struct {
	// BasicAuth: only User with Password gets in.
	BasicAuth bool
	// TLS: serve HTTPS with the PKI's server certificate.
	TLS *PKI
	// ClientCerts: with TLS, refuse clients without a certificate that
	// the PKI's CA signed (client_auth_type RequireAndVerifyClientCert).
	ClientCerts bool
}

// Config renders the web config file's content.
func (w Web) Config() string {
	var b strings.Builder
	if w.TLS != nil {
		fmt.Fprintf(&b, "tls_server_config:\n  cert_file: %q\n  key_file: %q\n", w.TLS.ServerCertFile, w.TLS.ServerKeyFile)
		if w.ClientCerts {
			fmt.Fprintf(&b, "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: %q\n", w.TLS.CAFile)
		}
	}
	if w.BasicAuth {
		fmt.Fprintf(&b, "basic_auth_users:\n  %s: %q\n", User, PasswordHash)
	}
	return b.String()
}
