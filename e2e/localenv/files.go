package localenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// User is an identity the API server accepts through its token file.
// Tokens must be known before start, so users are given in Options.
type User struct {
	// Name is the user name RBAC sees.
	Name string
	// Token is the bearer token; a random one is made when empty.
	Token string
	// Groups the user belongs to (system:masters for a cluster admin).
	Groups []string
}

// AdminUser is the name of the environment's cluster admin.
const AdminUser = "fulcrum-admin"

// tokenFile renders kube-apiserver's --token-auth-file: one
// `token,user,uid,"group1,group2"` line per user.
func tokenFile(users []User) (string, error) {
	var b strings.Builder
	seenTok, seenName := map[string]bool{}, map[string]bool{}
	for i, u := range users {
		if u.Name == "" || u.Token == "" {
			return "", fmt.Errorf("users[%d]: name and token must be set", i)
		}
		if seenTok[u.Token] {
			return "", fmt.Errorf("users[%d] (%s): token already used by another user; give each user its own token", i, u.Name)
		}
		if seenName[u.Name] {
			return "", fmt.Errorf("users[%d]: user %q listed twice", i, u.Name)
		}
		seenTok[u.Token], seenName[u.Name] = true, true
		for _, s := range append([]string{u.Name, u.Token}, u.Groups...) {
			if strings.ContainsAny(s, ",\"\n") {
				return "", fmt.Errorf("users[%d] (%s): names, tokens and groups must not contain commas, quotes or newlines", i, u.Name)
			}
		}
		fmt.Fprintf(&b, "%s,%s,%s", u.Token, u.Name, u.Name)
		if len(u.Groups) > 0 {
			fmt.Fprintf(&b, ",\"%s\"", strings.Join(u.Groups, ","))
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

// randomToken is a 32-hex-digit bearer token.
func randomToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// kubeconfig renders a kubeconfig for the admin token.
func kubeconfig(server string, caPEM []byte, user, token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: fulcrum-local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: fulcrum-local
  context:
    cluster: fulcrum-local
    user: %s
current-context: fulcrum-local
`, server, base64.StdEncoding.EncodeToString(caPEM), user, token, user)
}

// pki holds what the API server needs: a CA and a serving certificate for
// 127.0.0.1, and the service-account signing key.
type pki struct {
	CAPEM   []byte
	CertPEM []byte
	KeyPEM  []byte
	SAKey   []byte // PKCS#8 private key (ECDSA P-256)
	SAPub   []byte // PKIX public key
}

// newPKI makes fresh keys for one environment. ECDSA keeps start-up fast.
func newPKI() (*pki, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fulcrum-local-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parse CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate serving key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal serving key: %w", err)
	}
	sa, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate service-account key: %w", err)
	}
	saDER, err := x509.MarshalPKCS8PrivateKey(sa)
	if err != nil {
		return nil, fmt.Errorf("marshal service-account key: %w", err)
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("marshal service-account public key: %w", err)
	}
	return &pki{
		CAPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		SAKey:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: saDER}),
		SAPub:   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
	}, nil
}

// write puts the keys in dir with the names the component flags use.
func (p *pki) write(dir string) error {
	files := map[string][]byte{
		"ca.crt":        p.CAPEM,
		"apiserver.crt": p.CertPEM,
		"apiserver.key": p.KeyPEM,
		"sa.key":        p.SAKey,
		"sa.pub":        p.SAPub,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}
