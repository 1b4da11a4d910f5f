package admin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/webhook/certs"
)

// TestServesTLSWithConfiguredCertificate starts the real listener with
// --admin-tls-cert/--admin-tls-key and checks a client that trusts only the
// CA reaches the API, and a plain-HTTP client does not; then the files are
// replaced (as kubelet does when cert-manager renews the Secret) and new
// connections get the new certificate without a restart.
func TestServesTLSWithConfiguredCertificate(t *testing.T) {
	now := time.Now()
	ca, err := certs.NewCA("fulcrum-test-ca", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := certs.NewServingCert(ca, []string{"127.0.0.1"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, serving.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, serving.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	sch := testScheme(t)
	srv, err := NewServer(Config{
		TLSCertFile: certFile, TLSKeyFile: keyFile,
		Client:        fake.NewClientBuilder().WithScheme(sch).WithStatusSubresource(&v1alpha1.ModelRollout{}).Build(),
		Informers:     &informertest.FakeInformers{Scheme: sch},
		Authenticator: fakeAuthn{engToken: {Name: "alice", Groups: []string{"ml-engineers"}}},
		Authorizer:    fakeAuthz{"ml-engineers": {"get", "list"}},
		RateLimit:     rate.Inf,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	httpsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	base := "https://" + ln.Addr().String()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/rollouts", nil)
	req.Header.Set("Authorization", "Bearer "+engToken)
	res, err := httpsClient.Do(req)
	if err != nil {
		t.Fatalf("https GET with the CA trusted: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.TLS == nil {
		t.Fatalf("https GET: status %d, tls %v", res.StatusCode, res.TLS != nil)
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if res, err := plain.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode < 400 {
			t.Fatalf("plain HTTP to the TLS listener answered %d", res.StatusCode)
		}
	}

	renewed, err := certs.NewServingCert(ca, []string{"127.0.0.1"}, now, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, renewed.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, renewed.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	want, err := tls.X509KeyPair(renewed.CertPEM, renewed.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	wantLeaf, _ := x509.ParseCertificate(want.Certificate[0])
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err == nil {
			got := conn.ConnectionState().PeerCertificates[0].SerialNumber
			conn.Close()
			if got.Cmp(wantLeaf.SerialNumber) == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("renewed certificate not served within 20s (last error %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServesTLSFromTheSelfSignedCA: with --admin-tls-self-signed the admin
// API serves a certificate from the CA kept in a Secret (the webhook's), so
// TLS needs no cert-manager and clients trust that CA's certificate.
func TestServesTLSFromTheSelfSignedCA(t *testing.T) {
	sch := testScheme(t)
	if err := corev1.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientBuilder().WithScheme(sch).Build()
	src, err := certs.NewSelfSigned(certs.SelfSignedConfig{Client: kube, Namespace: "fulcrum-system", SecretName: "fulcrum-webhook-ca", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Config{
		TLSSource:     src,
		Client:        fake.NewClientBuilder().WithScheme(sch).WithStatusSubresource(&v1alpha1.ModelRollout{}).Build(),
		Informers:     &informertest.FakeInformers{Scheme: sch},
		Authenticator: fakeAuthn{},
		Authorizer:    fakeAuthz{},
		RateLimit:     rate.Inf,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	var caSecret corev1.Secret
	deadline := time.Now().Add(10 * time.Second)
	for kube.Get(ctx, client.ObjectKey{Namespace: "fulcrum-system", Name: "fulcrum-webhook-ca"}, &caSecret) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no CA Secret")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caSecret.Data[certs.SecretCACert])
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	var res *http.Response
	for {
		res, err = c.Get("https://" + ln.Addr().String() + "/healthz")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("HTTPS with the CA from the Secret: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("healthz: %d", res.StatusCode)
	}
}
