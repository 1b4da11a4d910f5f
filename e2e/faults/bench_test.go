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
// 30% of 200 requests/s and reports, per fault, the seconds from the fault
// being visible to the controller to the data plane's last request toward
// the candidate (median and max), and for a rollback with a promote pending,
// the milliseconds from the controller seeing it to the VirtualService at
// stable 100%. It prints the table docs/reliability.md shows. Not a timed
// benchmark: ns/op is the whole iteration, fault set-up included.
//
//	go test -run '^$' -bench TimeToSafe -benchtime 5x ./e2e/faults/
func BenchmarkTimeToSafe(b *testing.B) {
	if env == nil {
		b.Skip("needs the local Kubernetes environment (not under -short)")
	}
	var rows []string
	row := func(name, from string, ds []time.Duration) {
		med, max := quantile(ds, 0.5), slices.Max(ds)
		rows = append(rows, fmt.Sprintf("| %s | %s | %.2f | %.2f | %d |", name, from, med.Seconds(), max.Seconds(), len(ds)))
	}
	for _, d := range drills {
		b.Run(d.name, func(b *testing.B) {
			c := setup(b, d.cfg(b))
			ds, extra := d.run(b, c)
			b.ReportMetric(quantile(ds, 0.5).Seconds(), "median-s")
			b.ReportMetric(slices.Max(ds).Seconds(), "max-s")
			row(d.name, d.from, ds)
			for name, xs := range extra {
				b.ReportMetric(float64(quantile(xs, 0.5).Microseconds())/1000, name+"-median-ms")
				b.ReportMetric(float64(slices.Max(xs).Microseconds())/1000, name+"-max-ms")
				row(d.name+": "+name, "", xs)
			}
		})
	}
	fmt.Fprintf(os.Stdout, "\n| fault | measured from | median s | max s | runs |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintln(os.Stdout, r)
	}
}

// drill is one fault, repeated: run arms the case at 30% and injects the
// fault once per b.Loop iteration, returning the times to safe (and other
// latencies by name).
type drill struct {
	name, from string
	cfg        func(b *testing.B) caseConfig
	run        func(b *testing.B, c *faultCase) ([]time.Duration, map[string][]time.Duration)
}

func plain(*testing.B) caseConfig { return caseConfig{} }

var drills = []drill{
	{name: "rollout deleted (RestoreStable)", from: "delete accepted", cfg: plain, run: func(b *testing.B, c *faultCase) ([]time.Duration, map[string][]time.Duration) {
		c.startFulcrum("fulcrum")
		return loop(b, c, at30(), func() time.Time { return c.deleteRollout() }), nil
	}},
	{name: "candidate pods lost", from: "last pod gone (API)", cfg: plain, run: func(b *testing.B, c *faultCase) ([]time.Duration, map[string][]time.Duration) {
		c.startFulcrum("fulcrum")
		return loop(b, c, at30(), func() time.Time { c.scale("v2", 0); return c.waitNoReadyPods("v2") }), nil
	}},
	{name: "candidate subset removed", from: "DestinationRule updated", cfg: plain, run: func(b *testing.B, c *faultCase) ([]time.Duration, map[string][]time.Duration) {
		c.startFulcrum("fulcrum")
		return loop(b, c, at30(), func() time.Time { c.setSubsets("v1"); return time.Now() }), nil
	}},
	{name: "rollback with a promote pending", from: "controller running again", cfg: plain, run: benchPendingPromote},
	{name: "rollback while Prometheus is down", from: "rollback asked", cfg: ownPrometheus, run: benchPrometheusDown},
	{name: "controller killed during finalizer", from: "new process ready", cfg: plain, run: func(b *testing.B, c *faultCase) ([]time.Duration, map[string][]time.Duration) {
		f := c.startFulcrum("fulcrum")
		n := 0
		return loop(b, c, at30(), func() time.Time {
			c.deleteRollout()
			f.Kill()
			n++
			f = c.startFulcrum(fmt.Sprintf("fulcrum-%d", n))
			return time.Now()
		}), nil
	}},
	{name: "leader killed during rollback", from: "rollback asked", cfg: plain, run: benchLeaderChange},
	{name: "API server restarted, then rollback", from: "API answers again", cfg: plain, run: func(b *testing.B, c *faultCase) ([]time.Duration, map[string][]time.Duration) {
		f := c.startFulcrum("fulcrum")
		return loop(b, c, at30(), func() time.Time {
			if err := env.Kube.RestartAPIServer(c.ctx, apiServerDown); err != nil {
				b.Fatal(err)
			}
			back := time.Now()
			c.rollbackAccepted(f, "after the API server restart")
			return back
		}), nil
	}},
	{name: "etcd paused, rollback during it", from: "etcd resumed", cfg: plain, run: func(b *testing.B, c *faultCase) ([]time.Duration, map[string][]time.Duration) {
		f := c.startFulcrum("fulcrum")
		return loop(b, c, at30(), func() time.Time {
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
		}), nil
	}},
}

// loop arms the case (a rollout at 30%) and injects
// the fault once per iteration, collecting the times to safe.
func loop(b *testing.B, c *faultCase, cfg rig.RolloutConfig, inject func() time.Time) []time.Duration {
	var out []time.Duration
	for b.Loop() {
		c.rearm(cfg)
		visible := inject()
		d, ok := c.timeToSafe("v2", visible, waitLimit())
		if !ok {
			b.Fatalf("requests still going to v2 %s after the fault: %s", d, c.state())
		}
		out = append(out, d)
	}
	return out
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
// promote then rollback asked; measured from the controller running again,
// to the data plane's last request toward v2 and to a VirtualService at
// stable 100%.
func benchPendingPromote(b *testing.B, c *faultCase) ([]time.Duration, map[string][]time.Duration) {
	ctl := c.startFulcrum("controller", func(cfg *rig.FulcrumConfig) { cfg.Admin = false })
	adm := c.startFulcrum("admin", func(cfg *rig.FulcrumConfig) { cfg.Controller = false })
	var toVS []time.Duration
	ds := loop(b, c, at30(), func() time.Time {
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
		thawed := time.Now()
		c.eventuallyEvery(5*time.Millisecond, "VirtualService at stable 100%", func() bool {
			w, err := c.model.Weights(c.ctx)
			return err == nil && sameWeights(w, stableOnly)
		})
		toVS = append(toVS, time.Since(thawed))
		return thawed
	})
	return ds, map[string][]time.Duration{"to-VirtualService": toVS}
}

func ownPrometheus(b *testing.B) caseConfig { return caseConfig{prom: newOwnProm(b)} }

func benchPrometheusDown(b *testing.B, c *faultCase) ([]time.Duration, map[string][]time.Duration) {
	p := c.prom
	f := c.startFulcrum("fulcrum", func(cfg *rig.FulcrumConfig) { cfg.PrometheusURL = p.srv.URL })
	// With metrics (unlike at30), so rounds query the Prometheus that is down.
	cfg := rig.RolloutConfig{Candidate: "v2", Steps: []int32{30, 100}, MinStepDuration: time.Hour}
	return loop(b, c, cfg, func() time.Time {
		p.stop()
		asked := time.Now()
		c.mustAct(f, "rollback", client.ActionRequest{Reason: "Prometheus is down"})
		if err := p.start(c.ctx); err != nil {
			b.Fatal(err)
		}
		return asked
	}), nil
}

// benchLeaderChange: two replicas; the leader stalls, a rollback is asked
// through the other, the leader is killed. A new replica replaces it once
// the survivor holds the Lease, for the next iteration.
func benchLeaderChange(b *testing.B, c *faultCase) ([]time.Duration, map[string][]time.Duration) {
	lease := "fulcrum-" + c.model.NS
	n := 0
	replica := func() *rig.Fulcrum {
		n++
		return c.startFulcrum(fmt.Sprintf("replica-%d", n), func(cfg *rig.FulcrumConfig) { cfg.LeaseID = lease })
	}
	leader := replica()
	c.eventually("a leader", func() bool { return c.leaseHolder(lease) != "" })
	follower := replica()
	return loop(b, c, at30(), func() time.Time {
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
	}), nil
}

// eventuallyEvery is eventually with a finer poll, for latencies.
func (c *faultCase) eventuallyEvery(every time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(waitLimit())
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %s; %s", what, waitLimit(), c.state())
		}
		time.Sleep(every)
	}
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}
