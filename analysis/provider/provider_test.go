package provider

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/config"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// fakeProm answers /api/v1/query like Prometheus, checking auth.
func fakeProm(t *testing.T, wantAuth string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wantAuth != "" && r.Header.Get("Authorization") != wantAuth {
			http.Error(w, `{"status":"error","errorType":"unauthorized","error":"no"}`, http.StatusUnauthorized)
			return
		}
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		switch r.Form.Get("query") {
		case "up":
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"destination_version":"v1"},"value":[1,"3"]},{"metric":{"destination_version":"v2"},"value":[1,"1.5"]}]}}`))
		case "empty":
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
		case "matrix":
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
		case "slow":
			time.Sleep(2 * time.Second)
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"parse error"}`))
		}
	})
}

func TestPrometheusQueryAndTypedErrors(t *testing.T) {
	srv := httptest.NewServer(fakeProm(t, ""))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPrometheus(PrometheusConfig{Address: srv.URL, Timeout: 500 * time.Millisecond, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := p.Query(ctx, "up", time.Unix(1, 0))
	if err != nil || len(got) != 2 || got[0].Labels["destination_version"] != "v1" || got[0].Value != 3 {
		t.Fatalf("query up: %v %+v", err, got)
	}
	for _, tc := range []struct {
		query string
		kind  error
	}{{"empty", ErrNoData}, {"sum(", ErrBadQuery}, {"matrix", ErrBadQuery}, {"slow", ErrUnreachable}} {
		_, err := p.Query(ctx, tc.query, time.Unix(1, 0))
		var qe *QueryError
		if !errors.Is(err, tc.kind) || !errors.As(err, &qe) || qe.Query != tc.query {
			t.Errorf("query %q: error %v, want kind %v as *QueryError", tc.query, err, tc.kind)
		}
	}
	if v := testutil.ToFloat64(m.queries.WithLabelValues(srv.URL, ResultOK)); v != 1 {
		t.Errorf("ok queries counted %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.queries.WithLabelValues(srv.URL, ResultBadQuery)); v != 2 {
		t.Errorf("bad queries counted %v, want 2", v)
	}
	// Registering again on the same registry reuses the collectors.
	if _, err := NewMetrics(reg); err != nil {
		t.Errorf("second NewMetrics on one registry: %v", err)
	}
}

func TestPrometheusUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	p, err := NewPrometheus(PrometheusConfig{Address: addr, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Query(context.Background(), "up", time.Now()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("closed port: %v, want ErrUnreachable", err)
	}
}

// The unit-level check of the HTTP settings with httptest servers; the
// same modes against a real Prometheus behind auth are in auth_e2e_test.go.
func TestPrometheusAuthAndCA(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bearer := httptest.NewTLSServer(fakeProm(t, "Bearer s3cret"))
	defer bearer.Close()
	caFile := filepath.Join(dir, "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: bearer.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	withToken := config.HTTPClientConfig{
		Authorization: &config.Authorization{CredentialsFile: tokenFile},
		TLSConfig:     config.TLSConfig{CAFile: caFile},
	}
	p, err := NewPrometheus(PrometheusConfig{Address: bearer.URL, HTTP: withToken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Query(ctx, "up", time.Now()); err != nil {
		t.Errorf("bearer token file with custom CA: %v", err)
	}
	// The token file is re-read: a rotated token is sent on the next query.
	if err := os.WriteFile(tokenFile, []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Query(ctx, "up", time.Now()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("rotated token: %v, want ErrUnreachable (the server wants the old one)", err)
	}
	noCA, _ := NewPrometheus(PrometheusConfig{Address: bearer.URL, HTTP: config.HTTPClientConfig{Authorization: withToken.Authorization}})
	if _, err := noCA.Query(ctx, "up", time.Now()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("unknown CA: %v, want ErrUnreachable", err)
	}
	basic := httptest.NewServer(fakeProm(t, "Basic dTpw")) // u:p
	defer basic.Close()
	pb, _ := NewPrometheus(PrometheusConfig{Address: basic.URL, HTTP: config.HTTPClientConfig{BasicAuth: &config.BasicAuth{Username: "u", Password: "p"}}})
	if _, err := pb.Query(ctx, "up", time.Now()); err != nil {
		t.Errorf("basic auth: %v", err)
	}
	wrong, _ := NewPrometheus(PrometheusConfig{Address: basic.URL, HTTP: config.HTTPClientConfig{BasicAuth: &config.BasicAuth{Username: "u", Password: "x"}}})
	if _, err := wrong.Query(ctx, "up", time.Now()); err == nil {
		t.Error("wrong password accepted")
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]PrometheusConfig{
		"no scheme":       {Address: "prometheus:9090"},
		"both auths":      {Address: "http://p", HTTP: config.HTTPClientConfig{BearerToken: "t", BasicAuth: &config.BasicAuth{Username: "u"}}},
		"token and file":  {Address: "http://p", HTTP: config.HTTPClientConfig{BearerToken: "t", BearerTokenFile: "/f"}},
		"missing CA file": {Address: "https://p", HTTP: config.HTTPClientConfig{TLSConfig: config.TLSConfig{CAFile: "/does/not/exist"}}},
	} {
		if _, err := NewPrometheus(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New("datadog", PrometheusConfig{Address: "http://p"}); !errors.Is(err, ErrUnknownProvider) {
		t.Errorf("unknown provider type: %v", err)
	}
	if _, err := New(v1alpha1.ProviderPrometheus, PrometheusConfig{Address: "http://other:9090"}); err != nil {
		t.Errorf("prometheus: %v", err)
	}
}
