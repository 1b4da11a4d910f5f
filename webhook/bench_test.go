package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/fulcrum-ml/fulcrum/webhook"
	"github.com/fulcrum-ml/fulcrum/webhook/certs"
)

var (
	benchCAOnce sync.Once
	benchCA     certs.KeyPair
)

// certDir writes a serving certificate for 127.0.0.1 and returns its folder.
func certDir(t testing.TB) string {
	t.Helper()
	benchCAOnce.Do(func() { benchCA, _ = certs.NewCA("test", time.Now(), time.Hour) })
	kp, err := certs.NewServingCert(benchCA, []string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// BenchmarkAdmissionLatency sends admission reviews over loopback TLS from
// concurrent clients (b.SetParallelism(4) x GOMAXPROCS) with in-memory
// lookups, so it measures the server: TLS, decoding, validation including
// PromQL parsing, and encoding. It reports p50 and p99 per request.
func BenchmarkAdmissionLatency(b *testing.B) {
	l := memCluster()
	cases := map[string]struct {
		path string
		body []byte
	}{
		"modelrollout-create": {webhook.PathModelRollouts, review(b, admissionv1.Create, "alice", mrKind, benchRollout("other"), nil)},
		"guard-weight-edit":   {webhook.PathVirtualServices, review(b, admissionv1.Update, "alice", vsKind, fraudVS(50, 50), fraudVS(100, 0))},
	}
	for name, c := range cases {
		b.Run(name, func(b *testing.B) {
			// A fresh rollout name each time would not change the cost; the
			// "other" rollout conflicts with "fraud" on purpose, so the
			// benchmark covers the denial path's error formatting too.
			srv, err := webhook.NewServer(webhook.Config{Lookups: l, CertDir: certDir(b), AllowInlineQueries: true})
			if err != nil {
				b.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, ln) }()
			defer func() { cancel(); <-done }()

			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(benchCA.CertPEM)
			client := &http.Client{Transport: &http.Transport{
				TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
				MaxIdleConnsPerHost: 64,
			}}
			url := "https://" + ln.Addr().String() + c.path

			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				local := make([]time.Duration, 0, 1024)
				for pb.Next() {
					start := time.Now()
					resp, err := client.Post(url, "application/json", bytes.NewReader(c.body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("HTTP %d", resp.StatusCode)
						return
					}
					local = append(local, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			})
			b.StopTimer()
			if len(lat) == 0 {
				return
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
