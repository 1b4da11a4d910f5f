// Package modelserver is the end-to-end rig's model: an HTTP server speaking
// the KServe v2 / Open Inference Protocol shape whose failures, latency and
// prediction scores follow distributions set per version, so a canary can be
// made healthy, erroring, slow or drifting on purpose.
//
// It exports model_prediction_score (a histogram by model and version, le
// from 0.1 to 1.0) for drift analysis, model_requests_total and
// model_request_duration_seconds, and sets the x-model-version response
// header so a client can tell which version answered.
package modelserver

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// Latency is a log-normal service time given by its median and 99th
// percentile. The zero value answers at once; Median == P99 is a constant.
type Latency struct {
	Median, P99 time.Duration
}

// Score is the distribution of prediction scores, always within [0, 1]:
// "beta" with shape A (alpha) and B (beta), or "normal" with mean A and
// standard deviation B, clipped to [0, 1].
type Score struct {
	Dist string
	A, B float64
}

// Behavior is how one model version behaves.
type Behavior struct {
	// ErrorRate is the share of inference requests answered with HTTP 500.
	ErrorRate float64
	Latency   Latency
	Score     Score
	// Cold is a cold start: a model that is Ready but has not yet loaded
	// its weights into memory, compiled its graph or filled its caches.
	Cold Cold
}

// Cold makes the first Requests inference requests a server answers take
// Latency each (instead of the Latency distribution), as a model's first
// requests after start do. The zero value is a warm model.
type Cold struct {
	Requests int
	Latency  time.Duration
}

// DefaultScore is a healthy model's score distribution: beta(2, 5), mean
// about 0.29.
var DefaultScore = Score{Dist: "beta", A: 2, B: 5}

// Validate names the first field that cannot work and how to fix it.
func (b Behavior) Validate() error {
	if b.ErrorRate < 0 || b.ErrorRate > 1 || math.IsNaN(b.ErrorRate) {
		return fmt.Errorf("errorRate %v: want a share between 0 and 1, e.g. 0.02 for 2%%", b.ErrorRate)
	}
	if b.Latency.Median < 0 || b.Latency.P99 < 0 {
		return fmt.Errorf("latency: median %s and p99 %s must not be negative", b.Latency.Median, b.Latency.P99)
	}
	if b.Latency.P99 < b.Latency.Median {
		return fmt.Errorf("latency: p99 %s is below median %s; set p99 >= median (equal for a constant)", b.Latency.P99, b.Latency.Median)
	}
	if b.Cold.Requests < 0 || b.Cold.Latency < 0 || (b.Cold.Requests > 0) != (b.Cold.Latency > 0) {
		return fmt.Errorf("cold start: %d request(s) at %s: set both above 0 (e.g. 200 requests at 1.5s), or neither for a warm model", b.Cold.Requests, b.Cold.Latency)
	}
	if b.Latency.Median == 0 && b.Latency.P99 > 0 {
		return fmt.Errorf("latency: median is 0 but p99 is %s; set a median above 0", b.Latency.P99)
	}
	switch b.Score.Dist {
	case "beta":
		if !(b.Score.A > 0) || !(b.Score.B > 0) {
			return fmt.Errorf("score beta(%v,%v): both shapes must be above 0, e.g. beta:2,5", b.Score.A, b.Score.B)
		}
	case "normal":
		if b.Score.B < 0 || math.IsNaN(b.Score.A) || math.IsNaN(b.Score.B) {
			return fmt.Errorf("score normal(%v,%v): want a mean and a standard deviation >= 0, e.g. normal:0.3,0.1", b.Score.A, b.Score.B)
		}
	default:
		return fmt.Errorf("score distribution %q: use \"beta\" or \"normal\"", b.Score.Dist)
	}
	return nil
}

// ParseScore reads "beta:A,B" or "normal:MEAN,SD".
func ParseScore(s string) (Score, error) {
	dist, params, ok := strings.Cut(s, ":")
	a, b, ok2 := strings.Cut(params, ",")
	if !ok || !ok2 {
		return Score{}, fmt.Errorf("score %q: want beta:A,B or normal:MEAN,SD, e.g. beta:2,5", s)
	}
	av, err := strconv.ParseFloat(strings.TrimSpace(a), 64)
	if err != nil {
		return Score{}, fmt.Errorf("score %q: first parameter: %w", s, err)
	}
	bv, err := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if err != nil {
		return Score{}, fmt.Errorf("score %q: second parameter: %w", s, err)
	}
	sc := Score{Dist: strings.TrimSpace(dist), A: av, B: bv}
	if err := (Behavior{Score: sc}).Validate(); err != nil {
		return Score{}, err
	}
	return sc, nil
}

// String is the form ParseScore reads.
func (s Score) String() string {
	return fmt.Sprintf("%s:%g,%g", s.Dist, s.A, s.B)
}

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

// sampler draws from a Behavior. Not safe for concurrent use.
type sampler struct {
	b    Behavior
	rnd  *rand.Rand
	beta distuv.Beta
	mu   float64 // log-normal location
	sig  float64 // log-normal scale
}

func newSampler(b Behavior, rnd *rand.Rand) *sampler {
	s := &sampler{b: b, rnd: rnd}
	if b.Score.Dist == "beta" {
		s.beta = distuv.Beta{Alpha: b.Score.A, Beta: b.Score.B, Src: rnd}
	}
	if b.Latency.Median > 0 {
		s.mu = math.Log(float64(b.Latency.Median))
		s.sig = (math.Log(float64(b.Latency.P99)) - s.mu) / z99
	}
	return s
}

// maxLatency caps the log-normal tail so no request outlives a test.
const maxLatency = 30 * time.Second

func (s *sampler) fail() bool { return s.b.ErrorRate > 0 && s.rnd.Float64() < s.b.ErrorRate }

func (s *sampler) latency() time.Duration {
	if s.b.Latency.Median == s.b.Latency.P99 {
		return s.b.Latency.Median
	}
	d := time.Duration(math.Exp(s.mu + s.sig*s.rnd.NormFloat64()))
	return min(d, maxLatency)
}

func (s *sampler) score() float64 {
	switch s.b.Score.Dist {
	case "beta":
		return s.beta.Rand()
	default:
		return min(1, max(0, s.b.Score.A+s.b.Score.B*s.rnd.NormFloat64()))
	}
}
