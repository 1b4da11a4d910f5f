package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
)

// The gRPC wire is framed by hand here (a 5-byte prefix per message, the
// status in the grpc-status trailer) so that the test needs no gRPC
// library: what the proxy must carry is HTTP/2 without TLS, streaming and
// trailers, which these servers and clients exercise as gRPC's do.

func grpcFrame(msg string) []byte {
	b := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:5], uint32(len(msg)))
	copy(b[5:], msg)
	return b
}

func readGRPCFrame(r io.Reader) (string, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", err
	}
	buf := make([]byte, binary.BigEndian.Uint32(h[1:]))
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}

// grpcBackend serves /fulcrum.e2e.Model/Infer (echo, status 0), .../Fail
// (status 13) and .../Stream (one message, then a second once release is
// closed) over h2c only.
type grpcBackend struct {
	srv     *httptest.Server
	release chan struct{}
}

func newGRPCBackend(t *testing.T, version string) *grpcBackend {
	b := &grpcBackend{release: make(chan struct{})}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 || r.Header.Get("Content-Type") != "application/grpc" || r.Header.Get("Te") != "trailers" {
			http.Error(w, fmt.Sprintf("not gRPC: %s %q te %q", r.Proto, r.Header.Get("Content-Type"), r.Header.Get("Te")), http.StatusBadRequest)
			return
		}
		msg, err := readGRPCFrame(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("x-model-version", version)
		status := "0"
		switch r.URL.Path {
		case "/fulcrum.e2e.Model/Infer":
			_, _ = w.Write(grpcFrame(version + ":" + msg))
		case "/fulcrum.e2e.Model/Fail":
			status = "13"
		case "/fulcrum.e2e.Model/Stream":
			_, _ = w.Write(grpcFrame(version + ":first"))
			http.NewResponseController(w).Flush()
			select {
			case <-b.release:
			case <-r.Context().Done():
				return
			}
			_, _ = w.Write(grpcFrame(version + ":second"))
		}
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", status)
	}))
	b.srv.Config.Protocols = new(http.Protocols)
	b.srv.Config.Protocols.SetUnencryptedHTTP2(true)
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	return b
}

func (b *grpcBackend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

// startH2CProxy serves the proxy on a listener that speaks h2c, as Start's do.
func startH2CProxy(t *testing.T, s Snapshot) (*Proxy, string, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	p, err := New(Config{Namespace: "ml", Seed: 1, Registry: reg, Reporters: []string{"destination", "source"}})
	if err != nil {
		t.Fatal(err)
	}
	p.SetTable(Build(s))
	front := httptest.NewUnstartedServer(p.Handler("", 0))
	front.Config.Protocols = listenerProtocols()
	front.Start()
	t.Cleanup(func() { front.Close(); p.Wait() })
	return p, front.URL, reg
}

// callGRPC starts a call over h2c and returns the response with its body
// unread.
func callGRPC(t *testing.T, url, host, msg string) *http.Response {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(grpcFrame(msg)))
	r.Host = host
	r.Header.Set("Content-Type", "application/grpc")
	r.Header.Set("Te", "trailers")
	resp, err := (&http.Client{Transport: newH2CTransport(), Timeout: 10 * time.Second}).Do(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.ProtoMajor != 2 {
		t.Fatalf("answered over %s, want HTTP/2", resp.Proto)
	}
	return resp
}

// grpcStatus reads the rest of the body and returns the call's status.
func grpcStatus(t *testing.T, resp *http.Response) string {
	t.Helper()
	_, _ = io.Copy(io.Discard, resp.Body)
	return grpcStatusOf(resp)
}

func TestProxyCarriesGRPC(t *testing.T) {
	v1, v2 := newGRPCBackend(t, "v1"), newGRPCBackend(t, "v2")
	s := gammaWorld(t)
	s.Pods = []*corev1.Pod{
		pod("ml", "fraud-v1", "fraud-v1-abc12-x", map[string]string{"app": "fraud", "version": "v1"}, v1.addr()),
		pod("ml", "fraud-v2", "fraud-v2-abc12-x", map[string]string{"app": "fraud", "version": "v2"}, v2.addr()),
	}
	s.GRPCRoutes = append(s.GRPCRoutes, grpcRouteFromYAML(t, `
metadata: {name: model}
spec:
  parentRefs: [{group: "", kind: Service, name: fraud}]
  rules:
  - matches: [{method: {service: fulcrum.e2e.Model}}]
    filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-route, value: grpc}]}}]
    backendRefs: [{name: fraud-v1, port: 9000}]
  - matches: [{method: {service: fulcrum.e2e.Model, method: Stream}}]
    backendRefs: [{name: fraud-v2, port: 9000}]
  - matches: [{method: {service: fulcrum.e2e.Model, method: Gone}}]
    backendRefs: [{name: gone, port: 9000}]
`))
	_, url, reg := startH2CProxy(t, s)

	t.Run("unary call, answer and trailers", func(t *testing.T) {
		resp := callGRPC(t, url+"/fulcrum.e2e.Model/Infer", "fraud", "hello")
		msg, err := readGRPCFrame(resp.Body)
		if err != nil || msg != "v1:hello" {
			t.Fatalf("message %q (%v), want v1:hello", msg, err)
		}
		if st := grpcStatus(t, resp); resp.StatusCode != 200 || st != "0" || resp.Header.Get("x-route") != "grpc" {
			t.Errorf("HTTP %d, grpc-status %q, x-route %q; want 200, 0 and the rule's header", resp.StatusCode, st, resp.Header.Get("x-route"))
		}
	})
	t.Run("server streaming is not held back", func(t *testing.T) {
		resp := callGRPC(t, url+"/fulcrum.e2e.Model/Stream", "fraud.ml", "go")
		first := make(chan string, 1)
		go func() { m, _ := readGRPCFrame(resp.Body); first <- m }()
		select {
		case m := <-first:
			if m != "v2:first" {
				t.Fatalf("first message %q, want v2:first", m)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the first message did not arrive before the stream went on: the proxy buffers it")
		}
		close(v2.release)
		if m, err := readGRPCFrame(resp.Body); err != nil || m != "v2:second" {
			t.Fatalf("second message %q (%v)", m, err)
		}
		if st := grpcStatus(t, resp); st != "0" {
			t.Errorf("grpc-status %q, want 0", st)
		}
	})
	t.Run("an upstream error status passes through", func(t *testing.T) {
		if st := grpcStatus(t, callGRPC(t, url+"/fulcrum.e2e.Model/Fail", "fraud", "x")); st != "13" {
			t.Errorf("grpc-status %q, want 13", st)
		}
	})
	t.Run("the proxy's own answers are gRPC", func(t *testing.T) {
		for path, want := range map[string]string{"/other.Svc/Call": "12", "/fulcrum.e2e.Model/Gone": "14"} {
			resp := callGRPC(t, url+path, "fraud", "x")
			if st := grpcStatus(t, resp); resp.StatusCode != 200 || st != want || resp.Header.Get("Content-Type") != "application/grpc" {
				t.Errorf("%s: HTTP %d grpc-status %q content-type %q, want 200 %s application/grpc", path, resp.StatusCode, st, resp.Header.Get("Content-Type"), want)
			}
		}
	})

	for _, tc := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"reporter": "destination", "request_protocol": "grpc", "destination_service_name": "fraud-v1", "destination_version": "v1", "response_code": "200", "grpc_response_status": "0"}, 1},
		{map[string]string{"reporter": "destination", "request_protocol": "grpc", "destination_service_name": "fraud-v2", "grpc_response_status": "0"}, 1},
		{map[string]string{"reporter": "destination", "request_protocol": "grpc", "grpc_response_status": "13"}, 1},
		{map[string]string{"reporter": "source", "request_protocol": "grpc", "response_code": "200", "grpc_response_status": "12", "response_flags": FlagNoRoute}, 1},
		{map[string]string{"reporter": "source", "request_protocol": "grpc", "grpc_response_status": "14", "destination_service_name": "gone"}, 1},
		{map[string]string{"request_protocol": "http"}, 0},
	} {
		if got := counterWith(t, reg, RequestsTotalMetric, tc.labels); got != tc.want {
			t.Errorf("istio_requests_total%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
}
