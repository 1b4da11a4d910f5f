// Package modelserver is the end-to-end rig's model: an HTTP server speaking
// the KServe v2 / Open Inference Protocol shape whose failures, latency and
// prediction scores follow distributions set per version, so a canary can be
// made healthy, erroring, slow or drifting on purpose.
//
// It exports model_prediction_score (a histogram by model and version, le
// from 0.1 to 1.0) for drift analysis, model_requests_total and
// model_request_duration_seconds, and sets the x-model-version response
// header so a client can tell which version answered.
//
// For A/B experiments it also simulates what users do with the predictions
// they are served. Every inference answered 200 draws one outcome, a
// success (a click, a conversion) with probability Behavior.Reward, and
// counts it in model_feedback_total{model, version, outcome="success" or
// "failure"}; the success rate of a version is
//
//	rate(model_feedback_total{outcome="success"}[w]) / rate(model_feedback_total[w])
//
// It observes the outcome's value in the summary model_reward (exported as
// model_reward_sum and model_reward_count, by model and version): 0 for a
// failure, and for a success 1 or a draw from Behavior.RewardValue, so the
// mean reward per served prediction (revenue per request, say) is
// rate(model_reward_sum[w]) / rate(model_reward_count[w]). Requests that
// fail (500) or that the client abandons (499) get no feedback.
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
	// Reward is the probability that a served prediction is a success
	// (0 to 1). The zero value is a model whose predictions never succeed.
	Reward float64
	// RewardValue is what one success is worth; the zero value is 1.
	RewardValue Value
}

// Value is the distribution of what one success is worth (revenue, watch
// time), for experiments that compare means: "normal" with mean A and
// standard deviation B, floored at 0 (B = 0 for a constant). The zero value
// (Dist "") is a constant 1, so the mean reward is the success rate.
type Value struct {
	Dist string
	A, B float64
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
	if !(b.Reward >= 0 && b.Reward <= 1) {
		return fmt.Errorf("reward %v: want the probability a served prediction succeeds, between 0 and 1, e.g. 0.05 for a 5%% click rate", b.Reward)
	}
	switch b.RewardValue.Dist {
	case "":
	case "normal":
		if math.IsNaN(b.RewardValue.A) || math.IsInf(b.RewardValue.A, 0) || !(b.RewardValue.B >= 0) || math.IsInf(b.RewardValue.B, 0) {
			return fmt.Errorf("rewardValue normal(%v,%v): want a finite mean and a standard deviation >= 0, e.g. normal:20,5", b.RewardValue.A, b.RewardValue.B)
		}
	default:
		return fmt.Errorf("rewardValue distribution %q: use \"normal\", or leave it empty for 1 per success", b.RewardValue.Dist)
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

// ParseValue reads "normal:MEAN,SD", or "" for 1 per success.
func ParseValue(s string) (Value, error) {
	if s == "" {
		return Value{}, nil
	}
	dist, params, ok := strings.Cut(s, ":")
	a, b, ok2 := strings.Cut(params, ",")
	av, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	bv, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if !ok || !ok2 || err1 != nil || err2 != nil {
		return Value{}, fmt.Errorf("reward value %q: want normal:MEAN,SD, e.g. normal:20,5", s)
	}
	v := Value{Dist: strings.TrimSpace(dist), A: av, B: bv}
	if err := (Behavior{Score: DefaultScore, RewardValue: v}).Validate(); err != nil {
		return Value{}, err
	}
	return v, nil
}

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

// sampler draws from a Behavior. Not safe for concurrent use.
type sampler struct {
	b   Behavior
	rnd *rand.Rand
	// rewards draws outcomes from a stream of its own, so that adding a
	// reward leaves a seeded run's failures, latencies and scores as they
	// were.
	rewards *rand.Rand
	beta    distuv.Beta
	mu      float64 // log-normal location
	sig     float64 // log-normal scale
}

func newSampler(b Behavior, rnd, rewards *rand.Rand) *sampler {
	s := &sampler{b: b, rnd: rnd, rewards: rewards}
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

// reward draws whether a served prediction succeeds and what it is worth.
func (s *sampler) reward() (bool, float64) {
	r := s.b.Reward
	if r <= 0 || (r < 1 && s.rewards.Float64() >= r) {
		return false, 0
	}
	if s.b.RewardValue.Dist == "normal" {
		return true, max(0, s.b.RewardValue.A+s.b.RewardValue.B*s.rewards.NormFloat64())
	}
	return true, 1
}
