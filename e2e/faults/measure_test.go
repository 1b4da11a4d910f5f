package faults

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// routeTimes says when the VirtualService first showed some weights (the
// controller's write, read back from the API server) and when the proxy
// first routed by that version of it.
type routeTimes struct{ written, routed time.Time }

// trackRoutes watches the route from now on until it reaches want, and
// returns a function that waits (up to the wait limit) for both times. A
// watch, not polling: the time is when the write reached a watcher, as it
// reaches the proxy. The watch is started again when it breaks (the API
// server restarting).
func (c *faultCase) trackRoutes(want map[string]int32) func() routeTimes {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, waitLimit())
	vss := c.model.Istio.NetworkingV1().VirtualServices(c.model.NS)
	done := make(chan routeTimes, 1)
	go func() {
		defer cancel()
		var rt routeTimes
		rv := ""
		for rv == "" && ctx.Err() == nil {
			vs, err := vss.Get(ctx, c.model.Name, metav1.GetOptions{})
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if sameWeights(rig.RouteWeights(vs), want) {
				rt.written, rv = time.Now(), vs.ResourceVersion
				break
			}
			w, err := vss.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + c.model.Name, ResourceVersion: vs.ResourceVersion})
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				if v, ok := ev.Object.(*istionetv1.VirtualService); ok && sameWeights(rig.RouteWeights(v), want) {
					rt.written, rv = time.Now(), v.ResourceVersion
					break
				}
			}
			w.Stop()
		}
		for rv != "" && ctx.Err() == nil {
			if v, _ := c.model.Proxy.Table().VirtualServiceVersion(c.model.NS, c.model.Name); rvAtLeast(v, rv) {
				rt.routed = time.Now()
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		done <- rt
	}()
	return func() routeTimes {
		c.t.Helper()
		rt := <-done
		if rt.routed.IsZero() {
			c.t.Fatalf("route never reached %v in the API and the proxy (written %v); %s", want, rt.written, c.state())
		}
		return rt
	}
}

// rvAtLeast reports whether resourceVersion v is rv or later. Versions are
// opaque to clients, but etcd-backed ones are increasing integers, which a
// test on this environment may rely on; anything else compares equal only.
func rvAtLeast(v, rv string) bool {
	a, err1 := strconv.ParseUint(v, 10, 64)
	b, err2 := strconv.ParseUint(rv, 10, 64)
	if err1 != nil || err2 != nil {
		return v == rv
	}
	return a >= b
}

// safeWithin waits until the data plane has sent nothing toward subset for
// the quiet time, no longer than bound after visible plus the quiet time,
// and fails the case if a request went toward it later than bound after
// visible. It returns the time from visible to the last such request (zero
// when none came after visible).
func (c *faultCase) safeWithin(subset string, visible time.Time, bound time.Duration) time.Duration {
	c.t.Helper()
	d, ok := c.timeToSafe(subset, visible, bound+quiet)
	if !ok || d > bound {
		late := c.traffic.Between(subset, visible.Add(bound))
		c.t.Fatalf("requests went toward %s %s after the fault was visible (bound %s): %.0f after the bound; %s",
			subset, d.Round(time.Millisecond), bound, late, c.state())
	}
	c.t.Logf("traffic toward %s stopped %s after the fault was visible (bound %s)", subset, d.Round(time.Millisecond), bound)
	return d
}

// timeToSafe waits (up to limit after visible, and at least the quiet time
// after the last request) until nothing went toward subset for the quiet
// time, and returns how long after visible the last request went; ok is
// false when requests were still going at the limit.
func (c *faultCase) timeToSafe(subset string, visible time.Time, limit time.Duration) (time.Duration, bool) {
	for {
		now := c.traffic.Now().At
		last, grew := c.traffic.LastChange(subset, visible)
		if !grew {
			last = visible
		}
		if now.Sub(last) >= quiet {
			return last.Sub(visible), true
		}
		if now.Sub(visible) > limit {
			return now.Sub(visible), false
		}
		select {
		case <-c.ctx.Done():
			return now.Sub(visible), false
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// servedShare measures, with the data plane's counts, the share of the next
// n requests that subset's pods answered, once the proxy routes by the
// current VirtualService, and checks it against weight within 4 binomial
// standard deviations.
func (c *faultCase) servedShare(subset string, weight int32, n float64) {
	c.t.Helper()
	c.waitProxy()
	time.Sleep(inFlight)
	s0 := c.traffic.Now()
	var s1 sampleWindow
	c.eventually(fmt.Sprintf("%.0f requests", n), func() bool {
		s1.share, s1.n = c.traffic.Now().Share(s0, subset)
		return s1.n >= n
	})
	p := float64(weight) / 100
	sd := math.Sqrt(p * (1 - p) / s1.n)
	if math.Abs(s1.share-p) > 4*sd+1e-9 {
		c.t.Fatalf("%s answered %.3f of %.0f requests, want %.2f ± %.3f (%s)", subset, s1.share, s1.n, p, 4*sd, c.traffic.Now())
	}
}

type sampleWindow struct{ share, n float64 }

// inFlight is how long requests routed before a change may still be
// answered: the models answer in 2 ms (p99 10 ms); 200 ms is ample on a
// loaded machine.
const inFlight = 200 * time.Millisecond

// waitNoReadyPods waits until the API server shows no Ready, running pod
// of version and returns when. Start it (podsGone) before the change: it
// watches, so the time is when a watch (the controller's, the proxy's) got
// the news.
func (c *faultCase) waitNoReadyPods(version string) time.Time {
	c.t.Helper()
	return c.podsGone(version)()
}

// podsGone starts watching version's pods and returns a function that waits
// until none is Ready and running, and returns the time the watch saw it.
func (c *faultCase) podsGone(version string) func() time.Time {
	c.t.Helper()
	pods := env.Kube.Client.CoreV1().Pods(c.model.NS)
	sel := metav1.ListOptions{LabelSelector: "version=" + version}
	list, err := pods.List(c.ctx, sel)
	if err != nil {
		c.t.Fatal(err)
	}
	serving := map[string]bool{}
	for _, p := range list.Items {
		serving[p.Name] = p.DeletionTimestamp == nil && podReady(p)
	}
	none := func() bool {
		for _, ok := range serving {
			if ok {
				return false
			}
		}
		return true
	}
	sel.ResourceVersion = list.ResourceVersion
	w, err := pods.Watch(c.ctx, sel)
	if err != nil {
		c.t.Fatal(err)
	}
	at := make(chan time.Time, 1)
	go func() {
		defer w.Stop()
		if none() {
			at <- time.Now()
			return
		}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			serving[p.Name] = ev.Type != watch.Deleted && p.DeletionTimestamp == nil && podReady(*p)
			if none() {
				at <- time.Now()
				return
			}
		}
	}()
	return func() time.Time {
		c.t.Helper()
		select {
		case t := <-at:
			return t
		case <-time.After(waitLimit()):
			c.t.Fatalf("pods of %s still Ready after %s: %s", version, waitLimit(), c.state())
		}
		return time.Time{}
	}
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
