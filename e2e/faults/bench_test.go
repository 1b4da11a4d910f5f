package faults

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// BenchmarkTimeToSafe repeats each fault of the suite on a canary serving
// 30% of 200 requests/s and reports, per fault, from the moment the fault is
// visible to the controller: seconds until the VirtualService is at stable
// 100% (read back from the API server) and seconds until the data plane's
// last request toward the candidate (median and max of each). The rollback
// with a promote pending is the rollback→VirtualService figure under a
// pending intent. It prints the table docs/reliability.md shows. ns/op is
// the whole iteration, set-up included: read the metrics, not the time.
//
//	go test -run '^$' -bench TimeToSafe -benchtime 5x ./e2e/faults/
func BenchmarkTimeToSafe(b *testing.B) {
	if env == nil {
		b.Skip("needs the local Kubernetes environment (not under -short)")
	}
	var rows []string
	for _, d := range drills {
		b.Run(d.name, func(b *testing.B) {
			c := setup(b, d.cfg(b))
			var m measures
			d.run(b, c, &m)
			report := func(unit string, ds []time.Duration) (string, string) {
				med, max := quantile(ds, 0.5), slices.Max(ds)
				b.ReportMetric(med.Seconds(), unit+"-median-s")
				b.ReportMetric(max.Seconds(), unit+"-max-s")
				return fmt.Sprintf("%.2f", med.Seconds()), fmt.Sprintf("%.2f", max.Seconds())
			}
			vsMed, vsMax := report("vs", m.vs)
			dpMed, dpMax := report("safe", m.safe)
			rows = append(rows, fmt.Sprintf("| %s | %s | %s / %s | %s / %s | %d |", d.name, d.from, vsMed, vsMax, dpMed, dpMax, len(m.safe)))
		})
	}
	fmt.Fprintf(os.Stdout, "\n| fault | measured from | VirtualService at stable, s (median / max) | data plane safe, s (median / max) | runs |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintln(os.Stdout, r)
	}
}

// measures are one drill's times, from the fault being visible: to the
// VirtualService at stable, and to the data plane's last request toward v2.
type measures struct{ vs, safe []time.Duration }

// drill is one fault, repeated once per b.Loop iteration by run (through
// loop).
type drill struct {
	name, from string
	cfg        func(b *testing.B) caseConfig
	run        func(b *testing.B, c *faultCase, m *measures)
}

func plain(*testing.B) caseConfig { return caseConfig{} }

var drills = []drill{
	{name: "rollout deleted (RestoreStable)", from: "delete accepted", cfg: plain, run: func(b *testing.B, c *faultCase, m *measures) {
		c.startFulcrum("fulcrum")
		loop(b, c, m, at30(), func() time.Time { return c.deleteRollout() })
	}},
	{name: "candidate pods lost", from: "last pod gone (watch)", cfg: plain, run: func(b *testing.B, c *faultCase, m *measures) {
		c.startFulcrum("fulcrum")
		loop(b, c, m, at30(), func() time.Time { gone := c.podsGone("v2"); c.scale("v2", 0); return gone() })
	}},
	{name: "candidate subset removed", from: "DestinationRule updated", cfg: plain, run: func(b *testing.B, c *faultCase, m *measures) {
		c.startFulcrum("fulcrum")
		loop(b, c, m, at30(), func() time.Time { c.setSubsets("v1"); return time.Now() })
	}},
	{name: "rollback with a promote pending", from: "controller running again", cfg: plain, run: benchPendingPromote},
	{name: "rollback while Prometheus is down", from: "rollback asked", cfg: ownPrometheus, run: benchPrometheusDown},
	// Deterministic worst case: frozen before the delete, so the finalizer
	// never ran in the old process. TestControllerKilledDuringFinalizer
	// kills right after the delete instead.
	{name: "controller killed before its finalizer ran", from: "new process ready", cfg: plain, run: func(b *testing.B, c *faultCase, m *measures) {
		f := c.startFulcrum("fulcrum")
		n := 0
		loop(b, c, m, at30(), func() time.Time {
			if err := f.Freeze(); err != nil {
				b.Fatal(err)
			}
			c.deleteRollout()
			f.Kill()
			n++
			f = c.startFulcrum(fmt.Sprintf("fulcrum-%d", n))
			return time.Now()
		})
	}},
	{name: "leader killed during a rollback", from: "rollback asked", cfg: plain, run: benchLeaderChange},
	{name: "API server restarted, then rollback", from: "API answers again", cfg: plain, run: func(b *testing.B, c *faultCase, m *measures) {
		f := c.startFulcrum("fulcrum")
		loop(b, c, m, at30(), func() time.Time {
			if err := env.Kube.RestartAPIServer(c.ctx, apiServerDown); err != nil {
				b.Fatal(err)
			}
			back := time.Now()
			c.rollbackAccepted(f, "after the API server restart")
			return back
		})
	}},
	{name: "etcd paused, rollback during it", from: "etcd resumed", cfg: plain, run: func(b *testing.B, c *faultCase, m *measures) {
		f := c.startFulcrum("fulcrum")
		loop(b, c, m, at30(), func() time.Time {
			if err := env.Kube.PauseEtcd(); err != nil {
				b.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { _, err := c.act(f, "rollback", client.ActionRequest{Reason: "etcd stall"}); done <- err }()
			time.Sleep(etcdPause)
			if err := env.Kube.ResumeEtcd(); err != nil {
				b.Fatal(err)
			}
			resumed := time.Now()
			if err := <-done; err != nil {
				c.rollbackAccepted(f, "after the etcd stall")
			}
			return resumed
		})
	}},
}

// loop arms the case (a rollout at 30%) and injects the fault once per
// iteration, measuring from the time inject returns.
func loop(b *testing.B, c *faultCase, m *measures, cfg rig.RolloutConfig, inject func() time.Time) {
	for b.Loop() {
		c.rearm(cfg)
		routes := c.trackRoutes(stableOnly)
		visible := inject()
		d, ok := c.timeToSafe("v2", visible, waitLimit())
		if !ok {
			b.Fatalf("requests still going to v2 %s after the fault: %s", d, c.state())
		}
		m.safe = append(m.safe, d)
		m.vs = append(m.vs, max(0, routes().written.Sub(visible)))
	}
}

// rearm restores what a fault broke (v2's pods and subset), removes the
// previous rollout, and starts a fresh canary at 30%.
func (c *faultCase) rearm(cfg rig.RolloutConfig) {
	c.t.Helper()
	c.scale("v2", 1)
	c.setSubsets("v1", "v2")
	c.deploymentReady("v2")
	if mr, err := c.model.Rollout(c.ctx); err == nil {
		if err := env.Client.Delete(c.ctx, mr); err != nil && !apierrors.IsNotFound(err) {
			c.t.Fatal(err)
		}
		c.goneWithin(time.Now(), waitLimit())
	}
	c.waitWeights(stableOnly)
	c.canary(cfg, split70)
}

// setSubsets makes the DestinationRule's subsets exactly versions.
func (c *faultCase) setSubsets(versions ...string) {
	c.t.Helper()
	drs := c.model.Istio.NetworkingV1().DestinationRules(c.model.NS)
	dr, err := drs.Get(c.ctx, c.model.Name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	if len(dr.Spec.Subsets) == len(versions) {
		return
	}
	dr = dr.DeepCopy()
	dr.Spec.Subsets = nil
	for _, v := range versions {
		dr.Spec.Subsets = append(dr.Spec.Subsets, &networking.Subset{Name: v, Labels: map[string]string{"version": v}})
	}
	if _, err := drs.Update(c.ctx, dr, metav1.UpdateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// benchPendingPromote: the controller stalled, the candidate's pods gone,
// promote then rollback asked (the rollback supersedes the pending
// promote); measured from the controller running again.
func benchPendingPromote(b *testing.B, c *faultCase, m *measures) {
	ctl := c.startFulcrum("controller", func(cfg *rig.FulcrumConfig) { cfg.Admin = false })
	adm := c.startFulcrum("admin", func(cfg *rig.FulcrumConfig) { cfg.Controller = false })
	loop(b, c, m, at30(), func() time.Time {
		if err := ctl.Freeze(); err != nil {
			b.Fatal(err)
		}
		c.scale("v2", 0)
		c.waitNoReadyPods("v2")
		c.mustAct(adm, "promote", client.ActionRequest{Reason: "bench"})
		c.mustAct(adm, "rollback", client.ActionRequest{Reason: "bench"})
		if err := ctl.Thaw(); err != nil {
			b.Fatal(err)
		}
		return time.Now()
	})
}

func ownPrometheus(b *testing.B) caseConfig { return caseConfig{prom: newOwnProm(b)} }

// benchPrometheusDown: the rollout's Prometheus stopped, then a rollback
// asked; Prometheus started again for the next iteration.
func benchPrometheusDown(b *testing.B, c *faultCase, m *measures) {
	p := c.prom
	f := c.startFulcrum("fulcrum", func(cfg *rig.FulcrumConfig) { cfg.PrometheusURL = p.srv.URL })
	// With metrics (unlike at30), so rounds query the Prometheus that is down.
	cfg := rig.RolloutConfig{Candidate: "v2", Steps: []int32{30, 100}, MinStepDuration: time.Hour}
	loop(b, c, m, cfg, func() time.Time {
		p.stop()
		asked := time.Now()
		c.mustAct(f, "rollback", client.ActionRequest{Reason: "Prometheus is down"})
		if err := p.start(c.ctx); err != nil {
			b.Fatal(err)
		}
		return asked
	})
}

// benchLeaderChange: two replicas; the leader stalls, a rollback is asked
// through the other, the leader is killed. A new replica replaces it once
// the survivor holds the Lease, for the next iteration.
func benchLeaderChange(b *testing.B, c *faultCase, m *measures) {
	lease := "fulcrum-" + c.model.NS
	n := 0
	replica := func() *rig.Fulcrum {
		n++
		return c.startFulcrum(fmt.Sprintf("replica-%d", n), func(cfg *rig.FulcrumConfig) { cfg.LeaseID = lease })
	}
	leader := replica()
	c.eventually("a leader", func() bool { return c.leaseHolder(lease) != "" })
	follower := replica()
	loop(b, c, m, at30(), func() time.Time {
		was := c.leaseHolder(lease)
		if err := leader.Freeze(); err != nil {
			b.Fatal(err)
		}
		asked := time.Now()
		c.mustAct(follower, "rollback", client.ActionRequest{Reason: "leader change"})
		leader.Kill()
		c.eventually("the other replica to take the Lease", func() bool { h := c.leaseHolder(lease); return h != "" && h != was })
		leader, follower = follower, replica()
		return asked
	})
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}
