package gates

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func TestHosts(t *testing.T) {
	def := Hosts{}
	custom := Hosts{Allowed: []string{"hooks.example.com", "*.corp.example", "10.0.0.7", "ci.example.com:8443", "*.svc"}, ClusterDomain: "k8s.internal"}
	for _, tc := range []struct {
		h     Hosts
		url   string
		allow bool
	}{
		{def, "http://smoke.ml.svc:8080/check", true},
		{def, "https://smoke.ml.svc.cluster.local/check", true},
		{def, "http://smoke.other.svc/check", false},                     // another team's namespace
		{def, "http://169.254.169.254/latest/meta-data", false},          // cloud metadata
		{def, "https://kubernetes.default.svc/api", false},               // the API server
		{def, "http://a.b.ml.svc/", false},                               // not a Service name
		{def, "http://user:pw@smoke.ml.svc/", false},                     // credentials in the URL
		{def, "http://localhost:8080/", false},                           // the controller's own pod
		{custom, "https://smoke.ml.svc.k8s.internal/", true},             // the cluster's own domain
		{custom, "https://smoke.ml.svc.cluster.local/", false},           // not this cluster's domain
		{custom, "https://hooks.example.com/x", true},                    // exact
		{custom, "https://HOOKS.example.com./x", true},                   // case and a trailing dot
		{custom, "https://a.b.corp.example/", true},                      // wildcard
		{custom, "https://corp.example/", false},                         // a wildcard needs a subdomain
		{custom, "http://10.0.0.7:9000/", true},                          // a listed IP
		{custom, "http://ci.example.com:8443/", true},                    // host:port
		{custom, "http://ci.example.com/", false},                        // another port
		{custom, "http://x.other.svc/", true},                            // *.svc: every namespace
		{Hosts{Allowed: []string{"*"}}, "http://169.254.169.254/", true}, // the admin allowed everything
	} {
		err := tc.h.Check(tc.url, "ml")
		if (err == nil) != tc.allow {
			t.Errorf("Check(%q) with %v = %v, want allowed %v", tc.url, tc.h.Allowed, err, tc.allow)
		}
		if err != nil && !strings.Contains(err.Error(), "--gate-allowed-hosts") && !strings.Contains(err.Error(), "credentials") {
			t.Errorf("refusal %q does not name the flag", err)
		}
	}
	for _, p := range []string{"https://x", "a*.example.com", "*example.com", "x.*.com", ""} {
		if CheckPattern(p) == nil {
			t.Errorf("pattern %q accepted", p)
		}
	}
	for _, p := range []string{"*", "*.svc", "hooks.example.com:8443", "10.0.0.7", "[::1]"} {
		if err := CheckPattern(p); err != nil {
			t.Errorf("pattern %q: %v", p, err)
		}
	}
}

func TestBuildJob(t *testing.T) {
	p := testPayload()
	mr := &v1alpha1.ModelRollout{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "fraud", UID: "uid-1"}}
	g := &v1alpha1.Gate{Name: "load-test", At: v1alpha1.GateEachStep, Timeout: metav1.Duration{Duration: 5 * time.Minute},
		Job: &v1alpha1.JobGate{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "load", Image: "loadgen:1", Env: []corev1.EnvVar{{Name: "FULCRUM_CANDIDATE", Value: "mine"}, {Name: "RATE", Value: "50"}}}},
		}}}}}
	run := &v1alpha1.GateRun{Name: "load-test", ID: "0123456789", Job: "fraud-load-test-0123456789"}
	job := BuildJob(mr, g, run, p)
	if job.Name != run.Job || job.Namespace != "ml" || job.Labels[LabelGate] != "load-test" || job.Labels[LabelGateRun] != "0123456789" ||
		job.Annotations[AnnotationRollout] != "fraud" {
		t.Fatalf("job meta %+v", job.ObjectMeta)
	}
	if o := job.OwnerReferences; len(o) != 1 || o[0].Kind != "ModelRollout" || o[0].UID != "uid-1" || !*o[0].Controller || o[0].BlockOwnerDeletion != nil {
		t.Fatalf("owner %+v", o)
	}
	s := job.Spec
	if *s.BackoffLimit != 0 || *s.TTLSecondsAfterFinished != 86400 || *s.ActiveDeadlineSeconds != 300 || s.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Fatalf("defaults: backoff %d ttl %d deadline %d restart %s", *s.BackoffLimit, *s.TTLSecondsAfterFinished, *s.ActiveDeadlineSeconds, s.Template.Spec.RestartPolicy)
	}
	env := map[string]string{}
	for _, e := range s.Template.Spec.Containers[0].Env {
		if _, dup := env[e.Name]; dup {
			t.Fatalf("variable %s twice", e.Name)
		}
		env[e.Name] = e.Value
	}
	for _, name := range Env {
		if _, ok := env[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	if env["FULCRUM_CANDIDATE"] != "mine" || env["RATE"] != "50" || env["FULCRUM_STEP"] != "2" || env["FULCRUM_STEP_WEIGHT"] != "50" ||
		env["FULCRUM_WEIGHTS"] != "v1=90,v2=10" || env["FULCRUM_HOOK"] != "EachStep" {
		t.Fatalf("env %v", env)
	}
	var back Payload
	if err := json.Unmarshal([]byte(env["FULCRUM_PAYLOAD"]), &back); err != nil || back.ID != p.ID {
		t.Fatalf("FULCRUM_PAYLOAD %q: %v", env["FULCRUM_PAYLOAD"], err)
	}
	// The spec's own settings win, and the gate's spec is not modified.
	g.Job.Spec.BackoffLimit = ptr.To[int32](3)
	if j := BuildJob(mr, g, run, p); *j.Spec.BackoffLimit != 3 || g.Job.Spec.Template.Labels != nil {
		t.Fatalf("backoff %d, gate's template labels %v", *j.Spec.BackoffLimit, g.Job.Spec.Template.Labels)
	}
}

func TestObserveJob(t *testing.T) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j"}}
	if o := Observe(job); o.Done || o.Message != "Job j created, no pod running yet" {
		t.Fatalf("new job %+v", o)
	}
	job.Status.Active = 1
	if o := Observe(job); o.Done || o.Message != "Job j: 1 active, 0 succeeded, 0 failed pod(s)" {
		t.Fatalf("running job %+v", o)
	}
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	if o := Observe(job); !o.Done || !o.Passed {
		t.Fatalf("complete job %+v", o)
	}
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"}}
	if o := Observe(job); !o.Done || o.Passed || o.Message != "Job j failed: BackoffLimitExceeded: Job has reached the specified backoff limit" {
		t.Fatalf("failed job %+v", o)
	}
}
