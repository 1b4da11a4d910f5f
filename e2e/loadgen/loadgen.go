// Package loadgen sends a steady, bounded stream of inference requests to a
// loopback address and counts who answered: by the x-model-version
// response header the model server sets, and by status code. It always
// stops by itself, after MaxRequests or Duration, whichever comes first.
//
// Requests come from a fixed pool of simulated users. For experiments with
// sticky assignment a user can keep the cookies answers set (Cookies) or
// carry a fixed group header (GroupHeader, Group), and the report tells how
// many users were answered by more than one version (Report.Crossed).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Headers the generator sends and reads.
const (
	UserHeader    = "x-user-id"
	VersionHeader = "x-model-version"
)

// NoVersion counts answers without a VersionHeader (the proxy's own 404s
// and 503s, or transport errors).
const NoVersion = "none"

// DefaultBody is a one-row Open Inference Protocol request.
const DefaultBody = `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[0.1,0.2,0.3,0.4]}]}`

// Config describes one bounded run.
type Config struct {
	// URL is the target, e.g. http://127.0.0.1:8080/v2/models/fraud/infer.
	// Only loopback hosts are accepted.
	URL string
	// Host overrides the Host header (the data plane routes by it), e.g.
	// fraud.ml.svc.cluster.local.
	Host string
	// Method is POST when empty; Body is DefaultBody when nil.
	Method string
	Body   []byte
	// Header is sent with every request (UserHeader is set per request).
	Header http.Header
	// Rate is requests per second, paced evenly (open loop: a slow answer
	// does not delay the next request unless MaxInFlight is reached).
	Rate float64
	// MaxRequests and Duration bound the run; at least one must be set.
	MaxRequests int
	Duration    time.Duration
	// Users is the size of the user pool ("user-0" ... ), 100 when zero,
	// at most MaxUsers. Each request comes from a user drawn uniformly
	// and carries its ID in UserHeader.
	Users int
	// Cookies gives each user its own cookie jar (net/http/cookiejar:
	// Set-Cookie name, value, Path, Domain, Max-Age and Expires, the
	// latter two on the real clock), so a user's later requests carry the
	// cookies earlier answers set. A user's requests then go one at a
	// time: the next waits for the previous answer, as a browser's would,
	// so no user sends twice before its first cookie arrives.
	Cookies bool
	// GroupHeader and Group give each user a fixed request header, e.g.
	// x-user-group: v2, for experiments that assign users by header.
	// Group(i) is called once for user i; "" sends no header. Shares
	// builds one from shares.
	GroupHeader string
	Group       func(user int) string
	// MaxInFlight bounds concurrent requests (256 when zero).
	MaxInFlight int
	// Timeout bounds each request (10s when zero).
	Timeout time.Duration
	// Seed makes user draws reproducible (0: seeded from the time).
	Seed uint64
	// Clock paces requests; the real clock when nil.
	Clock clock.Clock
	// Client sends requests; a pooled client when nil.
	Client *http.Client
}

func (c *Config) validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("loadgen URL %q: want http://127.0.0.1:PORT/path", c.URL)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("loadgen URL %q: only loopback targets (127.0.0.1, ::1, localhost) are allowed", c.URL)
	}
	if !(c.Rate > 0) {
		return fmt.Errorf("loadgen Rate %v: want requests per second above 0", c.Rate)
	}
	if c.MaxRequests < 0 || c.Duration < 0 {
		return errors.New("loadgen MaxRequests and Duration must not be negative")
	}
	if c.MaxRequests == 0 && c.Duration == 0 {
		return errors.New("loadgen: set MaxRequests or Duration (or both) so the run stops by itself")
	}
	if c.Users < 0 || c.Users > MaxUsers {
		return fmt.Errorf("loadgen Users %d: want a pool size from 1 to %d", c.Users, MaxUsers)
	}
	if (c.GroupHeader == "") != (c.Group == nil) {
		return errors.New("loadgen GroupHeader and Group: set both (e.g. \"x-user-group\" and loadgen.Shares(...)) or neither")
	}
	if c.Cookies && c.Client != nil && c.Client.Jar != nil {
		return errors.New("loadgen Cookies: Client.Jar would be shared by every user; leave it nil, the generator keeps a jar per user")
	}
	return nil
}

// Report counts a run's answers so far.
type Report struct {
	// Sent requests, and Completed ones (answered or failed).
	Sent, Completed int
	// ByVersion counts answers by VersionHeader (NoVersion when absent).
	ByVersion map[string]int
	// ByCode counts answers by HTTP status; transport errors count as 0.
	ByCode map[int]int
	// ByVersionCode counts answers by version and status.
	ByVersionCode map[string]map[int]int
	// TransportErrors are requests that got no HTTP answer.
	TransportErrors int
	// Elapsed is the time since the run started (until it ended).
	Elapsed time.Duration
	// TotalLatency sums answer times, for the mean.
	TotalLatency time.Duration
	// UsersByVersion counts the users each version answered at least
	// once (a user answered by two versions counts under both; answers
	// without a version do not count).
	UsersByVersion map[string]int
	// Crossed counts users answered by more than one version. With sticky
	// assignment (Cookies or a group header) it stays 0; in a window (Sub)
	// it counts the users who crossed during the window.
	Crossed int
}

func newReport() Report {
	return Report{ByVersion: map[string]int{}, ByCode: map[int]int{}, ByVersionCode: map[string]map[int]int{}, UsersByVersion: map[string]int{}}
}

// Share is the fraction of completed answers served by version.
func (r Report) Share(version string) float64 {
	if r.Completed == 0 {
		return 0
	}
	return float64(r.ByVersion[version]) / float64(r.Completed)
}

// Errors counts answers with status 5xx or none, for version ("" for all).
func (r Report) Errors(version string) int {
	n := 0
	for v, codes := range r.ByVersionCode {
		if version != "" && v != version {
			continue
		}
		for c, k := range codes {
			if c == 0 || c >= 500 {
				n += k
			}
		}
	}
	return n
}

// MeanLatency is the mean answer time.
func (r Report) MeanLatency() time.Duration {
	if r.Completed == 0 {
		return 0
	}
	return r.TotalLatency / time.Duration(r.Completed)
}

// Sub is what happened between an earlier snapshot and r, for a window.
func (r Report) Sub(earlier Report) Report {
	out := newReport()
	out.Sent, out.Completed = r.Sent-earlier.Sent, r.Completed-earlier.Completed
	out.TransportErrors = r.TransportErrors - earlier.TransportErrors
	out.Elapsed, out.TotalLatency = r.Elapsed-earlier.Elapsed, r.TotalLatency-earlier.TotalLatency
	out.Crossed = r.Crossed - earlier.Crossed
	for v, n := range r.UsersByVersion {
		if d := n - earlier.UsersByVersion[v]; d != 0 {
			out.UsersByVersion[v] = d
		}
	}
	for v, n := range r.ByVersion {
		if d := n - earlier.ByVersion[v]; d != 0 {
			out.ByVersion[v] = d
		}
	}
	for c, n := range r.ByCode {
		if d := n - earlier.ByCode[c]; d != 0 {
			out.ByCode[c] = d
		}
	}
	for v, codes := range r.ByVersionCode {
		for c, n := range codes {
			if d := n - earlier.ByVersionCode[v][c]; d != 0 {
				if out.ByVersionCode[v] == nil {
					out.ByVersionCode[v] = map[int]int{}
				}
				out.ByVersionCode[v][c] = d
			}
		}
	}
	return out
}

func (r Report) clone() Report {
	out := r
	out.ByVersion, out.ByCode, out.ByVersionCode = map[string]int{}, map[int]int{}, map[string]map[int]int{}
	out.UsersByVersion = maps.Clone(r.UsersByVersion)
	if out.UsersByVersion == nil {
		out.UsersByVersion = map[string]int{}
	}
	for k, v := range r.ByVersion {
		out.ByVersion[k] = v
	}
	for k, v := range r.ByCode {
		out.ByCode[k] = v
	}
	for k, m := range r.ByVersionCode {
		out.ByVersionCode[k] = map[int]int{}
		for c, n := range m {
			out.ByVersionCode[k][c] = n
		}
	}
	return out
}

// String is a one-line summary.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent %d, answered %d in %s", r.Sent, r.Completed, r.Elapsed.Round(time.Millisecond))
	for v, n := range r.ByVersion {
		fmt.Fprintf(&b, "; %s %d (%.1f%%, %d errors)", v, n, 100*r.Share(v), r.Errors(v))
	}
	return b.String()
}

// Generator is a run in progress.
type Generator struct {
	cfg    Config
	clock  clock.Clock
	cancel context.CancelFunc
	done   chan struct{}
	start  time.Time

	mu       sync.Mutex
	report   Report
	users    []userState
	ended    time.Time
	watchers map[int]func(string, int, time.Duration)
	watchID  int
}

// Run sends load until its bound and returns the final report; ctx ending
// stops it early with the report so far.
func Run(ctx context.Context, cfg Config) (Report, error) {
	g, err := Start(ctx, cfg)
	if err != nil {
		return Report{}, err
	}
	return g.Wait(), nil
}

// Start begins a run in the background; Snapshot reads it while it goes.
func Start(ctx context.Context, cfg Config) (*Generator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Method == "" {
		cfg.Method = http.MethodPost
	}
	if cfg.Body == nil {
		cfg.Body = []byte(DefaultBody)
	}
	if cfg.Users == 0 {
		cfg.Users = 100
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{
			Proxy: nil, MaxIdleConns: cfg.MaxInFlight, MaxIdleConnsPerHost: cfg.MaxInFlight, IdleConnTimeout: 30 * time.Second,
		}}
	}
	// The Duration bound is enforced by the pacing loop on cfg.Clock (so a
	// fake clock controls it); requests in flight end within Timeout.
	ctx, cancel := context.WithCancel(ctx)
	g := &Generator{cfg: cfg, clock: cfg.Clock, cancel: cancel, done: make(chan struct{}), start: cfg.Clock.Now(), report: newReport(), users: make([]userState, cfg.Users)}
	go g.loop(ctx)
	return g, nil
}

func (g *Generator) loop(ctx context.Context) {
	defer close(g.done)
	defer g.cancel()
	rnd := rand.New(rand.NewPCG(g.cfg.Seed, g.cfg.Seed^0xda942042e4dd58b5))
	interval := time.Duration(float64(time.Second) / g.cfg.Rate)
	slots := make(chan struct{}, g.cfg.MaxInFlight)
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		g.mu.Lock()
		g.ended = g.clock.Now()
		g.mu.Unlock()
	}()
	for i := 0; g.cfg.MaxRequests == 0 || i < g.cfg.MaxRequests; i++ {
		due := g.start.Add(time.Duration(i) * interval)
		if g.cfg.Duration > 0 && !due.Before(g.start.Add(g.cfg.Duration)) {
			return
		}
		if wait := due.Sub(g.clock.Now()); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-g.clock.After(wait):
			}
		}
		select {
		case <-ctx.Done():
			return
		case slots <- struct{}{}:
		}
		user := rnd.IntN(g.cfg.Users)
		g.mu.Lock()
		g.report.Sent++
		g.mu.Unlock()
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			g.send(ctx, user)
		}()
	}
}

func (g *Generator) send(ctx context.Context, user int) {
	u := g.user(user)
	if !u.take(ctx) {
		g.record(u, NoVersion, 0, 0) // stopped while waiting its turn
		return
	}
	defer u.give()
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, g.cfg.Method, g.cfg.URL, strings.NewReader(string(g.cfg.Body)))
	if err != nil {
		g.record(u, NoVersion, 0, 0)
		return
	}
	for k, vs := range g.cfg.Header {
		req.Header[k] = slices.Clone(vs) // AddCookie below must not write into cfg.Header
	}
	req.Header.Set(UserHeader, userID(user))
	if u.group != "" {
		req.Header.Set(g.cfg.GroupHeader, u.group)
	}
	if u.jar != nil {
		for _, c := range u.jar.Cookies(req.URL) {
			req.AddCookie(c)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	if g.cfg.Host != "" {
		req.Host = g.cfg.Host
	}
	start := g.clock.Now()
	resp, err := g.cfg.Client.Do(req)
	if err != nil {
		g.record(u, NoVersion, 0, g.clock.Since(start))
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if u.jar != nil {
		u.jar.SetCookies(req.URL, resp.Cookies())
	}
	v := resp.Header.Get(VersionHeader)
	if v == "" {
		v = NoVersion
	}
	g.record(u, v, resp.StatusCode, g.clock.Since(start))
}

// Watch calls f with every answer from now on (version, HTTP status, time
// taken), until the returned stop is called. f runs on the request's
// goroutine and must be quick.
func (g *Generator) Watch(f func(version string, code int, took time.Duration)) (stop func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.watchID++
	id := g.watchID
	if g.watchers == nil {
		g.watchers = map[int]func(string, int, time.Duration){}
	}
	g.watchers[id] = f
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		delete(g.watchers, id)
	}
}

func (g *Generator) record(u *userState, version string, code int, took time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, f := range g.watchers {
		f(version, code, took)
	}
	r := &g.report
	r.answeredBy(u, version)
	r.Completed++
	r.TotalLatency += took
	if code == 0 {
		r.TransportErrors++
	}
	r.ByVersion[version]++
	r.ByCode[code]++
	if r.ByVersionCode[version] == nil {
		r.ByVersionCode[version] = map[int]int{}
	}
	r.ByVersionCode[version][code]++
}

// Snapshot is the report so far.
func (g *Generator) Snapshot() Report {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.report.clone()
	end := g.ended
	if end.IsZero() {
		end = g.clock.Now()
	}
	r.Elapsed = end.Sub(g.start)
	return r
}

// Done is closed when the run has ended and every answer is counted.
func (g *Generator) Done() <-chan struct{} { return g.done }

// Wait blocks until the run ends by its bound and returns the final report.
func (g *Generator) Wait() Report {
	<-g.done
	return g.Snapshot()
}

// Stop ends the run now and returns the final report.
func (g *Generator) Stop() Report {
	g.cancel()
	return g.Wait()
}
