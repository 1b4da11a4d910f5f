package webhook_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fulcrum-ml/fulcrum/webhook"
)

// Routes of VirtualService ml/fraud, whose "predict" route memCluster's
// rollout manages, in YAML flow style.
const (
	predictRoute = `{name: predict, match: [{uri: {prefix: /predict}}], route: [{destination: {host: fraud, subset: v1}, weight: 100}, {destination: {host: fraud, subset: v2}, weight: 0}]}`
	faultyRoute  = `{name: predict, match: [{uri: {prefix: /predict}}], fault: {abort: {httpStatus: 503, percentage: {value: 10}}}, route: [{destination: {host: fraud, subset: v1}, weight: 100}, {destination: {host: fraud, subset: v2}, weight: 0}]}`
	catchAll     = `{name: all, route: [{destination: {host: fraud, subset: v1}}]}`
	betaRoute    = `{name: beta, match: [{uri: {prefix: /predict}, headers: {x-beta: {exact: "1"}}}], route: [{destination: {host: fraud, subset: v2}}]}`
)

func TestGuardSteering(t *testing.T) {
	const (
		faultDenied = `HTTP route "predict" of VirtualService ml/fraud is managed by ModelRollout ml/fraud (Progressing) and this edit changes who gets its traffic or what they get back (fault added): undo that change, put the new behaviour on a separate route with a narrower match in front of it, or delete the rollout first with ` + "`kubectl -n ml delete modelrollout fraud`"
		shadowed    = `HTTP route "predict" of VirtualService ml/fraud is managed by ModelRollout ml/fraud (Progressing) and after this edit route "all" in front of managed route "predict" catches all of its traffic: move route "all" after "predict" or give it a narrower match`
		warned      = " (allowed: the guard is in warn mode; Fulcrum does not undo this change)"
		released    = `this edit removes fault from HTTP route "predict" of VirtualService ml/fraud, managed by ModelRollout ml/fraud (Progressing): admitted, the route sends its traffic to its destinations again`
	)
	tests := []struct {
		name     string
		mode     webhook.GuardMode
		user     string
		op       admissionv1.Operation
		fail     error
		old, new string // spec.http
		allowed  bool
		denial   string   // the whole denial message
		warnings []string // every warning, in order
	}{
		{name: "fault added is denied", old: "[" + predictRoute + "]", new: "[" + faultyRoute + "]", denial: faultDenied},
		{name: "fault added in warn mode is a warning", mode: webhook.GuardWarn, old: "[" + predictRoute + "]", new: "[" + faultyRoute + "]",
			allowed: true, warnings: []string{faultDenied + warned}},
		{name: "catch-all in front is denied", old: "[" + predictRoute + "]", new: "[" + catchAll + ", " + predictRoute + "]", denial: shadowed},
		{name: "catch-all in front in warn mode is a warning", mode: webhook.GuardWarn, old: "[" + predictRoute + "]", new: "[" + catchAll + ", " + predictRoute + "]",
			allowed: true, warnings: []string{shadowed + warned}},
		{name: "route added behind passes", old: "[" + predictRoute + "]", new: "[" + predictRoute + ", " + catchAll + "]", allowed: true},
		{name: "narrower route in front passes", old: "[" + predictRoute + "]", new: "[" + betaRoute + ", " + predictRoute + "]", allowed: true},
		{name: "already shadowed route stays editable", old: "[" + catchAll + ", " + predictRoute + "]",
			new: "[" + strings.Replace(catchAll, "{name: all,", "{name: all, timeout: 3s,", 1) + ", " + predictRoute + "]", allowed: true},
		{name: "route that already had a fault stays editable", old: "[" + faultyRoute + "]",
			new: "[" + strings.Replace(faultyRoute, "{name: predict,", "{name: predict, timeout: 3s,", 1) + "]", allowed: true},
		{name: "fault removed passes with a note", old: "[" + faultyRoute + "]", new: "[" + predictRoute + "]", allowed: true, warnings: []string{released}},
		{name: "Fulcrum itself passes", user: webhook.DefaultFulcrumUser, old: "[" + predictRoute + "]", new: "[" + catchAll + ", " + faultyRoute + "]", allowed: true},
		{name: "create is not guarded", op: admissionv1.Create, new: "[" + catchAll + ", " + faultyRoute + "]", allowed: true},
		{name: "lookup failure fails open", fail: errors.New("etcd down"), old: "[" + predictRoute + "]", new: "[" + faultyRoute + "]",
			allowed: true, warnings: []string{"Fulcrum could not check whether this edit changes weights it manages: etcd down"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := memCluster()
			l.fail = tt.fail
			mode := tt.mode
			if mode == "" {
				mode = webhook.GuardDeny
			}
			user, op := tt.user, tt.op
			if user == "" {
				user = alice
			}
			if op == "" {
				op = admissionv1.Update
			}
			var old runtime.Object // none on CREATE
			if op == admissionv1.Update {
				old = obj(t, vsYAML("ml", "fraud", tt.old))
			}
			vs := obj(t, vsYAML("ml", "fraud", tt.new))
			resp := call(t, newHandler(t, l, mode), webhook.PathVirtualServices, review(t, op, user, vsKind, vs, old))
			if resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v (%+v)", resp.Allowed, tt.allowed, resp.Result)
			}
			if !tt.allowed {
				if resp.Result.Message != tt.denial {
					t.Errorf("denial:\n got %s\nwant %s", resp.Result.Message, tt.denial)
				}
				if resp.Result.Code != http.StatusForbidden || resp.Result.Reason != metav1.StatusReasonForbidden {
					t.Errorf("denial status %+v", resp.Result)
				}
			}
			if strings.Join(resp.Warnings, "\n") != strings.Join(tt.warnings, "\n") {
				t.Errorf("warnings:\n got %q\nwant %q", resp.Warnings, tt.warnings)
			}
		})
	}
}

// TestGuardWeightsAndSteering: an edit of both gets one denial naming both,
// or one warning for each in warn mode.
func TestGuardWeightsAndSteering(t *testing.T) {
	old := obj(t, vsYAML("ml", "fraud", "["+predictRoute+"]"))
	vs := obj(t, vsYAML("ml", "fraud", "["+strings.Replace(faultyRoute, "weight: 100}, {destination: {host: fraud, subset: v2}, weight: 0}", "weight: 50}, {destination: {host: fraud, subset: v2}, weight: 50}", 1)+"]"))
	weights := "the weights of HTTP route \"predict\" of VirtualService ml/fraud are managed by ModelRollout ml/fraud (Progressing): to pin weights run `fulcrumctl -n ml split fraud v1=50 v2=50`"
	steering := `HTTP route "predict" of VirtualService ml/fraud is managed by ModelRollout ml/fraud (Progressing) and this edit changes who gets its traffic or what they get back (fault added)`

	resp := call(t, newHandler(t, memCluster(), webhook.GuardDeny), webhook.PathVirtualServices, review(t, admissionv1.Update, alice, vsKind, vs, old))
	if resp.Allowed || !strings.Contains(resp.Result.Message, weights) || !strings.Contains(resp.Result.Message, "; "+steering) {
		t.Fatalf("deny mode: %+v", resp.Result)
	}
	resp = call(t, newHandler(t, memCluster(), webhook.GuardWarn), webhook.PathVirtualServices, review(t, admissionv1.Update, alice, vsKind, vs, old))
	if !resp.Allowed || len(resp.Warnings) != 2 ||
		!strings.Contains(resp.Warnings[0], weights) || !strings.HasSuffix(resp.Warnings[0], "(allowed: the guard is in warn mode; Fulcrum will put its weights back)") ||
		!strings.HasPrefix(resp.Warnings[1], steering) || !strings.HasSuffix(resp.Warnings[1], "(allowed: the guard is in warn mode; Fulcrum does not undo this change)") {
		t.Fatalf("warn mode: %q", resp.Warnings)
	}
}
