package modelserver

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"gonum.org/v1/gonum/stat/distuv"
	clocktesting "k8s.io/utils/clock/testing"
)

func infer(t *testing.T, h http.Handler, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	return rec
}

func TestErrorRateWithinTolerance(t *testing.T) {
	const n, rate = 10000, 0.05
	s, err := New(Config{Model: "fraud", Version: "v2", Seed: 3, Behavior: Behavior{ErrorRate: rate}})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	fails := 0
	for range n {
		rec := infer(t, h, "/v2/models/fraud/infer", "")
		switch rec.Code {
		case 500:
			fails++
		case 200:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if rec.Header().Get(VersionHeader) != "v2" {
			t.Fatalf("%s header = %q", VersionHeader, rec.Header().Get(VersionHeader))
		}
	}
	// Four binomial standard deviations: a correct server fails this about
	// once in 16,000 runs, and the seed makes the run reproducible.
	sd := math.Sqrt(n * rate * (1 - rate))
	if math.Abs(float64(fails)-n*rate) > 4*sd {
		t.Errorf("%d failures in %d requests, want %.0f ± %.0f", fails, n, n*rate, 4*sd)
	}
	if got := testutil.ToFloat64(s.requests.WithLabelValues("500")); got != float64(fails) {
		t.Errorf("%s{code=500} = %v, want %d", RequestsMetric, got, fails)
	}
	if got := testutil.ToFloat64(s.requests.WithLabelValues("200")); got != float64(n-fails) {
		t.Errorf("%s{code=200} = %v, want %d", RequestsMetric, got, n-fails)
	}
}

func TestScoresFollowDistribution(t *testing.T) {
	cases := map[string]struct {
		score Score
		cdf   func(float64) float64
	}{
		"beta(2,5)": {Score{"beta", 2, 5}, distuv.Beta{Alpha: 2, Beta: 5}.CDF},
		"beta(5,2)": {Score{"beta", 5, 2}, distuv.Beta{Alpha: 5, Beta: 2}.CDF},
		"normal clipped": {Score{"normal", 0.5, 0.2}, func(x float64) float64 {
			if x >= 1 {
				return 1
			}
			return distuv.Normal{Mu: 0.5, Sigma: 0.2}.CDF(x)
		}},
	}
	const n = 4000
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := New(Config{Model: "fraud", Version: "v1", Seed: 9, Behavior: Behavior{Score: tc.score}})
			if err != nil {
				t.Fatal(err)
			}
			h := s.Handler()
			var scores []float64
			for range n / 8 {
				rec := infer(t, h, "/v2/models/fraud/infer", `{"id":"r","inputs":[{"name":"features","shape":[8,3],"datatype":"FP32","data":[]}]}`)
				var resp inferResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || rec.Code != 200 {
					t.Fatalf("status %d body %s: %v", rec.Code, rec.Body, err)
				}
				if resp.ModelVersion != "v1" || resp.ID != "r" || len(resp.Outputs) != 1 || len(resp.Outputs[0].Data) != 8 {
					t.Fatalf("response %+v: want 8 scores from v1 for id r", resp)
				}
				scores = append(scores, resp.Outputs[0].Data...)
			}
			// Kolmogorov–Smirnov against the intended CDF at alpha 0.001.
			slices.Sort(scores)
			d := 0.0
			for i, x := range scores {
				if x < 0 || x > 1 {
					t.Fatalf("score %v outside [0,1]", x)
				}
				f := tc.cdf(x)
				d = max(d, math.Abs(f-float64(i+1)/n), math.Abs(f-float64(i)/n))
			}
			if crit := 1.949 / math.Sqrt(n); d > crit {
				t.Errorf("KS distance %.4f > %.4f: scores do not follow %s", d, crit, tc.score)
			}
			if got := testutil.CollectAndCount(s.Registry(), ScoreMetric); got != 1 {
				t.Errorf("%s has %d series, want 1", ScoreMetric, got)
			}
			mfs, _ := s.Registry().Gather()
			for _, mf := range mfs {
				if mf.GetName() == ScoreMetric {
					h := mf.GetMetric()[0].GetHistogram()
					if h.GetSampleCount() != n || len(h.GetBucket()) != len(ScoreBuckets) {
						t.Errorf("histogram count %d with %d buckets, want %d scores in %d buckets", h.GetSampleCount(), len(h.GetBucket()), n, len(ScoreBuckets))
					}
				}
			}
		})
	}
}

// The test above must be able to fail: beta(2,5) scores judged against
// beta(5,2) are rejected.
func TestKSRejectsOtherDistribution(t *testing.T) {
	smp := newSampler(Behavior{Score: Score{"beta", 2, 5}}, rand.New(rand.NewPCG(1, 2)), nil)
	const n = 4000
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = smp.score()
	}
	slices.Sort(xs)
	cdf := distuv.Beta{Alpha: 5, Beta: 2}.CDF
	d := 0.0
	for i, x := range xs {
		d = max(d, math.Abs(cdf(x)-float64(i+1)/n))
	}
	if d < 1.949/math.Sqrt(n) {
		t.Errorf("KS distance %.4f did not reject the wrong distribution", d)
	}
}

func TestLatencyQuantiles(t *testing.T) {
	smp := newSampler(Behavior{Latency: Latency{Median: 20 * time.Millisecond, P99: 200 * time.Millisecond}, Score: DefaultScore}, rand.New(rand.NewPCG(4, 5)), nil)
	const n = 40000
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = smp.latency()
	}
	slices.Sort(ds)
	within := func(got, want time.Duration, tol float64) bool {
		return math.Abs(float64(got-want)) <= tol*float64(want)
	}
	if med := ds[n/2]; !within(med, 20*time.Millisecond, 0.05) {
		t.Errorf("median %s, want 20ms ± 5%%", med)
	}
	if p99 := ds[n*99/100]; !within(p99, 200*time.Millisecond, 0.15) {
		t.Errorf("p99 %s, want 200ms ± 15%%", p99)
	}
	constant := newSampler(Behavior{Latency: Latency{Median: 7 * time.Millisecond, P99: 7 * time.Millisecond}, Score: DefaultScore}, rand.New(rand.NewPCG(1, 1)), nil)
	if d := constant.latency(); d != 7*time.Millisecond {
		t.Errorf("median == p99 should be constant, got %s", d)
	}
}

func TestLatencyWaitsOnTheClock(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(0, 0))
	s, err := New(Config{Model: "fraud", Version: "v1", Seed: 1, Clock: fc, Behavior: Behavior{Latency: Latency{Median: time.Second, P99: time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int)
	go func() { done <- infer(t, s.Handler(), "/v2/models/fraud/infer", "").Code }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !fc.HasWaiters() {
		select {
		case code := <-done:
			t.Fatalf("answered %d before its latency elapsed", code)
		case <-ctx.Done():
			t.Fatal("request never waited on the clock")
		case <-time.After(time.Millisecond):
		}
	}
	fc.Step(time.Second)
	if code := <-done; code != 200 {
		t.Errorf("status %d, want 200", code)
	}
}

func TestProtocolRoutes(t *testing.T) {
	s, err := New(Config{Model: "fraud", Version: "v3", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	cases := []struct {
		method, path string
		code         int
		bodyHas      string
	}{
		{"GET", "/v2/health/ready", 200, ""},
		{"GET", "/v2/health/live", 200, ""},
		{"GET", "/v2/models/fraud", 200, `"versions":["v3"]`},
		{"GET", "/v2/models/fraud/ready", 200, ""},
		{"GET", "/v2/models/other", 404, `not found`},
		{"POST", "/v2/models/other/infer", 404, `this server serves \"fraud\"`},
		{"POST", "/v2/models/fraud/versions/v3/infer", 200, `"model_version":"v3"`},
		{"POST", "/v2/models/fraud/versions/v1/infer", 404, `version \"v1\"`},
		{"GET", "/metrics", 200, RequestsMetric},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.bodyHas) {
			t.Errorf("%s %s: %d %s; want %d containing %q", tc.method, tc.path, resp.StatusCode, b, tc.code, tc.bodyHas)
		}
	}
	if rec := infer(t, s.Handler(), "/v2/models/fraud/infer", "{not json"); rec.Code != 400 || !strings.Contains(rec.Body.String(), "inputs") {
		t.Errorf("bad body: %d %s, want 400 with an example", rec.Code, rec.Body)
	}
}

func TestValidation(t *testing.T) {
	cases := map[string]struct {
		b    Behavior
		want string
	}{
		"error rate above 1": {Behavior{ErrorRate: 2, Score: DefaultScore}, "errorRate"},
		"p99 below median":   {Behavior{Latency: Latency{Median: time.Second, P99: time.Millisecond}, Score: DefaultScore}, "p99"},
		"p99 without median": {Behavior{Latency: Latency{P99: time.Second}, Score: DefaultScore}, "median"},
		"beta shape zero":    {Behavior{Score: Score{"beta", 0, 1}}, "beta"},
		"unknown dist":       {Behavior{Score: Score{"gamma", 1, 1}}, "use \"beta\""},
	}
	for name, tc := range cases {
		if err := tc.b.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, tc.want)
		}
	}
	if sc, err := ParseScore("beta:2,5"); err != nil || sc != (Score{"beta", 2, 5}) {
		t.Errorf("ParseScore(beta:2,5) = %v, %v", sc, err)
	}
	for _, bad := range []string{"beta", "beta:2", "normal:x,1", "beta:-1,2"} {
		if _, err := ParseScore(bad); err == nil {
			t.Errorf("ParseScore(%q) accepted", bad)
		}
	}
	if _, err := New(Config{Model: "fraud"}); err == nil || !strings.Contains(err.Error(), "Version") {
		t.Errorf("New without version: %v", err)
	}
}

// A cold server answers its first requests at the cold latency, then
// follows its latency distribution.
func TestColdStart(t *testing.T) {
	s, err := New(Config{Model: "fraud", Version: "v2", Seed: 1, Behavior: Behavior{Cold: Cold{Requests: 3, Latency: 300 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	took := func() time.Duration {
		start := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v2/models/fraud/infer", strings.NewReader(`{"inputs":[{"name":"features","shape":[1,4]}]}`)))
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return time.Since(start)
	}
	for i := 0; i < 3; i++ {
		if d := took(); d < 300*time.Millisecond {
			t.Fatalf("cold request %d took %s, want at least 300ms", i+1, d)
		}
	}
	if d := took(); d > 250*time.Millisecond {
		t.Fatalf("the fourth request took %s, want a warm answer", d)
	}
	if err := (Behavior{Score: DefaultScore, Cold: Cold{Requests: 5}}).Validate(); err == nil || !strings.Contains(err.Error(), "cold start") {
		t.Fatalf("a cold start without a latency: %v", err)
	}
}
