package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// proc is a running fulcrum binary.
type proc struct {
	cmd         *exec.Cmd
	metricsAddr string
	done        chan struct{}
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startFulcrum runs the binary; it dies with the test (Pdeathsig) and is
// killed at cleanup.
func startFulcrum(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{metricsAddr: freeAddr(t), done: make(chan struct{})}
	all := append([]string{
		"--kubeconfig=" + env.Kubeconfig,
		"--metrics-bind-address=" + p.metricsAddr,
		"--health-probe-bind-address=0",
		"--kube-api-qps=500", "--kube-api-burst=1000",
	}, args...)
	p.cmd = exec.Command(fulcrumBinary(t), all...)
	logf, err := os.Create(filepath.Join(env.Dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(p.kill)
	return p
}

// kill sends SIGKILL: no graceful shutdown, no Lease release.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// metric sums the samples of a Prometheus metric whose line starts with
// prefix (name plus optional labels).
func (p *proc) metric(t testing.TB, prefix string) float64 {
	return p.metricWith(t, prefix, "")
}

// metricWith is metric restricted to lines that also contain sub.
func (p *proc) metricWith(t testing.TB, prefix, sub string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, prefix) && strings.Contains(line, sub) {
			fields := strings.Fields(line)
			v, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
			sum += v
		}
	}
	return sum
}

// peakRSS is the process's high-water resident memory in MiB.
func (p *proc) peakRSS(t testing.TB) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// Given a rollout progressing under the fulcrum binary, when the process is
// killed (SIGKILL) mid-rollout and started again, then it resumes the same
// step: the candidate's weight only ever moves to the next step, and the
// history has no duplicate entries.
func TestRestartMidRollout(t *testing.T) {
	f := newFixture(t)
	stop := recordWeights(f, "fraud", "v2")
	p1 := startFulcrum(t, "restart-1")
	f.rollout("fraud", minStep(2*time.Second), func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Strategy.Canary.Steps = []int32{10, 20, 30, 40, 50, 100}
	})
	f.waitWeights("fraud", map[string]int32{"v1": 80, "v2": 20})
	p1.kill()
	before := f.get("fraud")
	time.Sleep(3 * time.Second) // longer than a step: the restart must not skip ahead
	if w := f.weights("fraud"); w["v2"] != 20 && w["v2"] != 30 {
		t.Fatalf("weights changed with no controller running: %v", w)
	}
	startFulcrum(t, "restart-2")
	mr := f.waitPhase("fraud", v1alpha1.PhasePromoted)
	seen := stop()

	if got, want := fmtInts(seen), "0,10,20,30,40,50,100"; got != want {
		t.Fatalf("candidate weights seen %s, want %s (a jump or a repeat)", got, want)
	}
	if got := strings.Join(historyTypes(mr), ","); got != "Started,StepAdvanced,StepAdvanced,StepAdvanced,StepAdvanced,Promoted" {
		t.Fatalf("history %s", got)
	}
	for i, h := range before.Status.History {
		if !h.Time.Equal(&mr.Status.History[i].Time) || h.Type != mr.Status.History[i].Type {
			t.Fatalf("history entry %d rewritten after restart: %+v vs %+v", i, h, mr.Status.History[i])
		}
	}
}

// Given two fulcrum processes with leader election, when the leader is
// killed, then the other takes the Lease within the lease duration (plus one
// retry period for its next attempt) and reconciles.
func TestLeaderFailover(t *testing.T) {
	f := newFixture(t)
	const lease, renew, retryP = 4 * time.Second, 3 * time.Second, 500 * time.Millisecond
	args := []string{
		"--leader-elect", "--leader-election-namespace=" + f.ns, "--leader-election-id=fulcrum-failover",
		"--lease-duration=" + lease.String(), "--renew-deadline=" + renew.String(), "--retry-period=" + retryP.String(),
	}
	a := startFulcrum(t, "leader-a", args...)
	holder := func() string {
		var l coordinationv1.Lease
		if err := f.c.Get(f.ctx(), types.NamespacedName{Namespace: f.ns, Name: "fulcrum-failover"}, &l); err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	f.eventually("a leader", func() bool { return holder() != "" })
	first := holder()
	startFulcrum(t, "leader-b", args...)
	f.rollout("fraud", minStep(time.Hour))
	f.waitWeights("fraud", map[string]int32{"v1": 90, "v2": 10})
	time.Sleep(2 * retryP)
	if holder() != first {
		t.Fatalf("leadership moved without a failure")
	}
	a.kill()
	killed := time.Now()
	f.eventually("a new leader", func() bool { h := holder(); return h != "" && h != first })
	took := time.Since(killed)
	t.Logf("second process took the Lease %.1fs after the leader was killed (lease %s)", took.Seconds(), lease)
	// client-go's candidates see the Lease expire leaseDuration after they
	// last observed a renewal, and poll every retryPeriod with up to 1.2x
	// jitter: the bound is lease + 2.2 retry periods; one more covers
	// scheduling on a loaded 2-core machine.
	if bound := lease + retryP*32/10; took > bound {
		t.Fatalf("takeover after %s, want within the lease duration %s plus the jittered retry period (%s)", took, lease, bound)
	}
	// The new leader reconciles: a Split is applied.
	f.intent("fraud", "split-after-failover", v1alpha1.IntentSplit, v1alpha1.SubsetWeight{Subset: "v1", Weight: 60}, v1alpha1.SubsetWeight{Subset: "v2", Weight: 40})
	f.waitWeights("fraud", map[string]int32{"v1": 60, "v2": 40})
}
