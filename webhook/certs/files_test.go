package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/webhook/certs"
)

func writePair(t *testing.T, dir string, kp certs.KeyPair) {
	t.Helper()
	// Write to temporary names and rename, as kubelet swaps Secret files.
	for name, data := range map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM} {
		tmp := filepath.Join(dir, "."+name)
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func serial(t *testing.T, c *tls.Certificate) string {
	t.Helper()
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return x.SerialNumber.String()
}

func TestFromFilesPicksUpRotation(t *testing.T) {
	now := time.Now()
	ca, err := certs.NewCA("test", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := certs.NewServingCert(ca, []string{"127.0.0.1", "fulcrum.fulcrum-system.svc"}, now, time.Hour)
	second, _ := certs.NewServingCert(ca, []string{"127.0.0.1"}, now, time.Hour)
	dir := t.TempDir()

	if _, err := certs.FromFiles(dir, "tls.crt", "tls.key", 0); err == nil {
		t.Fatal("missing files must fail at start")
	}
	writePair(t, dir, first)
	src, err := certs.FromFiles(dir, "tls.crt", "tls.key", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = src.Start(ctx) }()

	c, err := src.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	want1, _ := tls.X509KeyPair(first.CertPEM, first.KeyPEM)
	if serial(t, c) != serial(t, &want1) {
		t.Fatal("serving a different certificate than the files")
	}

	writePair(t, dir, second)
	want2, _ := tls.X509KeyPair(second.CertPEM, second.KeyPEM)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _ = src.GetCertificate(nil)
		if serial(t, c) == serial(t, &want2) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("rotated certificate not picked up within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServingCertVerifiesAgainstCA(t *testing.T) {
	now := time.Now()
	ca, _ := certs.NewCA("test", now, time.Hour)
	kp, err := certs.NewServingCert(ca, []string{"127.0.0.1", "fulcrum.fulcrum-system.svc"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	c, _ := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	leaf, _ := x509.ParseCertificate(c.Certificate[0])
	for _, host := range []string{"127.0.0.1", "fulcrum.fulcrum-system.svc"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.svc"}); err == nil {
		t.Error("certificate must not verify for other hosts")
	}
	if exp, _ := certs.NotAfter(kp.CertPEM); exp.Before(now) || exp.After(now.Add(time.Hour+time.Second)) {
		t.Errorf("NotAfter = %v", exp)
	}
}
