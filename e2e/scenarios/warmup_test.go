package scenarios

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// cold is a healthy model whose first 150 answers take a second each: Ready,
// but not yet warm.
var cold = func() modelserver.Behavior {
	b := healthy
	b.Cold = modelserver.Cold{Requests: 150, Latency: time.Second}
	return b
}()

// slo is the latency objective of the warm-up tests: the article's 200 ms.
const slo = 200 * time.Millisecond

// Given a candidate whose first 150 answers take a second, when a canary
// starts with no warm-up gate, then the users sent to it at the first step
// get the cold latency: their p99 is far above the 200 ms objective.
func TestColdCandidateWithoutWarmupIsSlowForUsers(t *testing.T) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v2", Behavior: cold})
	s.startFulcrum("fulcrum")
	users := s.watchLatency("v2")
	mr := s.model.NewRollout(rig.RolloutConfig{Candidate: "v2", Steps: []int32{20, 100}, MinStepDuration: 30 * time.Second})
	if err := env.Client.Create(s.ctx, mr); err != nil {
		t.Fatal(err)
	}
	s.waitWeights(map[string]int32{"v1": 80, "v2": 20})
	s.eventually("200 users answered by v2", func() bool { return users.count() >= 200 })
	p99, n := users.p99(200)
	t.Logf("users' p99 from v2 at the first step, first %d answers: %s", n, p99)
	if p99 < 900*time.Millisecond {
		t.Errorf("users' p99 from the cold v2 is %s, want the cold latency (~1s): the test would prove nothing", p99)
	}
}

// Given the same cold candidate and a warm-up gate (p99 at most 200 ms over
// 10 s, warm-up requests from a ConfigMap sent through the mesh), when the
// canary starts, then no user is answered by v2 while it warms, the warm-up
// route sends only the warm-up requests to v2, history says when and why it
// was judged warm, the route is gone afterwards, and the users' p99 from v2
// at the first step is within the objective.
func TestWarmupGateKeepsColdLatencyFromUsers(t *testing.T) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v2", Behavior: cold})
	gateway := s.model.Proxy.Addrs[0]
	f := s.startFulcrum("fulcrum", func(c *rig.FulcrumConfig) { c.Args = append(c.Args, "--warmup-gateways="+gateway) })
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud-warmup", Namespace: s.model.NS},
		Data: map[string]string{
			"1-one-row.json":  `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[0.1,0.2,0.3,0.4]}]}`,
			"2-two-rows.json": `{"inputs":[{"name":"features","shape":[2,4],"datatype":"FP32","data":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]}]}`,
		},
	}
	if err := env.Client.Create(s.ctx, cm); err != nil {
		t.Fatal(err)
	}
	users := s.watchLatency("v2")
	// The gate is the rollout's spec; the canary is started by an ML
	// engineer through the admin API, as fulcrumctl start does.
	mr := s.model.NewRollout(rig.RolloutConfig{Steps: []int32{20, 100}, MinStepDuration: 30 * time.Second})
	mr.Spec.Readiness.Warmup = &v1alpha1.WarmupGate{
		MaxP99: metav1.Duration{Duration: slo}, Window: metav1.Duration{Duration: 10 * time.Second}, MinRequests: 30,
		Timeout:  metav1.Duration{Duration: 3 * time.Minute},
		Requests: &v1alpha1.WarmupRequests{ConfigMap: cm.Name, URL: s.model.URL(), RatePerSecond: 20},
	}
	if err := env.Client.Create(s.ctx, mr); err != nil {
		t.Fatal(err)
	}
	c := s.admin(f, userToken(t, rig.EngineerUser))
	if _, err := c.Act(s.ctx, s.model.NS, mr.Name, "start", client.ActionRequest{Candidate: "v2", Reason: "new model, warm it first"}); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	s.eventually("the warm-up route on the VirtualService", func() bool { return s.warmupRoute() == "v2" })
	var held *v1alpha1.WarmupStatus
	s.eventually("status.warmup counting warm-up requests, read through the admin API", func() bool {
		got, err := c.Get(s.ctx, s.model.NS, mr.Name)
		if err != nil {
			t.Fatal(err)
		}
		held = got.Status.Warmup
		return held != nil && held.Sent > 0
	})
	t.Logf("holding: %s", held.Message)
	if n, w := users.count(), s.weights()["v2"]; n != 0 || w != 0 {
		t.Errorf("while v2 warms: %d user answers from it at weight %d, want none at 0", n, w)
	}
	s.waitWeights(map[string]int32{"v1": 80, "v2": 20})
	warmAfter := time.Since(started)
	// The controller writes the weights before the status that records
	// why: the Warm entry may land a moment after the weights.
	var warm *v1alpha1.HistoryEntry
	s.eventually("a Warm entry in history", func() bool {
		got := s.rollout()
		for i := range got.Status.History {
			if got.Status.History[i].Type == v1alpha1.HistoryWarm {
				warm = &got.Status.History[i]
			}
		}
		return warm != nil
	})
	s.eventually("the warm-up route removed", func() bool { return s.warmupRoute() == "" })
	s.eventually("200 users answered by v2", func() bool { return users.count() >= 200 })
	p99, n := users.p99(200)
	t.Logf("warm after %s (%s); users' p99 from v2 at the first step, first %d answers: %s",
		warmAfter.Round(100*time.Millisecond), warm.Reason, n, p99)
	if p99 > slo {
		t.Errorf("users' p99 from v2 at the first step is %s, above the %s objective the gate checked", p99, slo)
	}
	if !strings.Contains(warm.Reason, "v2 is warm: p99") {
		t.Errorf("Warm reason %q", warm.Reason)
	}
}

// warmupRoute is the subset the rollout's warm-up route sends to ("" when
// there is no warm-up route).
func (s *scenario) warmupRoute() string {
	vs, err := s.model.Istio.NetworkingV1().VirtualServices(s.model.NS).Get(s.ctx, s.model.Name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	for _, r := range vs.Spec.Http {
		if strings.HasPrefix(r.Name, "fulcrum-warmup-") && len(r.Route) == 1 {
			return r.Route[0].GetDestination().GetSubset()
		}
	}
	return ""
}

// latencies records the time taken by the users' answers from one version.
type latencies struct {
	mu   sync.Mutex
	took []time.Duration
}

// watchLatency records every user answer from version from now on.
func (s *scenario) watchLatency(version string) *latencies {
	l := &latencies{}
	stop := s.load.Watch(func(v string, code int, took time.Duration) {
		if v == version && code == 200 {
			l.mu.Lock()
			l.took = append(l.took, took)
			l.mu.Unlock()
		}
	})
	s.t.Cleanup(stop)
	return l
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.took)
}

// p99 is the 99th percentile of the first n answers (nearest rank), and how
// many it was taken over.
func (l *latencies) p99(n int) (time.Duration, int) {
	l.mu.Lock()
	first := slices.Clone(l.took[:min(n, len(l.took))])
	l.mu.Unlock()
	if len(first) == 0 {
		return 0, 0
	}
	sort.Slice(first, func(i, j int) bool { return first[i] < first[j] })
	return first[(len(first)*99+99)/100-1], len(first)
}
