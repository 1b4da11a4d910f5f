package dataplane

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// gRPC through the stand-in. Listeners speak HTTP/1.1 and HTTP/2 without TLS
// (h2c with prior knowledge, what gRPC clients send to an http:// target);
// a request whose Content-Type is application/grpc (or application/grpc+...)
// is a gRPC call: it is forwarded over h2c (Config.GRPCTransport), its
// answer streamed back with a flush after every write and its trailers
// (grpc-status) copied, and it is recorded with request_protocol "grpc" and
// the call's status in grpc_response_status, as Envoy reports gRPC. The
// proxy's own replies to a gRPC call are gRPC too (HTTP 200 with the status
// in grpc-status), with Envoy's mapping of HTTP codes to gRPC statuses, and
// UNAVAILABLE for a rule or backendRef that cannot be routed (500 over HTTP),
// as GRPCRoute asks. Other requests go upstream over HTTP/1.1 as before,
// whatever protocol the client used.

// isGRPC reports whether r is a gRPC call.
func isGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return ct == "application/grpc" || strings.HasPrefix(ct, "application/grpc+") || strings.HasPrefix(ct, "application/grpc;")
}

// gRPC status codes the proxy answers with.
const (
	grpcUnknown       = 2
	grpcUnimplemented = 12
	grpcUnavailable   = 14
	grpcInternal      = 13
	grpcUnauth        = 16
	grpcDenied        = 7
)

// grpcStatusFor maps the HTTP status of a local reply to the gRPC status
// Envoy sends instead (Grpc::Utility::httpToGrpcStatus), except that 500,
// which only Gateway API rules that cannot be routed produce here, becomes
// UNAVAILABLE as GRPCRoute requires.
func grpcStatusFor(code int) int {
	switch code {
	case http.StatusBadRequest:
		return grpcInternal
	case http.StatusUnauthorized:
		return grpcUnauth
	case http.StatusForbidden:
		return grpcDenied
	case http.StatusNotFound:
		return grpcUnimplemented
	case http.StatusInternalServerError, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return grpcUnavailable
	}
	return grpcUnknown
}

// grpcLocalReply answers a gRPC call with a trailers-only response.
func grpcLocalReply(w http.ResponseWriter, code int, flag, msg string) outcome {
	st := grpcStatusFor(code)
	h := w.Header()
	h.Set("x-envoy-response-flags", flag)
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(st))
	h.Set("Grpc-Message", grpcMessage(msg))
	w.WriteHeader(http.StatusOK)
	return outcome{code: http.StatusOK, flag: flag, grpcStatus: strconv.Itoa(st)}
}

// grpcMessage percent-encodes msg as the grpc-message header requires.
func grpcMessage(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c < ' ' || c > '~' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// grpcStatusOf is the status of a gRPC answer whose body has been read: in
// its trailers, or in its headers for a trailers-only answer.
func grpcStatusOf(resp *http.Response) string {
	if s := resp.Trailer.Get("Grpc-Status"); s != "" {
		return s
	}
	return resp.Header.Get("Grpc-Status")
}

// copyFlushing streams body to w, flushing after every read so that the
// messages of a streaming call are not held back.
func copyFlushing(w http.ResponseWriter, body io.Reader) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// newH2CTransport speaks HTTP/2 without TLS, with prior knowledge, as gRPC
// servers listening on http:// expect.
func newH2CTransport() *http.Transport {
	t := &http.Transport{
		DialContext:     (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:    1024,
		IdleConnTimeout: 90 * time.Second,
	}
	t.Protocols = new(http.Protocols)
	t.Protocols.SetUnencryptedHTTP2(true)
	return t
}

// listenerProtocols are what the proxy's listeners speak: HTTP/1.1 and h2c.
func listenerProtocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return p
}
