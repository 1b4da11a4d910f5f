package v1alpha1_test

import (
	"context"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// gatedRollout has one gate of each kind at each hook that takes it.
func gatedRollout(ns, name string) *v1alpha1.ModelRollout {
	mr := minimalRollout(ns, name)
	mr.Spec.Candidate = "v2"
	mr.Spec.Strategy.Canary = &v1alpha1.CanaryStrategy{Steps: []int32{10, 50, 100}}
	mr.Spec.Gates = []v1alpha1.Gate{
		{Name: "smoke", At: v1alpha1.GatePreStart, HTTP: &v1alpha1.HTTPGate{
			URL: "http://smoke.ml.svc:8080/check", Method: "POST", Retries: ptr.To[int32](3),
			RetryBackoff: metav1.Duration{Duration: 500 * time.Millisecond}, AttemptTimeout: metav1.Duration{Duration: 5 * time.Second},
			Headers: []v1alpha1.GateHeader{
				{Name: "X-Team", Value: ptr.To("fraud")},
				{Name: "Authorization", ValueFrom: &v1alpha1.SecretKeyRef{Name: "smoke-token", Key: "header"}},
			},
			Expect: &v1alpha1.HTTPExpect{Status: []int32{200, 202}, Verdict: &v1alpha1.JSONVerdict{Field: "result.verdict", Pass: []string{"pass", "ok"}}},
		}, OnFailure: v1alpha1.GateFailHold, Timeout: metav1.Duration{Duration: time.Minute}},
		{Name: "load-test", At: v1alpha1.GateEachStep, Job: &v1alpha1.JobGate{Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "load", Image: "loadgen:1"}}}},
		}}},
		{Name: "sign-off", At: v1alpha1.GatePrePromote, Approval: &v1alpha1.ApprovalGate{Instructions: "check the offline evaluation"}},
		{Name: "registry", At: v1alpha1.GatePostPromote, HTTP: &v1alpha1.HTTPGate{URL: "https://registry.example.com/promoted"}},
		{Name: "page", At: v1alpha1.GateOnRollback, HTTP: &v1alpha1.HTTPGate{URL: "http://pager.ops.svc/rollback", Body: `{"rollout":"{{.Rollout.Name}}"}`}},
	}
	return mr
}

func TestGatesAreAdmitted(t *testing.T) {
	c, ns := setup(t)
	ctx := context.Background()
	mr := gatedRollout(ns, "gated")
	if err := c.Create(ctx, mr); err != nil {
		t.Fatalf("create: %v", err)
	}
	got := &v1alpha1.ModelRollout{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(mr), got); err != nil {
		t.Fatal(err)
	}
	if n := len(got.Spec.Gates); n != 5 {
		t.Fatalf("read back %d gates, want 5", n)
	}
	// The Job spec is kept as written (no schema of its own in the CRD).
	if cs := got.Spec.Gates[1].Job.Spec.Template.Spec.Containers; len(cs) != 1 || cs[0].Image != "loadgen:1" {
		t.Fatalf("job spec read back as %+v", got.Spec.Gates[1].Job.Spec)
	}
	if v := got.Spec.Gates[0].HTTP.Expect.Verdict; v == nil || v.Field != "result.verdict" {
		t.Fatalf("verdict read back as %+v", v)
	}

	// An Approve intent names its gate; the status records gates.
	got.Spec.Intent = &v1alpha1.Intent{ID: "approve-1", Action: v1alpha1.IntentApprove, Gate: "sign-off", Actor: "alice", Reason: "eval looks good"}
	if err := c.Update(ctx, got); err != nil {
		t.Fatalf("approve intent refused: %v", err)
	}
	step := int32(1)
	got.Status.Gates = &v1alpha1.GatesStatus{
		Cleared: &v1alpha1.GatePoint{At: v1alpha1.GateEachStep, Step: &step},
		Pending: &v1alpha1.GateRun{Name: "sign-off", At: v1alpha1.GatePrePromote, Step: &step, Weight: 100, Type: v1alpha1.GateTypeApproval,
			ID: "abc123", State: v1alpha1.GateWaitingForApproval, StartedAt: metav1.Now(), Message: "waits for approval"},
		Results: []v1alpha1.GateResult{{Name: "smoke", At: v1alpha1.GatePreStart, Type: v1alpha1.GateTypeHTTP, ID: "x1", Outcome: v1alpha1.GatePassed,
			StartedAt: metav1.Now(), FinishedAt: metav1.Now(), Attempts: 2, Message: "200 OK"}},
	}
	if err := c.Status().Update(ctx, got); err != nil {
		t.Fatalf("status with gates refused: %v", err)
	}
}

func TestInvalidGatesAreRejected(t *testing.T) {
	c, ns := setup(t)
	http := func() *v1alpha1.HTTPGate { return &v1alpha1.HTTPGate{URL: "http://smoke.ml.svc/check"} }
	tests := map[string]struct {
		gate   v1alpha1.Gate
		mutate func(*v1alpha1.ModelRollout)
		want   rejection
	}{
		"no kind": {
			gate: v1alpha1.Gate{Name: "g", At: v1alpha1.GatePreStart},
			want: rejection{"spec.gates[0]", "set exactly one of http, job and approval"},
		},
		"two kinds": {
			gate: v1alpha1.Gate{Name: "g", At: v1alpha1.GatePreStart, HTTP: http(), Approval: &v1alpha1.ApprovalGate{}},
			want: rejection{"spec.gates[0]", "set exactly one of http, job and approval"},
		},
		"approval after promotion": {
			gate: v1alpha1.Gate{Name: "g", At: v1alpha1.GatePostPromote, Approval: &v1alpha1.ApprovalGate{}},
			want: rejection{"spec.gates[0].approval", "runs only at PreStart, EachStep or PrePromote"},
		},
		"onFailure on rollback": {
			gate: v1alpha1.Gate{Name: "g", At: v1alpha1.GateOnRollback, HTTP: http(), OnFailure: v1alpha1.GateFailHold},
			want: rejection{"spec.gates[0].onFailure", "never hold or roll back anything"},
		},
		"unknown hook": {
			gate: v1alpha1.Gate{Name: "g", At: "Sometime", HTTP: http()},
			want: rejection{"spec.gates[0].at", "Unsupported value"},
		},
		"name not a label": {
			gate: v1alpha1.Gate{Name: "Load_Test", At: v1alpha1.GatePreStart, HTTP: http()},
			want: rejection{"spec.gates[0].name", "must be a DNS-1123 label"},
		},
		"url not http": {
			gate: v1alpha1.Gate{Name: "g", At: v1alpha1.GatePreStart, HTTP: &v1alpha1.HTTPGate{URL: "ftp://smoke/check"}},
			want: rejection{"spec.gates[0].http.url", "must be an http or https URL"},
		},
		"header with value and valueFrom": {
			gate: v1alpha1.Gate{Name: "g", At: v1alpha1.GatePreStart, HTTP: &v1alpha1.HTTPGate{URL: "http://smoke.ml.svc/", Headers: []v1alpha1.GateHeader{
				{Name: "Authorization", Value: ptr.To("x"), ValueFrom: &v1alpha1.SecretKeyRef{Name: "s", Key: "k"}}}}},
			want: rejection{"spec.gates[0].http.headers[0]", "set value or valueFrom, exactly one"},
		},
		"too many retries": {
			gate: v1alpha1.Gate{Name: "g", At: v1alpha1.GatePreStart, HTTP: &v1alpha1.HTTPGate{URL: "http://smoke.ml.svc/", Retries: ptr.To[int32](50)}},
			want: rejection{"spec.gates[0].http.retries", "less than or equal to 10"},
		},
		"timeout too long": {
			gate: v1alpha1.Gate{Name: "g", At: v1alpha1.GatePreStart, HTTP: http(), Timeout: metav1.Duration{Duration: 200 * time.Hour}},
			want: rejection{"spec.gates[0].timeout", "must be between 1s and 168h"},
		},
		"verdict field path": {
			gate: v1alpha1.Gate{Name: "g", At: v1alpha1.GatePreStart, HTTP: &v1alpha1.HTTPGate{URL: "http://smoke.ml.svc/",
				Expect: &v1alpha1.HTTPExpect{Verdict: &v1alpha1.JSONVerdict{Field: "$.verdict"}}}},
			want: rejection{"spec.gates[0].http.expect.verdict.field", "should match"},
		},
		"gates with an experiment": {
			gate: v1alpha1.Gate{Name: "g", At: v1alpha1.GatePreStart, HTTP: http()},
			mutate: func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Strategy = v1alpha1.Strategy{Experiment: &v1alpha1.ExperimentStrategy{
					Arms: []v1alpha1.ExperimentArm{{Subset: "v1", Weight: 50}, {Subset: "v2", Weight: 50}}}}
			},
			want: rejection{"spec.gates", "an experiment has neither"},
		},
		"gate on a non-approve intent": {
			gate: v1alpha1.Gate{Name: "g", At: v1alpha1.GatePreStart, HTTP: http()},
			mutate: func(mr *v1alpha1.ModelRollout) {
				mr.Spec.Intent = &v1alpha1.Intent{ID: "p", Action: v1alpha1.IntentPause, Gate: "g"}
			},
			want: rejection{"spec.intent.gate", "other actions take none"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mr := minimalRollout(ns, "bad-gate")
			mr.Spec.Gates = []v1alpha1.Gate{tc.gate}
			if tc.mutate != nil {
				tc.mutate(mr)
			}
			assertRejected(t, create(context.Background(), c, mr), tc.want)
		})
	}
}
