package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller"
	"github.com/fulcrum-ml/fulcrum/controller/gates"
)

// hookSink is a real HTTP server standing for the hooks of HTTP gates: it
// records every request and answers each path from a script (one answer
// per request, the last repeating).
type hookSink struct {
	*httptest.Server
	mu      sync.Mutex
	posts   map[string][]gates.Payload
	raw     map[string][]string
	auth    map[string][]string
	answers map[string][]hookAnswer
}

type hookAnswer struct {
	status int
	body   string
	delay  time.Duration
}

func newHookSink(t *testing.T, answers map[string][]hookAnswer) *hookSink {
	t.Helper()
	s := &hookSink{posts: map[string][]gates.Payload{}, raw: map[string][]string{}, auth: map[string][]string{}, answers: answers}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p gates.Payload
		_ = json.Unmarshal(body, &p)
		s.mu.Lock()
		s.posts[r.URL.Path] = append(s.posts[r.URL.Path], p)
		s.raw[r.URL.Path] = append(s.raw[r.URL.Path], string(body))
		s.auth[r.URL.Path] = append(s.auth[r.URL.Path], r.Header.Get("Authorization"))
		n := len(s.posts[r.URL.Path])
		script := s.answers[r.URL.Path]
		s.mu.Unlock()
		a := hookAnswer{status: 200}
		if len(script) > 0 {
			a = script[min(n, len(script))-1]
		}
		if a.delay > 0 {
			select {
			case <-time.After(a.delay):
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *hookSink) got(path string) []gates.Payload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.posts[path])
}

func (s *hookSink) authorizations(path string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auth[path])
}

func (s *hookSink) bodies(path string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.raw[path])
}

// startGatedController runs the controller with a gate runner that may
// call the loopback sink (the default allows only the namespace's
// Services).
func startGatedController(f *fixture) {
	f.t.Helper()
	startControllerConfig(f, controller.Config{
		Gates: gates.NewRunner(gates.Config{Hosts: gates.Hosts{Allowed: []string{"127.0.0.1"}}}),
	})
}

func withGates(gs ...v1alpha1.Gate) rolloutOpt {
	return func(mr *v1alpha1.ModelRollout) { mr.Spec.Gates = gs }
}

func httpGateAt(name string, at v1alpha1.GateHook, url string, mutate ...func(*v1alpha1.Gate)) v1alpha1.Gate {
	g := v1alpha1.Gate{Name: name, At: at, HTTP: &v1alpha1.HTTPGate{URL: url, RetryBackoff: metav1Duration(100 * time.Millisecond)}}
	for _, m := range mutate {
		m(&g)
	}
	return g
}

func resultsOf(mr *v1alpha1.ModelRollout) []string {
	var out []string
	if gs := mr.Status.Gates; gs != nil {
		for _, r := range gs.Results {
			out = append(out, r.Name+":"+string(r.Outcome))
		}
	}
	return out
}

func lastHistory(mr *v1alpha1.ModelRollout, typ string) *v1alpha1.HistoryEntry {
	for i := len(mr.Status.History) - 1; i >= 0; i-- {
		if mr.Status.History[i].Type == typ {
			return &mr.Status.History[i]
		}
	}
	return nil
}

// Given HTTP gates at PreStart (its hook answers 500, then 200), at each
// step (a JSON verdict) and after the promotion (a template body), when
// the canary runs, then each step waits for its gate, the retry passes
// the first, every hook got the payload of its point, and history and
// status.gates say what passed.
func TestHTTPGatesOnTheAPIServer(t *testing.T) {
	f := newFixture(t)
	sink := newHookSink(t, map[string][]hookAnswer{
		"/smoke":    {{status: 500, body: "warming up"}, {status: 200}},
		"/eval":     {{status: 200, body: `{"verdict":"pass","accuracy":0.93}`}},
		"/registry": {{status: 204}},
	})
	startGatedController(f)
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smoke-token", Namespace: f.ns}, Data: map[string][]byte{"header": []byte("Bearer s3cret")}})
	verdict := &v1alpha1.HTTPExpect{Verdict: &v1alpha1.JSONVerdict{Field: "verdict"}}
	f.rollout("fraud", minStep(time.Second), withGates(
		httpGateAt("smoke", v1alpha1.GatePreStart, sink.URL+"/smoke", func(g *v1alpha1.Gate) {
			g.HTTP.Headers = []v1alpha1.GateHeader{{Name: "Authorization", ValueFrom: &v1alpha1.SecretKeyRef{Name: "smoke-token", Key: "header"}}}
		}),
		httpGateAt("eval", v1alpha1.GateEachStep, sink.URL+"/eval", func(g *v1alpha1.Gate) { g.HTTP.Expect = verdict }),
		httpGateAt("registry", v1alpha1.GatePostPromote, sink.URL+"/registry", func(g *v1alpha1.Gate) {
			g.HTTP.Method = "PUT"
			g.HTTP.Body = `{"model":"{{.Rollout.Name}}","version":"{{.Stable}}","by":"{{.Actor}}"}`
		}),
	))
	mr := f.waitPhase("fraud", v1alpha1.PhasePromoted)
	f.eventually("the PostPromote hook called and recorded", func() bool {
		mr = f.get("fraud")
		return mr.Status.Gates != nil && len(mr.Status.Gates.Background) == 0 && len(sink.got("/registry")) == 1
	})

	smoke := sink.got("/smoke")
	if len(smoke) != 2 || smoke[0].ID != smoke[1].ID || smoke[0].Attempt != 1 || smoke[1].Attempt != 2 {
		t.Fatalf("/smoke got %+v, want two attempts of one run", smoke)
	}
	if a := sink.authorizations("/smoke"); !slices.Equal(a, []string{"Bearer s3cret", "Bearer s3cret"}) {
		t.Fatalf("/smoke got Authorization %q, want the Secret's value on every attempt", a)
	}
	if p := smoke[0]; p.At != v1alpha1.GatePreStart || p.Rollout.Namespace != f.ns || p.Candidate != "v2" || p.Stable != "v1" ||
		p.Step.Weight != 10 || p.Phase != v1alpha1.PhaseProgressing || p.Kind != gates.PayloadKind {
		t.Fatalf("PreStart payload %+v", p)
	}
	eval := sink.got("/eval")
	var weights []int32
	for _, p := range eval {
		weights = append(weights, p.Step.Weight)
	}
	if !slices.Equal(weights, []int32{10, 30, 60}) {
		t.Fatalf("EachStep hook called for weights %v, want 10, 30, 60 (not the promotion)", weights)
	}
	if b := sink.bodies("/registry"); len(b) != 1 || b[0] != `{"model":"fraud","version":"v2","by":"fulcrum"}` {
		t.Fatalf("PostPromote body %q", b)
	}
	want := []string{"smoke:Passed", "eval:Passed", "eval:Passed", "eval:Passed", "registry:Passed"}
	if got := resultsOf(mr); !slices.Equal(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	if n := strings.Count(strings.Join(historyTypes(mr), ","), v1alpha1.HistoryGatePassed); n != 5 {
		t.Fatalf("history %v: want 5 GatePassed", historyTypes(mr))
	}
	if r := mr.Status.Gates.Results[0]; r.Attempts != 2 {
		t.Fatalf("smoke result %+v, want 2 attempts", r)
	}
}

// Given an EachStep hook whose JSON verdict says fail, the rollout rolls
// back at that step, and the OnRollback hook is told why.
func TestHTTPGateVerdictFailRollsBack(t *testing.T) {
	f := newFixture(t)
	sink := newHookSink(t, map[string][]hookAnswer{
		"/eval": {{status: 200, body: `{"verdict":"pass"}`}, {status: 200, body: `{"verdict":"fail","reason":"accuracy 0.71 < 0.9"}`}},
	})
	startGatedController(f)
	f.rollout("fraud", minStep(time.Second), withGates(
		httpGateAt("eval", v1alpha1.GateEachStep, sink.URL+"/eval", func(g *v1alpha1.Gate) {
			g.HTTP.Expect = &v1alpha1.HTTPExpect{Verdict: &v1alpha1.JSONVerdict{Field: "verdict"}}
		}),
		httpGateAt("page", v1alpha1.GateOnRollback, sink.URL+"/page"),
	))
	mr := f.waitPhase("fraud", v1alpha1.PhaseRolledBack)
	f.waitWeights("fraud", map[string]int32{"v1": 100, "v2": 0})
	rb := lastHistory(mr, v1alpha1.HistoryRolledBack)
	if rb == nil || !strings.Contains(rb.Reason, `gate eval (HTTP at EachStep, step 2) failed: attempt 1 of 3: 200 OK, but verdict is "fail", not "pass"`) {
		t.Fatalf("rollback entry %+v", rb)
	}
	if n := len(sink.got("/eval")); n != 2 {
		t.Fatalf("/eval called %d times: a verdict that says fail is not retried", n)
	}
	f.eventually("the OnRollback hook called", func() bool { return len(sink.got("/page")) == 1 })
	if p := sink.got("/page")[0]; p.At != v1alpha1.GateOnRollback || !strings.Contains(p.Reason, "gate eval") || p.Actor != "fulcrum" || p.Step.Weight != 0 {
		t.Fatalf("OnRollback payload %+v", p)
	}
	f.eventually("GateFailed event", func() bool { return f.eventReasons("fraud")["GateFailed"] >= 1 })
}

// Given a hook that answers later than the gate's timeout, with onFailure
// Hold, the rollout pauses at its weight saying why.
func TestHTTPGateTimeoutHolds(t *testing.T) {
	f := newFixture(t)
	sink := newHookSink(t, map[string][]hookAnswer{"/slow": {{status: 200, delay: time.Minute}}})
	startGatedController(f)
	f.rollout("fraud", minStep(time.Second), withGates(
		httpGateAt("slow", v1alpha1.GateEachStep, sink.URL+"/slow", func(g *v1alpha1.Gate) {
			g.OnFailure = v1alpha1.GateFailHold
			g.Timeout = metav1Duration(2 * time.Second)
			g.HTTP.AttemptTimeout = metav1Duration(10 * time.Second)
			g.HTTP.Retries = ptr.To[int32](1)
		}),
	))
	mr := f.waitPhase("fraud", v1alpha1.PhasePaused)
	if w := f.weights("fraud"); w["v2"] != 0 {
		t.Fatalf("weights %v while the first step's gate timed out", w)
	}
	p := lastHistory(mr, v1alpha1.HistoryPaused)
	if p == nil || !strings.Contains(p.Reason, "gate slow (HTTP at EachStep, step 1) timed out") || !strings.Contains(p.Reason, "resume to run it again") {
		t.Fatalf("paused entry %+v", p)
	}
	if got := resultsOf(mr); !slices.Equal(got, []string{"slow:TimedOut"}) {
		t.Fatalf("results %v", got)
	}
	if n := len(sink.got("/slow")); n != 1 {
		t.Fatalf("/slow called %d times, want 1 (the timeout came before a retry)", n)
	}
}

// Given a rollout held by an approval gate and another by a Job that never
// finishes, a rollback goes through at once; the Job is deleted.
func TestPendingGateNeverBlocksRollback(t *testing.T) {
	f := newFixture(t)
	startGatedController(f)
	f.rollout("fraud", minStep(time.Second), withGates(
		v1alpha1.Gate{Name: "sign-off", At: v1alpha1.GateEachStep, Approval: &v1alpha1.ApprovalGate{}},
	))
	f.eventually("the approval pending", func() bool { return v1alpha1.PendingApproval(&f.get("fraud").Status) == "sign-off" })
	start := time.Now()
	f.intent("fraud", "rb-1", v1alpha1.IntentRollback)
	mr := f.waitPhase("fraud", v1alpha1.PhaseRolledBack)
	t.Logf("rolled back %s after the intent, with an approval pending", time.Since(start).Round(time.Millisecond))
	if r := mr.Status.Gates.Results; len(r) != 1 || r[0].Outcome != v1alpha1.GateCancelled || r[0].Actor != "alice@example.com" {
		t.Fatalf("results %+v", r)
	}

	f.createVS("stuck")
	f.rollout("stuck", minStep(time.Second), withGates(v1alpha1.Gate{Name: "forever", At: v1alpha1.GatePreStart, Job: &v1alpha1.JobGate{
		// No node matches: the pod never runs, the Job never ends.
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"no-such": "node"},
			Containers:   []corev1.Container{{Name: "c", Image: "busybox"}},
		}}},
	}}))
	var job string
	f.eventually("the Job created", func() bool {
		gs := f.get("stuck").Status.Gates
		if gs == nil || gs.Pending == nil {
			return false
		}
		job = gs.Pending.Job
		return f.c.Get(f.ctx(), types.NamespacedName{Namespace: f.ns, Name: job}, &batchv1.Job{}) == nil
	})
	f.intent("stuck", "rb-2", v1alpha1.IntentRollback)
	f.waitPhase("stuck", v1alpha1.PhaseRolledBack)
	f.eventually("the cancelled Job deleted", func() bool {
		j := &batchv1.Job{}
		err := f.c.Get(f.ctx(), types.NamespacedName{Namespace: f.ns, Name: job}, j)
		return apierrors.IsNotFound(err) || (err == nil && j.DeletionTimestamp != nil)
	})
}

// Given Job gates, when kwok runs their pods (its pod/fast stage completes
// a Job's pod, its chaos stage fails a labelled one) and the real Job
// controller judges them, then a Job that completes passes its gate and
// one that fails rolls the rollout back; each Job carries the rollout in
// its FULCRUM_* variables and is owned by it.
func TestJobGatesRunOnTheAPIServer(t *testing.T) {
	f := newFixture(t)
	startGatedController(f)
	job := func(fail bool) *v1alpha1.JobGate {
		spec := batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "check", Image: "eval:1"}},
		}}}
		if fail {
			spec.Template.Labels = map[string]string{"pod-container-running-failed.stage.kwok.x-k8s.io": "true"}
		}
		return &v1alpha1.JobGate{Spec: spec}
	}
	f.rollout("fraud", minStep(time.Second), withGates(v1alpha1.Gate{Name: "offline-eval", At: v1alpha1.GatePreStart, Job: job(false)}))
	mr := f.waitPhase("fraud", v1alpha1.PhasePromoted)
	if got := resultsOf(mr); !slices.Equal(got, []string{"offline-eval:Passed"}) {
		t.Fatalf("results %v", got)
	}
	var jobs batchv1.JobList
	if err := f.c.List(f.ctx(), &jobs); err != nil {
		t.Fatal(err)
	}
	var j *batchv1.Job
	for i := range jobs.Items {
		if jobs.Items[i].Namespace == f.ns && jobs.Items[i].Labels[gates.LabelGate] == "offline-eval" {
			j = &jobs.Items[i]
		}
	}
	if j == nil || len(j.OwnerReferences) != 1 || j.OwnerReferences[0].Name != "fraud" {
		t.Fatalf("the gate's Job %+v", j)
	}
	env := map[string]string{}
	for _, e := range j.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["FULCRUM_ROLLOUT"] != "fraud" || env["FULCRUM_CANDIDATE"] != "v2" || env["FULCRUM_HOOK"] != "PreStart" || env["FULCRUM_STEP_WEIGHT"] != "10" {
		t.Fatalf("the Job's variables %v", env)
	}

	f.createVS("bad")
	f.rollout("bad", minStep(time.Second), withGates(v1alpha1.Gate{Name: "offline-eval", At: v1alpha1.GatePreStart, Job: job(true)}))
	mr = f.waitPhase("bad", v1alpha1.PhaseRolledBack)
	rb := lastHistory(mr, v1alpha1.HistoryRolledBack)
	if rb == nil || !strings.Contains(rb.Reason, "gate offline-eval (job at PreStart) failed: Job bad-offline-eval-") || !strings.Contains(rb.Reason, "BackoffLimitExceeded") {
		t.Fatalf("rollback entry %+v", rb)
	}
	if w := f.weights("bad"); w["v2"] != 0 {
		t.Fatalf("weights %v: no user may reach a candidate whose PreStart gate failed", w)
	}
}
