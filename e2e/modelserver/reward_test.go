package modelserver

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// rewardSummary reads model_reward's sum and count from the registry.
func rewardSummary(t *testing.T, s *Server) (sum float64, count uint64) {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == RewardMetric {
			sm := mf.GetMetric()[0].GetSummary()
			return sm.GetSampleSum(), sm.GetSampleCount()
		}
	}
	t.Fatalf("%s not exported", RewardMetric)
	return 0, 0
}

func TestRewardRateWithinTolerance(t *testing.T) {
	cases := map[string]struct {
		reward, errorRate float64
	}{
		"three in ten":           {0.3, 0},
		"rare, with 500s":        {0.02, 0.1},
		"never":                  {0, 0.05},
		"always":                 {1, 0},
		"half, many failures":    {0.5, 0.5},
		"default model, no rate": {0, 0},
	}
	const n = 10000
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := New(Config{Model: "fraud", Version: "v2", Seed: 11, Behavior: Behavior{Reward: tc.reward, ErrorRate: tc.errorRate}})
			if err != nil {
				t.Fatal(err)
			}
			h := s.Handler()
			answered := 0
			for range n {
				if rec := infer(t, h, "/v2/models/fraud/infer", ""); rec.Code == http.StatusOK {
					answered++
				}
			}
			success := testutil.ToFloat64(s.feedback[true])
			failure := testutil.ToFloat64(s.feedback[false])
			if int(success+failure) != answered {
				t.Fatalf("feedback counted %v successes + %v failures for %d answers; 500s must get none", success, failure, answered)
			}
			// Four binomial standard deviations: a correct server fails this
			// about once in 16,000 runs; the seed makes the run reproducible.
			p, m := tc.reward, float64(answered)
			sd := math.Sqrt(m * p * (1 - p))
			if math.Abs(success-m*p) > 4*sd {
				t.Errorf("%v successes in %d answers, want %.0f ± %.0f", success, answered, m*p, 4*sd)
			}
			sum, count := rewardSummary(t, s)
			if count != uint64(answered) || sum != success {
				t.Errorf("%s sum %v count %d, want %v and %d (worth 1 per success)", RewardMetric, sum, count, success, answered)
			}
		})
	}
}

func TestRewardValueMean(t *testing.T) {
	const n, p, mean, sd = 10000, 0.25, 20.0, 5.0
	s, err := New(Config{Model: "fraud", Version: "v1", Seed: 12, Behavior: Behavior{Reward: p, RewardValue: Value{"normal", mean, sd}}})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for range n {
		infer(t, h, "/v2/models/fraud/infer", "")
	}
	sum, count := rewardSummary(t, s)
	if count != n {
		t.Fatalf("%s count %d, want %d", RewardMetric, count, n)
	}
	// Per prediction X = success × value: E[X] = p·mean and
	// Var[X] = p(sd² + mean²) − (p·mean)²; four standard errors of the mean.
	want := p * mean
	se := math.Sqrt((p*(sd*sd+mean*mean) - want*want) / n)
	if got := sum / float64(count); math.Abs(got-want) > 4*se {
		t.Errorf("mean reward %.3f, want %.2f ± %.2f", got, want, 4*se)
	}
}

// Adding a reward must not change a seeded run's other draws, or every
// seeded scenario would shift when an experiment is configured.
func TestRewardLeavesOtherDrawsAlone(t *testing.T) {
	codes := func(b Behavior) string {
		s, err := New(Config{Model: "fraud", Version: "v1", Seed: 13, Behavior: b})
		if err != nil {
			t.Fatal(err)
		}
		h := s.Handler()
		var out strings.Builder
		for range 500 {
			out.WriteString(map[bool]string{true: "x", false: "."}[infer(t, h, "/v2/models/fraud/infer", "").Code != 200])
		}
		return out.String()
	}
	if without, with := codes(Behavior{ErrorRate: 0.2}), codes(Behavior{ErrorRate: 0.2, Reward: 0.5}); without != with {
		t.Errorf("failures changed when a reward was set:\n%s\n%s", without, with)
	}
}

func TestRewardMetricNamesAndValidation(t *testing.T) {
	s, err := New(Config{Model: "fraud", Version: "v2", Seed: 1, Behavior: Behavior{Reward: 1}})
	if err != nil {
		t.Fatal(err)
	}
	infer(t, s.Handler(), "/v2/models/fraud/infer", "")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`model_feedback_total{model="fraud",outcome="success",version="v2"} 1`,
		`model_feedback_total{model="fraud",outcome="failure",version="v2"} 0`,
		`model_reward_sum{model="fraud",version="v2"} 1`,
		`model_reward_count{model="fraud",version="v2"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	for name, tc := range map[string]struct {
		b    Behavior
		want string
	}{
		"negative reward":     {Behavior{Reward: -0.1}, "reward -0.1: want the probability"},
		"reward above 1":      {Behavior{Reward: 1.5}, "between 0 and 1"},
		"NaN reward":          {Behavior{Reward: math.NaN()}, "reward NaN"},
		"unknown value dist":  {Behavior{Reward: 0.1, RewardValue: Value{Dist: "gamma"}}, "rewardValue distribution \"gamma\""},
		"negative value sd":   {Behavior{Reward: 0.1, RewardValue: Value{"normal", 10, -1}}, "rewardValue normal"},
		"infinite value mean": {Behavior{Reward: 0.1, RewardValue: Value{"normal", math.Inf(1), 1}}, "finite mean"},
	} {
		tc.b.Score = DefaultScore
		if err := tc.b.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, tc.want)
		}
	}
	if _, err := New(Config{Model: "fraud", Version: "v1", Behavior: Behavior{Reward: 2}}); err == nil || !strings.Contains(err.Error(), "reward") {
		t.Errorf("New with reward 2: %v", err)
	}
	if err := s.SetBehavior(Behavior{Reward: -1}); err == nil {
		t.Error("SetBehavior accepted reward -1")
	}
	if v, err := ParseValue("normal:20,5"); err != nil || v != (Value{"normal", 20, 5}) {
		t.Errorf("ParseValue(normal:20,5) = %v, %v", v, err)
	}
	if v, err := ParseValue(""); err != nil || v != (Value{}) {
		t.Errorf("ParseValue(\"\") = %v, %v", v, err)
	}
	for _, bad := range []string{"normal", "normal:20", "normal:x,1", "normal:20,-1", "gamma:1,1"} {
		if _, err := ParseValue(bad); err == nil {
			t.Errorf("ParseValue(%q) accepted", bad)
		}
	}
}
