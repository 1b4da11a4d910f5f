// Package promserver runs a real Prometheus server (Debian's package, at
// /usr/bin/prometheus) on a free loopback port for tests and the demo. The
// caller lists scrape targets and may add raw scrape configs; Stop kills the
// process and removes its data.
package promserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultBinary is where Debian's prometheus package puts the server.
const DefaultBinary = "/usr/bin/prometheus"

// Config says what the server scrapes.
type Config struct {
	// Binary overrides DefaultBinary (and $FULCRUM_PROMETHEUS).
	Binary string
	// ScrapeInterval for every job; 1s when zero.
	ScrapeInterval time.Duration
	// Targets are host:port addresses scraped under job "targets".
	Targets []string
	// ExtraScrapeConfigs is YAML appended under scrape_configs (each item
	// starting with "- job_name:").
	ExtraScrapeConfigs string
	// RuleFiles are alerting or recording rule files to load.
	RuleFiles []string
	// Dir holds the config and data; a temporary folder when empty.
	Dir string
	// Log receives the server's output; discarded when nil.
	Log *os.File
	// Addr is the listen address (host:port); a free loopback port when
	// empty. Giving the Addr and Dir of a stopped server starts it again
	// where it was, with its data (tests of Prometheus outages).
	Addr string
	// WebConfig is the content of Prometheus's --web.config.file:
	// basic_auth_users (bcrypt hashes) and tls_server_config (with
	// client_auth_type for client certificates). None when empty.
	WebConfig string
	// HTTPS: WebConfig serves TLS, so URL starts with https://.
	HTTPS bool
	// Client reaches the server for the readiness check and reloads, with
	// what WebConfig asks for (CA, password, client certificate);
	// http.DefaultClient when nil.
	Client *http.Client
}

// Server is a running Prometheus.
type Server struct {
	// URL is the server's base address, e.g. http://127.0.0.1:41234.
	URL    string
	Addr   string
	client *http.Client
	cmd    *exec.Cmd
	dir    string
	own    bool
	done   chan struct{}
}

// Start launches Prometheus and waits until it answers /-/ready.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	bin := cfg.Binary
	if bin == "" {
		bin = os.Getenv("FULCRUM_PROMETHEUS")
	}
	if bin == "" {
		bin = DefaultBinary
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("prometheus binary %s not found (install it with 'apt-get install -y prometheus'): %w", bin, err)
	}
	dir, own := cfg.Dir, false
	if dir == "" {
		d, err := os.MkdirTemp("", "fulcrum-prometheus-")
		if err != nil {
			return nil, fmt.Errorf("create prometheus dir: %w", err)
		}
		dir, own = d, true
	}
	addr := cfg.Addr
	if addr == "" {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		addr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	confPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(confPath, []byte(renderConfig(cfg)), 0o644); err != nil {
		return nil, fmt.Errorf("write prometheus config: %w", err)
	}
	args := []string{
		"--config.file=" + confPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--web.enable-lifecycle",
		"--storage.tsdb.retention.time=1d",
		"--log.level=warn",
	}
	if cfg.WebConfig != "" {
		webPath := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(webPath, []byte(cfg.WebConfig), 0o600); err != nil {
			return nil, fmt.Errorf("write prometheus web config: %w", err)
		}
		args = append(args, "--web.config.file="+webPath)
	}
	cmd := exec.Command(bin, args...)
	if cfg.Log != nil {
		cmd.Stdout, cmd.Stderr = cfg.Log, cfg.Log
	}
	// Own process group, and killed if the test binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	scheme, client := "http", cfg.Client
	if cfg.HTTPS {
		scheme = "https"
	}
	if client == nil {
		client = http.DefaultClient
	}
	s := &Server{URL: scheme + "://" + addr, Addr: addr, client: client, cmd: cmd, dir: dir, own: own, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func renderConfig(cfg Config) string {
	interval := cfg.ScrapeInterval
	if interval <= 0 {
		interval = time.Second
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", interval, interval)
	if len(cfg.RuleFiles) > 0 {
		b.WriteString("rule_files:\n")
		for _, f := range cfg.RuleFiles {
			fmt.Fprintf(&b, "  - %q\n", f)
		}
	}
	b.WriteString("scrape_configs:\n")
	if len(cfg.Targets) > 0 {
		b.WriteString("  - job_name: targets\n    static_configs:\n      - targets:\n")
		for _, t := range cfg.Targets {
			fmt.Fprintf(&b, "          - %q\n", t)
		}
	}
	if cfg.ExtraScrapeConfigs != "" {
		for _, line := range strings.Split(strings.TrimRight(cfg.ExtraScrapeConfigs, "\n"), "\n") {
			b.WriteString("  " + line + "\n")
		}
	}
	if len(cfg.Targets) == 0 && cfg.ExtraScrapeConfigs == "" {
		// Prometheus wants at least a valid list; scrape itself.
		b.WriteString("  - job_name: prometheus\n    static_configs:\n      - targets: []\n")
	}
	return b.String()
}

func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return errors.New("prometheus exited during start; run with Config.Log set to see why")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := s.client.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("prometheus at %s not ready after %s", s.URL, limit)
}

// Reload makes Prometheus re-read its configuration after the caller
// rewrote it with Rewrite.
func (s *Server) Reload() error {
	resp, err := s.client.Post(s.URL+"/-/reload", "text/plain", nil)
	if err != nil {
		return fmt.Errorf("reload prometheus: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reload prometheus: status %s", resp.Status)
	}
	return nil
}

// Rewrite replaces the scrape configuration and reloads it.
func (s *Server) Rewrite(cfg Config) error {
	if err := os.WriteFile(filepath.Join(s.dir, "prometheus.yml"), []byte(renderConfig(cfg)), 0o644); err != nil {
		return fmt.Errorf("write prometheus config: %w", err)
	}
	return s.Reload()
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop kills the server, waits for it to exit and removes a temporary dir.
// It is safe to call more than once.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
	default:
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	if s.own {
		_ = os.RemoveAll(s.dir)
	}
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
