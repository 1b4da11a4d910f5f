package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
)

// Listener is one address the proxy accepts requests on. Host, when set,
// routes every request on it as if sent to that host (like a sidecar's
// outbound port for one Service); otherwise the Host header decides.
type Listener struct {
	Addr string // "127.0.0.1:0" picks a free port
	Host string
}

// StartConfig starts a proxy with its listeners and metrics endpoint.
type StartConfig struct {
	Proxy Config
	// Rest reaches the API server; nil leaves the table empty (for tests
	// that call SetTable themselves).
	Rest  *rest.Config
	Watch WatchConfig
	// Listeners default to one on 127.0.0.1:0 routing by Host header.
	Listeners []Listener
	// MetricsAddr serves /metrics; "127.0.0.1:0" when empty.
	MetricsAddr string
}

// Running is a started proxy.
type Running struct {
	*Proxy
	// Addrs are the bound listener addresses, in StartConfig order.
	Addrs []string
	// MetricsAddr is the bound host:port of /metrics.
	MetricsAddr string
	servers     []*http.Server
	cancel      context.CancelFunc
}

// Start builds a proxy, syncs it with the API server and serves. It returns
// once every listener accepts connections; Stop (or ctx ending) shuts down.
func Start(ctx context.Context, sc StartConfig) (*Running, error) {
	p, err := New(sc.Proxy)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Running{Proxy: p, cancel: cancel}
	if sc.Rest != nil {
		if err := p.Watch(ctx, sc.Rest, sc.Watch); err != nil {
			cancel()
			return nil, err
		}
	}
	if len(sc.Listeners) == 0 {
		sc.Listeners = []Listener{{Addr: "127.0.0.1:0"}}
	}
	if sc.MetricsAddr == "" {
		sc.MetricsAddr = "127.0.0.1:0"
	}
	serve := func(addr string, h func(net.Addr) http.Handler) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("dataplane listen %s: %w", addr, err)
		}
		srv := &http.Server{Handler: h(ln.Addr()), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx },
			Protocols: listenerProtocols()}
		r.servers = append(r.servers, srv)
		go func() { _ = srv.Serve(ln) }()
		return ln.Addr().String(), nil
	}
	for _, l := range sc.Listeners {
		host := l.Host
		a, err := serve(l.Addr, func(a net.Addr) http.Handler { return p.Handler(host, portOf(a)) })
		if err != nil {
			r.Stop()
			return nil, err
		}
		r.Addrs = append(r.Addrs, a)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", p.MetricsHandler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	if r.MetricsAddr, err = serve(sc.MetricsAddr, func(net.Addr) http.Handler { return mux }); err != nil {
		r.Stop()
		return nil, err
	}
	go func() { <-ctx.Done(); r.shutdown() }()
	return r, nil
}

// Stop closes the listeners, waits for requests and mirrors in flight (at
// most a few seconds) and stops watching. It is safe to call more than once.
func (r *Running) Stop() {
	r.cancel()
	r.shutdown()
}

func (r *Running) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range r.servers {
		if err := s.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = s.Close()
		}
	}
	r.Proxy.Wait()
}
