package scenarios

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// Given a canary progressing under a fulcrum process, when the process is
// killed (SIGKILL) mid-rollout, then nothing moves while it is gone, and a
// new process resumes the same step: the candidate's weight only ever moves
// to the next step, and the history is neither rewritten nor duplicated.
func TestControllerKilledAndRestartedResumes(t *testing.T) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v2", Behavior: healthy})
	first := s.startFulcrum("fulcrum-1")
	rec := s.recordWeights("v2")
	s.createRollout(rig.RolloutConfig{Candidate: "v2", Steps: []int32{20, 40, 60, 100}})
	s.waitWeights(map[string]int32{"v1": 60, "v2": 40})

	// When
	first.Kill()
	before := s.rollout()
	s.holds("the weights with no controller running, for two steps' time", 6*time.Second, func() bool {
		return s.weights()["v2"] == 40
	})
	s.startFulcrum("fulcrum-2")

	// Then
	mr := s.waitPhase(v1alpha1.PhasePromoted)
	if got := rec.Seen(); !slices.Equal(got, []int32{0, 20, 40, 60, 100}) {
		t.Fatalf("candidate weights seen %v, want 0,20,40,60,100 (a jump or a repeat)", got)
	}
	if got := strings.Join(rig.HistoryTypes(mr), ","); got != "Started,StepAdvanced,StepAdvanced,Promoted" {
		t.Fatalf("history %s", got)
	}
	for i, h := range before.Status.History {
		if !h.Time.Equal(&mr.Status.History[i].Time) || h.Type != mr.Status.History[i].Type {
			t.Fatalf("history entry %d rewritten after restart: %+v vs %+v", i, h, mr.Status.History[i])
		}
	}
	s.assertShare(s.served(600), "v2", 100)
}

// Given two fulcrum replicas with leader election, when the leader is killed
// mid-rollout, then the other takes the Lease and finishes the rollout with
// no weight jump.
func TestLeaderKilledOtherReplicaFinishes(t *testing.T) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v2", Behavior: healthy})
	lease := "fulcrum-" + s.model.NS
	leased := func(c *rig.FulcrumConfig) { c.LeaseID = lease }
	a := s.startFulcrum("replica-a", leased)
	holder := func() string {
		var l coordinationv1.Lease
		if err := env.Client.Get(s.ctx, types.NamespacedName{Namespace: "fulcrum-system", Name: lease}, &l); err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	s.eventually("replica a to lead", func() bool { return holder() != "" })
	leader := holder()
	s.startFulcrum("replica-b", leased)
	rec := s.recordWeights("v2")
	s.createRollout(rig.RolloutConfig{Candidate: "v2", MinStepDuration: 5 * time.Second})
	s.waitWeights(map[string]int32{"v1": 80, "v2": 20})
	if holder() != leader {
		t.Fatal("leadership moved without a failure")
	}

	// When
	a.Kill()

	// Then
	s.eventually("replica b to take the Lease", func() bool { h := holder(); return h != "" && h != leader })
	mr := s.waitPhase(v1alpha1.PhasePromoted)
	if got := rec.Seen(); !slices.Equal(got, []int32{0, 20, 50, 100}) {
		t.Fatalf("candidate weights seen %v, want 0,20,50,100", got)
	}
	if got := strings.Join(rig.HistoryTypes(mr), ","); got != "Started,StepAdvanced,Promoted" {
		t.Fatalf("history %s", got)
	}
	s.assertShare(s.served(600), "v2", 100)
}

// Given a canary judged from a Prometheus of its own, when that Prometheus
// stops mid-rollout, then rounds are Error and nothing advances or is
// promoted while it is away; when it is back (same address and data),
// progress resumes to promotion.
func TestPrometheusOutageHoldsThenResumes(t *testing.T) {
	if env == nil {
		t.Skip("needs the local Kubernetes environment (not under -short)")
	}
	dir := t.TempDir()
	prom, err := promserver.Start(t.Context(), promserver.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prom.Stop() })
	scrape := rig.NewScrape(prom)
	s := givenModel(t, rig.ModelConfig{Scrape: scrape, Versions: []rig.Version{{Name: "v1", Behavior: healthy}, {Name: "v2", Behavior: healthy}}})
	s.startFulcrum("fulcrum", func(c *rig.FulcrumConfig) { c.PrometheusURL = prom.URL })
	s.createRollout(rig.RolloutConfig{Candidate: "v2"})
	s.waitWeights(map[string]int32{"v1": 80, "v2": 20})

	// When
	prom.Stop()
	away := time.Now()

	// Then
	s.holds("the first step while Prometheus is away (5 intervals, longer than the step)", 10*time.Second, func() bool {
		mr := s.rollout()
		return mr.Status.Phase == v1alpha1.PhaseProgressing && s.weights()["v2"] == 20
	})
	mr := s.rollout()
	rounds := mr.Status.Analysis.RecentRounds
	if len(rounds) == 0 || rounds[len(rounds)-1].Verdict != v1alpha1.VerdictError || !rounds[len(rounds)-1].Time.After(away) {
		t.Fatalf("latest round while Prometheus was away: %s; want an Error round", rig.Verdicts(mr))
	}

	// When
	back, err := promserver.Start(s.ctx, promserver.Config{Dir: dir, Addr: prom.Addr, ExtraScrapeConfigs: scrape.Config().ExtraScrapeConfigs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(back.Stop)

	// Then
	s.waitPhase(v1alpha1.PhasePromoted)
	s.waitWeights(map[string]int32{"v1": 0, "v2": 100})
}

// Given a candidate whose pods are Pending (a node selector no node
// matches), when a canary starts, then no traffic moves to it for several
// intervals and status says why; when a node gets the label and the pods
// turn Ready, the canary proceeds and the candidate serves its share.
func TestCandidateNotReadyGetsNoTraffic(t *testing.T) {
	key := "e2e.fulcrum.dev/ready-" + randomHex()
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v2", Behavior: healthy, NodeSelector: map[string]string{key: "true"}})
	s.startFulcrum("fulcrum")

	// When
	s.createRollout(rig.RolloutConfig{Candidate: "v2", MinStepDuration: 15 * time.Second})

	// Then
	s.eventually("SubsetsReady=False/PodsNotReady", func() bool {
		c := condition(s.rollout(), v1alpha1.ConditionSubsetsReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == "PodsNotReady"
	})
	s.holds("no weight on the candidate for 4 intervals", 8*time.Second, func() bool { return s.weights()["v2"] == 0 })
	w := s.served(600)
	if w.ByVersion["v2"] != 0 || w.Share("v1") != 1 {
		t.Fatalf("with v2 not Ready: %s, want every answer from v1", w)
	}
	t.Logf("while not Ready: %q", s.rollout().Status.Message)

	// When
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:"true"}}}`, key)
	if _, err := env.Kube.Client.CoreV1().Nodes().Patch(s.ctx, env.Kube.NodeName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unpatch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:null}}}`, key)
		_, _ = env.Kube.Client.CoreV1().Nodes().Patch(t.Context(), env.Kube.NodeName, types.MergePatchType, unpatch, metav1.PatchOptions{})
	})

	// Then
	s.waitWeights(map[string]int32{"v1": 80, "v2": 20})
	t.Logf("Ready: history %v, stepStartedAt %v", rig.HistoryTypes(s.rollout()), s.rollout().Status.StepStartedAt)
	w = s.served(1500)
	// Should the share be off, say whether the route moved meanwhile (a
	// readiness flap under load shows as TrafficRestored in history).
	t.Logf("after measuring: weights %v, history %v", s.weights(), rig.HistoryTypes(s.rollout()))
	s.assertShare(w, "v2", 20)
	s.waitPhase(v1alpha1.PhasePromoted)
}

func condition(mr *v1alpha1.ModelRollout, typ string) *metav1.Condition {
	for i := range mr.Status.Conditions {
		if mr.Status.Conditions[i].Type == typ {
			return &mr.Status.Conditions[i]
		}
	}
	return nil
}

func randomHex() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
