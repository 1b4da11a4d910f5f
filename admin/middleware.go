package admin

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/go-chi/chi/v5"
)

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-Id"

type ctxKey int

const infoKey ctxKey = 0

// reqInfo collects what the access log reports about a request; handlers
// fill in the user once authenticated.
type reqInfo struct {
	id   string
	user string
}

func info(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(infoKey).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

var safeRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// observe assigns a request id, recovers panics, and records the access log
// line and the request metrics, labelled by chi's route pattern so that the
// metric's cardinality stays bounded.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.cfg.Clock.Now()
		id := r.Header.Get(RequestIDHeader)
		if !safeRequestID.MatchString(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		ri := &reqInfo{id: id}
		w.Header().Set(RequestIDHeader, id)
		rec := &statusRecorder{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), infoKey, ri))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.cfg.Logger.Error(fmt.Errorf("panic: %v", p), "handler panicked", "requestID", id, "path", r.URL.Path)
				if !rec.wroteHeader {
					s.problem(rec, r, problem{Status: 500, Title: "Internal error", Detail: "the server failed on this request; see its log for request id " + id})
				}
			}
			route := "unmatched"
			if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
				route = rc.RoutePattern()
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			d := s.cfg.Clock.Since(start)
			s.metrics.observe(route, status, d)
			// The path only: query strings may carry access tokens.
			s.cfg.Logger.Info("http request", "requestID", id, "method", r.Method, "path", r.URL.Path,
				"route", route, "status", status, "bytes", rec.bytes, "duration", d.String(),
				"remote", r.RemoteAddr, "client", s.clientIP(r), "user", ri.user)
		}()
		next.ServeHTTP(rec, r)
	})
}

// statusRecorder remembers the status and size; it passes Flush and Unwrap
// through so streams and http.ResponseController keep working.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := r.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}

// limitBody bounds request bodies; reading past the bound fails with
// *http.MaxBytesError, which handlers answer with 413.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBodyBytes {
			s.problem(w, r, problem{Status: http.StatusRequestEntityTooLarge, Title: "Request body too large",
				Detail: fmt.Sprintf("the body is %d bytes; the limit is %d bytes: send only the fields the action takes", r.ContentLength, s.cfg.MaxBodyBytes)})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// requireJSON refuses bodies that say they are something other than JSON.
func requireJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" || r.ContentLength == 0 {
		return true
	}
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(strings.ToLower(mt))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
