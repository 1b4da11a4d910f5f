package modelserver

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/utils/clock"
)

// Metric names the server exports.
const (
	ScoreMetric    = "model_prediction_score"
	RequestsMetric = "model_requests_total"
	DurationMetric = "model_request_duration_seconds"
	// FeedbackMetric counts served predictions by outcome (OutcomeSuccess,
	// OutcomeFailure); RewardMetric is a summary of what each was worth,
	// exported as RewardMetric+"_sum" and RewardMetric+"_count".
	FeedbackMetric = "model_feedback_total"
	RewardMetric   = "model_reward"
)

// Outcome label values of FeedbackMetric.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// ScoreBuckets are the upper bounds of the score histogram.
var ScoreBuckets = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}

// VersionHeader tells the client which model version answered.
const VersionHeader = "x-model-version"

// Config sets up one model version.
type Config struct {
	Model, Version string
	Behavior       Behavior
	// Seed makes draws reproducible; 0 seeds from crypto/rand.
	Seed uint64
	// Registry receives the metrics; a fresh one when nil.
	Registry *prometheus.Registry
	// Clock times the simulated latency; the real clock when nil.
	Clock clock.Clock
	// MaxRows bounds the batch size of one request (1024 when zero).
	MaxRows int
}

// Server is one model version's inference server.
type Server struct {
	cfg      Config
	registry *prometheus.Registry
	clock    clock.Clock

	mu      sync.Mutex
	sampler *sampler
	rnd     *rand.Rand
	rewards *rand.Rand
	served  int // inference requests drawn so far, for the cold start

	scores   prometheus.Observer
	requests *prometheus.CounterVec
	duration prometheus.Observer
	feedback map[bool]prometheus.Counter // by success
	reward   prometheus.Observer
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Model == "" || cfg.Version == "" {
		return nil, errors.New("modelserver config: Model and Version are required (e.g. fraud, v2)")
	}
	if cfg.Behavior.Score.Dist == "" {
		cfg.Behavior.Score = DefaultScore
	}
	if err := cfg.Behavior.Validate(); err != nil {
		return nil, fmt.Errorf("modelserver config: behavior: %w", err)
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = 1024
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		if _, err := crand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("seed model server: %w", err)
		}
		seed = binary.LittleEndian.Uint64(b[:])
	}
	s := &Server{
		cfg: cfg, registry: cfg.Registry, clock: cfg.Clock,
		rnd:     rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)),
		rewards: rand.New(rand.NewPCG(seed^0x2545f4914f6cdd1d, seed)),
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if s.clock == nil {
		s.clock = clock.RealClock{}
	}
	s.sampler = newSampler(cfg.Behavior, s.rnd, s.rewards)
	lbl := prometheus.Labels{"model": cfg.Model, "version": cfg.Version}
	scores := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: ScoreMetric, Help: "Prediction scores returned, for drift analysis.", Buckets: ScoreBuckets,
	}, []string{"model", "version"})
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: RequestsMetric, Help: "Inference requests by HTTP status code.",
	}, []string{"model", "version", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: DurationMetric, Help: "Inference request durations in seconds.", Buckets: prometheus.DefBuckets,
	}, []string{"model", "version"})
	feedback := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: FeedbackMetric, Help: "Served predictions by the simulated user's outcome (success: a click or conversion).",
	}, []string{"model", "version", "outcome"})
	reward := prometheus.NewSummaryVec(prometheus.SummaryOpts{
		Name: RewardMetric, Help: "What each served prediction was worth to the simulated user (0 for a failure).",
	}, []string{"model", "version"})
	for _, c := range []prometheus.Collector{scores, requests, duration, feedback, reward} {
		if err := s.registry.Register(c); err != nil {
			return nil, fmt.Errorf("register model server metrics: %w", err)
		}
	}
	s.scores, s.requests, s.duration = scores.With(lbl), requests.MustCurryWith(lbl), duration.With(lbl)
	// Both outcomes exist from the start, so a success rate reads 0, not
	// "no data", until the first success.
	s.feedback = map[bool]prometheus.Counter{
		true:  feedback.WithLabelValues(cfg.Model, cfg.Version, OutcomeSuccess),
		false: feedback.WithLabelValues(cfg.Model, cfg.Version, OutcomeFailure),
	}
	s.reward = reward.With(lbl)
	return s, nil
}

// SetBehavior changes how the version behaves from the next request on.
func (s *Server) SetBehavior(b Behavior) error {
	if b.Score.Dist == "" {
		b.Score = DefaultScore
	}
	if err := b.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sampler = newSampler(b, s.rnd, s.rewards)
	return nil
}

// Registry holds the server's metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Handler serves the Open Inference Protocol routes and /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/health/live", s.ok)
	mux.HandleFunc("GET /v2/health/ready", s.ok)
	mux.HandleFunc("GET /v2", s.serverMetadata)
	mux.HandleFunc("GET /v2/models/{model}", s.modelMetadata)
	mux.HandleFunc("GET /v2/models/{model}/versions/{version}", s.modelMetadata)
	mux.HandleFunc("GET /v2/models/{model}/ready", s.modelReady)
	mux.HandleFunc("GET /v2/models/{model}/versions/{version}/ready", s.modelReady)
	mux.HandleFunc("POST /v2/models/{model}/infer", s.infer)
	mux.HandleFunc("POST /v2/models/{model}/versions/{version}/infer", s.infer)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	return mux
}

func (s *Server) ok(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }

func (s *Server) serverMetadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"name": "fulcrum-e2e-modelserver", "version": "1", "extensions": []string{}})
}

// known answers 404 in the protocol's error shape for another model or version.
func (s *Server) known(w http.ResponseWriter, r *http.Request) bool {
	if m := r.PathValue("model"); m != s.cfg.Model {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("model %q not found; this server serves %q", m, s.cfg.Model)})
		return false
	}
	if v := r.PathValue("version"); v != "" && v != s.cfg.Version {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("version %q of model %q not found; this server serves %q", v, s.cfg.Model, s.cfg.Version)})
		return false
	}
	return true
}

func (s *Server) modelMetadata(w http.ResponseWriter, r *http.Request) {
	if !s.known(w, r) {
		return
	}
	w.Header().Set(VersionHeader, s.cfg.Version)
	writeJSON(w, http.StatusOK, map[string]any{
		"name": s.cfg.Model, "versions": []string{s.cfg.Version}, "platform": "fulcrum-e2e",
		"inputs":  []tensorMeta{{Name: "features", Datatype: "FP32", Shape: []int{-1, -1}}},
		"outputs": []tensorMeta{{Name: "score", Datatype: "FP32", Shape: []int{-1, 1}}},
	})
}

func (s *Server) modelReady(w http.ResponseWriter, r *http.Request) {
	if s.known(w, r) {
		w.WriteHeader(http.StatusOK)
	}
}

type tensorMeta struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Shape    []int  `json:"shape"`
}

type inferRequest struct {
	ID     string `json:"id,omitempty"`
	Inputs []struct {
		Name  string `json:"name"`
		Shape []int  `json:"shape"`
	} `json:"inputs"`
}

type tensor struct {
	tensorMeta
	Data []float64 `json:"data"`
}

type inferResponse struct {
	ModelName    string   `json:"model_name"`
	ModelVersion string   `json:"model_version"`
	ID           string   `json:"id,omitempty"`
	Outputs      []tensor `json:"outputs"`
}

// infer answers one batch: the number of rows is the first dimension of the
// first input (1 without a body), each row gets one score.
func (s *Server) infer(w http.ResponseWriter, r *http.Request) {
	start := s.clock.Now()
	code := http.StatusOK
	defer func() {
		s.requests.WithLabelValues(strconv.Itoa(code)).Inc()
		s.duration.Observe(s.clock.Since(start).Seconds())
	}()
	w.Header().Set(VersionHeader, s.cfg.Version)
	w.Header().Set("x-model-name", s.cfg.Model)
	if !s.known(w, r) {
		code = http.StatusNotFound
		return
	}
	var req inferRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err == nil && len(body) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		code = http.StatusBadRequest
		writeJSON(w, code, map[string]string{"error": "request body: " + err.Error() + ` (want {"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[...]}]})`})
		return
	}
	rows := 1
	if len(req.Inputs) > 0 && len(req.Inputs[0].Shape) > 0 && req.Inputs[0].Shape[0] > 0 {
		rows = min(req.Inputs[0].Shape[0], s.cfg.MaxRows)
	}
	s.mu.Lock()
	fail, delay := s.sampler.fail(), s.sampler.latency()
	if s.served < s.sampler.b.Cold.Requests {
		delay = s.sampler.b.Cold.Latency
	}
	s.served++
	scores := make([]float64, 0, rows)
	var success bool
	var worth float64
	if !fail {
		for range rows {
			scores = append(scores, s.sampler.score())
		}
		success, worth = s.sampler.reward()
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-s.clock.After(delay):
		case <-r.Context().Done():
			code = 499 // client gave up, as nginx counts it
			return
		}
	}
	if fail {
		code = http.StatusInternalServerError
		writeJSON(w, code, map[string]string{"error": "injected failure"})
		return
	}
	for _, sc := range scores {
		s.scores.Observe(sc)
	}
	s.feedback[success].Inc()
	s.reward.Observe(worth)
	writeJSON(w, code, inferResponse{
		ModelName: s.cfg.Model, ModelVersion: s.cfg.Version, ID: req.ID,
		Outputs: []tensor{{tensorMeta: tensorMeta{Name: "score", Datatype: "FP32", Shape: []int{rows, 1}}, Data: scores}},
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Running is a started server.
type Running struct {
	*Server
	// Addr is the bound host:port; URL is http://Addr.
	Addr, URL string
	srv       *http.Server
	done      chan struct{}
	once      sync.Once
}

// Start serves cfg on addr ("127.0.0.1:0" when empty) until Stop or ctx ends.
func Start(ctx context.Context, cfg Config, addr string) (*Running, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("modelserver listen %s: %w", addr, err)
	}
	r := &Running{Server: s, Addr: ln.Addr().String(), URL: "http://" + ln.Addr().String(), done: make(chan struct{})}
	r.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	go func() {
		select {
		case <-ctx.Done():
			r.Stop()
		case <-r.done:
		}
	}()
	return r, nil
}

// Stop shuts the server down, waiting a few seconds for requests in
// flight. Safe to call more than once.
func (r *Running) Stop() {
	r.once.Do(func() { close(r.done) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		_ = r.srv.Close()
	}
}

// ScrapeConfig is a Prometheus scrape job, for
// promserver.Config.ExtraScrapeConfigs, that scrapes model servers at addrs
// and labels their series namespace=NAMESPACE as Kubernetes service
// discovery would in a cluster. Fulcrum's drift template selects
// model_prediction_score by namespace, model (the Service name) and version,
// so name the model after its Service.
func ScrapeConfig(job, namespace string, interval time.Duration, addrs ...string) string {
	if interval <= 0 {
		interval = time.Second
	}
	var b strings.Builder
	fmt.Fprintf(&b, "- job_name: %q\n  scrape_interval: %s\n  static_configs:\n  - labels: {namespace: %q}\n    targets:\n", job, interval, namespace)
	for _, a := range addrs {
		fmt.Fprintf(&b, "    - %q\n", a)
	}
	return b.String()
}
