package scenarios

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/gates"
	"github.com/fulcrum-ml/fulcrum/e2e/loadgate"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// loadTest starts the load-test hook of docs/hooks.md for the scenario:
// it drives the version the gate's payload names, at its model server.
func (s *scenario) loadTest() (*loadgate.Hook, string) {
	s.t.Helper()
	hook := loadgate.New(loadgate.Config{
		Target: func(p gates.Payload) (string, error) {
			srv, ok := s.model.Servers[p.Candidate]
			if !ok {
				return "", fmt.Errorf("no model server for %s", p.Candidate)
			}
			return srv.URL + "/v2/models/" + s.model.Name + "/infer", nil
		},
		Rate: 100, Duration: 3 * time.Second, MaxErrorRate: 0.02, MaxP99: 250 * time.Millisecond,
	})
	srv := httptest.NewServer(hook)
	s.t.Cleanup(srv.Close)
	return hook, srv.URL + "/load-test"
}

// gated is the scenario's canary with a load test before each step and an
// approval before the promotion.
func (s *scenario) gated(hookURL string) *v1alpha1.ModelRollout {
	mr := s.model.NewRollout(rig.RolloutConfig{Steps: []int32{20, 50, 100}, MinStepDuration: 6 * time.Second})
	mr.Spec.Gates = []v1alpha1.Gate{
		{Name: "load-test", At: v1alpha1.GateEachStep, Timeout: metav1.Duration{Duration: time.Minute}, HTTP: &v1alpha1.HTTPGate{
			URL: hookURL, AttemptTimeout: metav1.Duration{Duration: 30 * time.Second},
			Expect: &v1alpha1.HTTPExpect{Verdict: &v1alpha1.JSONVerdict{Field: "verdict"}},
		}},
		{Name: "sign-off", At: v1alpha1.GatePrePromote, Approval: &v1alpha1.ApprovalGate{Instructions: "compare the offline evaluation"}},
	}
	return mr
}

// Given a canary with a load test before each step and an approval before
// the promotion, when a CI pipeline (role fulcrum-pipeline) starts v2 with
// fulcrumctl start --wait, then the load test drives v2 before each of its
// steps, the rollout stops before the promotion and the pipeline's output
// says it waits for the approval; the pipeline itself may not approve; when
// an ML engineer approves with fulcrumctl, v2 is promoted, the pipeline's
// wait ends with exit 0, and history says who approved and why. A Slack
// Notifier of the namespace (a real HTTP server in Slack's place) is told
// of each step: the approval waiting, who approved, the promotion.
func TestApprovalGateEndToEnd(t *testing.T) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v2", Behavior: healthy})
	f := s.startFulcrum("fulcrum", func(c *rig.FulcrumConfig) { c.Args = append(c.Args, "--gate-allowed-hosts=127.0.0.1") })
	hook, url := s.loadTest()
	slack := s.slackNotifier()
	if err := env.Client.Create(s.ctx, s.gated(url)); err != nil {
		t.Fatal(err)
	}
	s.waitPhase(v1alpha1.PhaseStable)
	ci, alice := userToken(t, rig.CIUser), userToken(t, rig.EngineerUser)

	// When the pipeline starts v2 and waits
	type result struct {
		out  string
		code int
		err  error
	}
	waited := make(chan result, 1)
	go func() {
		out, code, err := env.Fulcrumctl(s.ctx, f.AdminURL, ci, "start", "fraud", "-n", s.model.NS, "--candidate", "v2", "--reason", "pipeline 7", "--wait", "--timeout", "4m")
		waited <- result{out, code, err}
	}()

	// Then it stops before the promotion, waiting for a person
	s.eventually("the approval gate waiting", func() bool { return v1alpha1.PendingApproval(&s.rollout().Status) == "sign-off" })
	s.waitWeights(map[string]int32{"v1": 50, "v2": 50})
	calls := hook.Calls()
	if len(calls) != 2 || calls[0].Payload.Step.Weight != 20 || calls[1].Payload.Step.Weight != 50 {
		t.Fatalf("load tests %+v, want one before 20%% and one before 50%%", calls)
	}
	for _, c := range calls {
		if c.Answer.Verdict != "pass" || c.Answer.Version != "v2" || c.Answer.Requests < 250 {
			t.Fatalf("load test %+v, want v2 driven with 300 requests and passing", c.Answer)
		}
	}
	s.holds("the 50% step while nobody approves", 4*time.Second, func() bool {
		return sameWeights(s.weights(), map[string]int32{"v1": 50, "v2": 50}) && s.rollout().Status.Phase == v1alpha1.PhaseProgressing
	})
	out, code, err := env.Fulcrumctl(s.ctx, f.AdminURL, ci, "approve", "fraud", "-n", s.model.NS, "--reason", "self-approval")
	if err != nil || code != 1 || !strings.Contains(out, "may not 'approve'") {
		t.Fatalf("the pipeline's own approval: exit %d, %v\n%s", code, err, out)
	}

	// When an ML engineer approves
	out, code, err = env.Fulcrumctl(s.ctx, f.AdminURL, alice, "approve", "fraud", "-n", s.model.NS, "--gate", "sign-off", "--reason", "offline AUC 0.93")
	if err != nil || code != 0 {
		t.Fatalf("fulcrumctl approve: exit %d, %v\n%s", code, err, out)
	}

	// Then v2 is promoted and the pipeline's wait ends with 0
	var r result
	select {
	case r = <-waited:
	case <-s.ctx.Done():
		t.Fatal(s.ctx.Err())
	}
	t.Logf("the pipeline's output:\n%s", r.out)
	if r.err != nil || r.code != 0 || !strings.Contains(r.out, "waiting for gate sign-off (approval at PrePromote, before 100%): a person with the approve verb must approve it") ||
		!strings.Contains(r.out, "waiting for gate load-test (HTTP at EachStep, before step 1 at 20%)") {
		t.Fatalf("fulcrumctl start --wait: exit %d, %v\n%s", r.code, r.err, r.out)
	}
	mr := s.waitPhase(v1alpha1.PhasePromoted)
	var approved *v1alpha1.HistoryEntry
	for i := range mr.Status.History {
		if h := &mr.Status.History[i]; h.Type == v1alpha1.HistoryApproved {
			approved = h
		}
	}
	if approved == nil || approved.Actor != rig.EngineerUser || !strings.Contains(approved.Reason, "offline AUC 0.93") {
		t.Fatalf("history %v, want Approved by %s with the reason", rig.HistoryTypes(mr), rig.EngineerUser)
	}
	s.waitWeights(map[string]int32{"v2": 100})
	s.eventually("Slack told of the wait, the approval and the promotion", func() bool {
		all := strings.Join(slack.posts(), "\n")
		return strings.Contains(all, "sign-off") && strings.Contains(all, "offline AUC 0.93") && strings.Contains(all, "promoted to stable")
	})
	t.Logf("Slack received %d messages", len(slack.posts()))
}

// Given a candidate that fails under load (30% errors), when its canary
// starts with a load test before each step, then the load test fails
// before the first step and the rollout rolls back: no user was sent to
// the candidate.
func TestLoadTestGateStopsABadCandidateBeforeUsers(t *testing.T) {
	s := given(t, rig.Version{Name: "v1", Behavior: healthy}, rig.Version{Name: "v3", Behavior: erroring})
	s.startFulcrum("fulcrum", func(c *rig.FulcrumConfig) { c.Args = append(c.Args, "--gate-allowed-hosts=127.0.0.1") })
	_, url := s.loadTest()
	rec := s.recordWeights("v3")
	mr := s.gated(url)
	mr.Spec.Candidate = "v3"
	if err := env.Client.Create(s.ctx, mr); err != nil {
		t.Fatal(err)
	}
	mr = s.waitPhase(v1alpha1.PhaseRolledBack)
	if seen := rec.Seen(); len(seen) != 1 || seen[0] != 0 {
		t.Fatalf("v3's weights seen %v, want only 0", seen)
	}
	last := mr.Status.History[len(mr.Status.History)-1]
	if last.Type != v1alpha1.HistoryRolledBack || !strings.Contains(last.Reason, "gate load-test (HTTP at EachStep, step 1) failed") || !strings.Contains(last.Reason, `verdict is "fail"`) {
		t.Fatalf("last history %+v", last)
	}
}
