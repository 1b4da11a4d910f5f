package faults

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// How long the infrastructure stays broken.
const (
	// apiServerDown is how long kube-apiserver stays dead before it is
	// started again (it then takes 3–10 s to answer /readyz here, by how
	// loaded the machine is): every watch in the cluster breaks and backs
	// off.
	apiServerDown = 2 * time.Second
	// etcdPause is "a few seconds" of a stalled etcd: longer than a
	// reconcile and an analysis interval, well below the 40 s node lease,
	// so no pod turns unready because of it.
	etcdPause = 3 * time.Second
	// promDown and promUp shape Prometheus flapping: down for longer than
	// an analysis interval (2 s), so at least one round runs without it,
	// back for an interval, three times.
	promDown, promUp, promFlaps = 3 * time.Second, 2 * time.Second, 3
)

// Given a canary serving 30% with live traffic, when kube-apiserver is
// killed and started again, and an engineer rolls back as soon as it
// answers, then the data plane served every request while the API was down
// (routing needs no API server), the rollback reaches the data plane within
// watchRetryBound of the outage plus reactBound after the API answers, and
// history lost or repeated nothing.
func TestAPIServerRestartMidRollout(t *testing.T) {
	c := givenAlone(t, caseConfig{})
	f := c.startFulcrum("fulcrum")
	c.canary(at30(), split70)
	before := c.rollout()
	w0 := c.load.Snapshot()

	// When
	killed := time.Now()
	if err := env.Kube.RestartAPIServer(c.ctx, apiServerDown); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	outage := c.load.Snapshot().Sub(w0)
	routes := c.trackRoutes(stableOnly)
	rb := c.rollbackAccepted(f, "after the API server restart")

	// Then
	if n := outage.Errors(""); n > 0 {
		t.Fatalf("%d of %d requests failed while the API server was down (%s)", n, outage.Completed, outage)
	}
	rt := routes()
	t.Logf("API server out for %s; after it answered again: VirtualService at stable %s later, the proxy routing by it %s later",
		back.Sub(killed).Round(time.Millisecond), rt.written.Sub(back).Round(time.Millisecond), rt.routed.Sub(back).Round(time.Millisecond))
	c.safeWithin("v2", back, watchRetryBound(back.Sub(killed))+reactBound)
	c.rolledBackBy(before, rb)
}

// Given a canary serving 30% with live traffic, when etcd stalls (SIGSTOP)
// for a few seconds and an engineer rolls back during the stall, then the
// data plane served every request meanwhile, and the rollback lands within
// reactBound of etcd resuming.
func TestEtcdPausedMidRollout(t *testing.T) {
	c := givenAlone(t, caseConfig{})
	f := c.startFulcrum("fulcrum")
	c.canary(at30(), split70)
	before := c.rollout()
	w0 := c.load.Snapshot()

	// When
	if err := env.Kube.PauseEtcd(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Kube.ResumeEtcd() })
	type answer struct {
		mr  *v1alpha1.ModelRollout
		err error
	}
	asked := make(chan answer, 1)
	go func() {
		mr, err := c.act(f, "rollback", client.ActionRequest{Reason: "during the etcd stall"})
		asked <- answer{mr, err}
	}()
	time.Sleep(etcdPause)
	if err := env.Kube.ResumeEtcd(); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	outage := c.load.Snapshot().Sub(w0)
	a := <-asked
	t.Logf("rollback asked during the stall answered %s after etcd resumed: %v", time.Since(resumed).Round(time.Millisecond), a.err)
	rb := a.mr
	if a.err != nil {
		rb = c.rollbackAccepted(f, "after the etcd stall")
	}

	// Then
	if n := outage.Errors(""); n > 0 {
		t.Fatalf("%d of %d requests failed while etcd was paused (%s)", n, outage.Completed, outage)
	}
	c.safeWithin("v2", resumed, reactBound)
	c.rolledBackBy(before, rb)
}

// Given a canary judged from a Prometheus of its own, with steps short
// enough to advance between outages, when that Prometheus goes away and
// comes back three times and, on its third absence, an engineer rolls
// back, then every round while it was away was an Error and no step
// advanced then, the rollback did not wait for it (the data plane left the
// candidate within reactBound), and history lost or repeated nothing.
func TestPrometheusFlapping(t *testing.T) {
	if env == nil {
		t.Skip("needs the local Kubernetes environment (not under -short)")
	}
	prom := newOwnProm(t)
	c := given(t, caseConfig{prom: prom})
	f := c.startFulcrum("fulcrum", func(cfg *rig.FulcrumConfig) { cfg.PrometheusURL = prom.srv.URL })
	// Four advances of at least 4 s each to reach 100%: more than the
	// flapping lasts, so the rollback always has something to roll back.
	c.canary(rig.RolloutConfig{Candidate: "v2", Steps: []int32{20, 40, 60, 80, 100}, MinStepDuration: 4 * time.Second},
		map[string]int32{"v1": 80, "v2": 20})
	before := c.rollout()

	// When
	var away [][2]time.Time
	var rb *v1alpha1.ModelRollout
	var asked time.Time
	for i := range promFlaps {
		prom.stop()
		down := time.Now()
		if i == promFlaps-1 {
			t.Logf("rounds before the rollback:\n%s", rounds(c.rollout()))
			asked = time.Now()
			rb = c.mustAct(f, "rollback", client.ActionRequest{Reason: "while Prometheus is away"})
			away = append(away, [2]time.Time{down, time.Now().Add(time.Hour)})
			break
		}
		time.Sleep(promDown)
		c.errorRoundSince(down)
		if err := prom.start(c.ctx); err != nil {
			t.Fatal(err)
		}
		away = append(away, [2]time.Time{down, time.Now()})
		time.Sleep(promUp)
	}

	// Then
	c.safeWithin("v2", asked, reactBound)
	mr := c.rolledBackBy(before, rb)
	for _, h := range mr.Status.History {
		if h.Type != "StepAdvanced" && h.Type != "Promoted" {
			continue
		}
		for _, w := range away {
			// History times are whole seconds: an entry stamped S was
			// made in [S, S+1s). A round that read Prometheus just before
			// it stopped may be recorded a moment later.
			at := h.Time.Time
			if at.After(w[0].Add(500*time.Millisecond)) && at.Add(time.Second).Before(w[1]) {
				t.Fatalf("%s while Prometheus was away (%s–%s)\n%s\nverdicts:\n%s", describe(h),
					w[0].Format("15:04:05.000"), w[1].Format("15:04:05.000"), historyText(mr), rig.Verdicts(mr))
			}
		}
	}
}

// Given two fulcrum replicas with leader election and a canary serving 30%,
// when the leader stalls, an engineer rolls back through the other replica,
// and the stalled leader is killed, then the other replica takes the Lease
// and applies the rollback: the data plane leaves the candidate within
// takeoverBound of the request, and the rollback is recorded once.
func TestLeaderChangeDuringRollback(t *testing.T) {
	c := given(t, caseConfig{})
	lease := "fulcrum-" + c.model.NS
	leased := func(cfg *rig.FulcrumConfig) { cfg.LeaseID = lease }
	holder := func() string { return c.leaseHolder(lease) }
	a := c.startFulcrum("replica-a", leased)
	c.eventually("replica a to lead", func() bool { return holder() != "" })
	leader := holder()
	b := c.startFulcrum("replica-b", leased)
	c.canary(at30(), split70)
	before := c.rollout()

	// When
	if err := a.Freeze(); err != nil {
		t.Fatal(err)
	}
	asked := time.Now()
	rb := c.mustAct(b, "rollback", client.ActionRequest{Reason: "during a leader change"})
	a.Kill()

	// Then
	c.safeWithin("v2", asked, takeoverBound)
	c.eventually("replica b to take the Lease", func() bool { h := holder(); return h != "" && h != leader })
	c.rolledBackBy(before, rb)
}

// errorRoundSince fails the case unless the latest analysis round ran
// after since (to the second: status times are whole seconds) and was an
// Error (Prometheus unreachable).
func (c *faultCase) errorRoundSince(since time.Time) {
	c.t.Helper()
	mr := c.rollout()
	var last *v1alpha1.AnalysisRound
	if a := mr.Status.Analysis; a != nil && len(a.RecentRounds) > 0 {
		last = &a.RecentRounds[len(a.RecentRounds)-1]
	}
	if last == nil || last.Time.Time.Before(since.Truncate(time.Second)) || last.Verdict != v1alpha1.VerdictError {
		c.t.Fatalf("latest round while Prometheus was away (since %s): %+v, want an Error round\nverdicts:\n%s",
			since.Format("15:04:05.000"), last, rig.Verdicts(mr))
	}
}

// rounds renders the recent analysis rounds with their times.
func rounds(mr *v1alpha1.ModelRollout) string {
	var b strings.Builder
	if a := mr.Status.Analysis; a != nil {
		for _, r := range a.RecentRounds {
			fmt.Fprintf(&b, "  %s step %d %s:", r.Time.UTC().Format("15:04:05"), r.Step, r.Verdict)
			for _, m := range r.Metrics {
				fmt.Fprintf(&b, " %s=%s(n=%d %s)", m.Name, m.Verdict, m.CandidateSamples, m.Message)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// ownProm is a Prometheus of a case's own, stopped and started again in
// place (same address and data) to flap.
type ownProm struct {
	srv    *promserver.Server
	dir    string
	scrape *rig.Scrape
}

func newOwnProm(tb testing.TB) *ownProm {
	tb.Helper()
	p := &ownProm{dir: tb.TempDir()}
	var err error
	if p.srv, err = promserver.Start(tb.Context(), promserver.Config{Dir: p.dir}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.srv.Stop() })
	p.scrape = rig.NewScrape(p.srv)
	return p
}

func (p *ownProm) stop() { p.srv.Stop() }

// start runs the server again where it was, scraping what it scraped.
func (p *ownProm) start(ctx context.Context) error {
	srv, err := promserver.Start(ctx, promserver.Config{Dir: p.dir, Addr: p.srv.Addr, ExtraScrapeConfigs: p.scrape.Config().ExtraScrapeConfigs})
	if err != nil {
		return err
	}
	p.srv = srv
	return nil
}

// leaseHolder is the holder of a Lease in fulcrum-system, or "".
func (c *faultCase) leaseHolder(name string) string {
	var l coordinationv1.Lease
	if err := env.Client.Get(c.ctx, types.NamespacedName{Namespace: "fulcrum-system", Name: name}, &l); err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// rollbackAccepted asks for a rollback until the admin API accepts it, as
// an engineer would retry after an outage, and returns the rollout with the
// intent.
func (c *faultCase) rollbackAccepted(f *rig.Fulcrum, reason string) *v1alpha1.ModelRollout {
	c.t.Helper()
	start := time.Now()
	var first error
	for {
		mr, err := c.act(f, "rollback", client.ActionRequest{Reason: reason})
		if err == nil {
			if first != nil {
				c.t.Logf("rollback accepted %s after the first try, which failed: %v", time.Since(start).Round(time.Millisecond), first)
			}
			return mr
		}
		if first == nil {
			first = err
		}
		var p *client.Problem
		if errors.As(err, &p) && p.Status < 500 {
			c.t.Fatalf("rollback refused: %v", err)
		}
		if time.Since(start) > waitLimit() {
			c.t.Fatalf("rollback not accepted within %s: %v", waitLimit(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rolledBackBy checks the end of a rollback asked for with the intent on
// rb: RolledBack at stable 100%, the intent recorded once as RolledBack by
// the engineer, the history before the fault intact, and stable serving all
// the traffic. It returns the rollout.
func (c *faultCase) rolledBackBy(before, rb *v1alpha1.ModelRollout) *v1alpha1.ModelRollout {
	c.t.Helper()
	id := rb.Spec.Intent.ID
	c.waitPhase(v1alpha1.PhaseRolledBack)
	c.waitWeights(stableOnly)
	mr := c.waitHistory(id)
	if h := entryFor(mr, id); h == nil || h.Type != "RolledBack" || h.Actor != rig.EngineerUser {
		c.t.Fatalf("history entry for the rollback %s: %+v, want RolledBack by %s\n%s", id, h, rig.EngineerUser, historyText(mr))
	}
	c.historyIntact(before, mr)
	c.logHistory(mr)
	c.servedShare("v1", 100, 600)
	return mr
}
