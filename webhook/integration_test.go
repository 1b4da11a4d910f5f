package webhook_test

import (
	"context"

	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	manifests "github.com/fulcrum-ml/fulcrum/manifests/webhook"
	"github.com/fulcrum-ml/fulcrum/webhook"
	"github.com/fulcrum-ml/fulcrum/webhook/certs"
)

var metav1CreateOptions = metav1.CreateOptions{}

// installWebhooks applies the shipped self-managed configurations with each
// clientConfig pointed at a loopback URL (no caBundle: the server writes it).
func installWebhooks(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	objs, err := manifests.Objects(manifests.SelfManaged)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "ValidatingWebhookConfiguration" {
			continue
		}
		var c admissionregistrationv1.ValidatingWebhookConfiguration
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &c); err != nil {
			t.Fatal(err)
		}
		for i := range c.Webhooks {
			cc := &c.Webhooks[i].ClientConfig
			url := fmt.Sprintf("https://%s%s", addr, *cc.Service.Path)
			cc.URL, cc.Service = &url, nil
		}
		_ = env.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, c.Name, metav1.DeleteOptions{})
		if _, err := env.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func grantEdit(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "editor", Namespace: ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"networking.istio.io"}, Resources: []string{"virtualservices", "destinationrules"}, Verbs: []string{"*"}},
			{APIGroups: []string{"fulcrum.dev"}, Resources: []string{"modelrollouts", "metrictemplates", "modelrollouts/status"}, Verbs: []string{"*"}},
		},
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "editor", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "editor"},
		Subjects: []rbacv1.Subject{
			{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "ml-engineers"},
			{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: webhook.DefaultFulcrumUser},
		},
	}
	if _, err := env.Client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestAdmissionThroughTheAPIServer(t *testing.T) {
	if env == nil {
		t.Skip("needs the local environment (not under -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	admin := newClient(t, env.Config)
	aliceCfg, err := env.ConfigForUser(alice)
	if err != nil {
		t.Fatal(err)
	}
	fulcrumCfg, err := env.ConfigForUser(webhook.DefaultFulcrumUser)
	if err != nil {
		t.Fatal(err)
	}
	asAlice, asFulcrum := newClient(t, aliceCfg), newClient(t, fulcrumCfg)

	ns, err := env.CreateNamespace(ctx, "webhook")
	if err != nil {
		t.Fatal(err)
	}
	grantEdit(t, ctx, ns)
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fulcrum-system"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	// Given the objects rollouts refer to, created before the webhooks.
	create(t, admin, gvrVS("v1"), obj(t, vsYAML(ns, "fraud", `[
    {name: predict, timeout: 5s, route: [{destination: {host: fraud, subset: v1}, weight: 100}, {destination: {host: fraud, subset: v2}, weight: 0}]},
    {name: explain, route: [{destination: {host: fraud, subset: v1}}]}]`)))
	create(t, admin, gvrVS("v1"), obj(t, vsYAML(ns, "single", `[{route: [{destination: {host: fraud, subset: v1}}]}]`)))
	create(t, admin, gvrVS("v1"), obj(t, vsYAML(ns, "empty", `[]`)))
	create(t, admin, gvrVS("v1"), obj(t, vsYAML(ns, "redirect", `[{name: old, redirect: {uri: /new}}]`)))
	create(t, admin, gvrDR, objf(t, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: fraud, namespace: %s}
spec:
  host: fraud
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}, {name: v3, labels: {version: v3}}]
`, ns))
	mtYAML := `
apiVersion: fulcrum.dev/v1alpha1
kind: MetricTemplate
metadata: {name: %s, namespace: %s}
spec:
  provider: {type: prometheus}
  query: %s
`
	create(t, admin, gvrMT, objf(t, mtYAML, "latency", ns, `'histogram_quantile(0.99, sum by (le, {{.VersionLabel}}) (rate(istio_request_duration_milliseconds_bucket{destination_version=~"{{.Subsets}}"}[{{.Window}}])))'`))
	create(t, admin, gvrMT, objf(t, mtYAML, "broken", ns, `'sum(rate(x[{{.Window}}]) by'`))

	// And the webhook server, self-signed, behind the shipped configurations.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	installWebhooks(t, ctx, ln.Addr().String())
	srv, err := webhook.NewServer(webhook.Config{
		RESTConfig:         env.Config,
		AllowInlineQueries: true, // the inline query cases below
		SelfSigned: &certs.SelfSignedConfig{
			Namespace: "fulcrum-system", SecretName: "fulcrum-webhook-ca", Hosts: []string{"127.0.0.1"},
			WebhookConfigurations: []string{webhook.ConfigModelRollouts, webhook.ConfigVirtualServices},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stopServer := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(srvCtx, ln) }()
	defer func() { stopServer(); <-served }()

	mrs := admin.Resource(gvrMR).Namespace(ns)
	// The API server picks up new webhook configurations asynchronously.
	waitFor(t, ctx, "the ModelRollout webhook to answer", func() bool {
		_, err := mrs.Create(ctx, obj(t, rolloutYAML(ns, "probe", "destinationRule: nope")), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "DestinationRule "+ns+"/nope does not exist")
	})

	t.Run("good rollouts are admitted, with warnings for risky settings", func(t *testing.T) {
		admin.warns.take()
		create(t, admin, gvrMR, obj(t, rolloutYAML(ns, "good")))
		if w := admin.warns.take(); len(w) != 0 {
			t.Errorf("well-formed rollout got warnings: %q", w)
		}
		create(t, admin, gvrMR, obj(t, rolloutYAML(ns, "risky", "virtualService: {name: single}",
			"strategy: {canary: {steps: [10, 100], minStepDuration: 1m}}",
			"analysis: {interval: 30s, minSamples: 20, failureLimit: 1, metrics: [{name: errors, template: istio-error-rate, sequential: {maxIncrease: 0.01, confidence: 0.9}}]}")))
		assertWarnings(t, admin.warns.take(), []string{
			"spec.strategy.canary.steps[1]: moves the candidate from 10% to 100% in one step (90 points)",
			"spec.analysis.minSamples is 20: verdicts on fewer than 50 requests are mostly noise",
			"spec.analysis.metrics[0] (errors): confidence 0.9 with failureLimit 1 rolls a healthy candidate back on a single false alarm",
		})
	})

	t.Run("bad rollouts are rejected with a message naming the fix", func(t *testing.T) {
		for _, tt := range []struct{ name, spec, want string }{
			{"missing VirtualService", "virtualService: {name: nope, routes: [predict]}", `spec.virtualService.name: Invalid value: "nope": VirtualService ` + ns + `/nope does not exist: create it before the ModelRollout`},
			{"missing route", "virtualService: {name: fraud, routes: [score]}", `spec.virtualService.routes[0]: Invalid value: "score": VirtualService ` + ns + `/fraud has no HTTP route named "score" (it has: "predict", "explain")`},
			{"several routes, none named", "virtualService: {name: fraud}", `spec.virtualService.routes: Required value: VirtualService ` + ns + `/fraud has 2 HTTP routes ("predict", "explain"): name the ones Fulcrum manages`},
			{"no HTTP routes", "virtualService: {name: empty}", "VirtualService " + ns + "/empty has no HTTP routes"},
			{"route without destinations", "virtualService: {name: redirect, routes: [old]}", `HTTP route "old" of VirtualService ` + ns + `/redirect has no route destinations`},
			{"route managed by another rollout", "", `spec.virtualService.routes[0]: Invalid value: "predict": HTTP route "predict" of VirtualService ` + ns + `/fraud is already managed by ModelRollout ` + ns + `/good`},
			{"missing DestinationRule", "destinationRule: gone", `spec.destinationRule: Invalid value: "gone": DestinationRule ` + ns + `/gone does not exist`},
			{"stable subset missing", "stable: v0", `spec.stable: Invalid value: "v0": stable subset "v0" is not defined in DestinationRule ` + ns + `/fraud (it defines: "v1", "v2", "v3")`},
			{"candidate subset missing", "candidate: v9", `spec.candidate: Invalid value: "v9": candidate subset "v9" is not defined`},
			{"split subset missing", "intent: {id: s1, action: Split, weights: [{subset: v1, weight: 50}, {subset: v7, weight: 50}]}", `spec.intent.weights[1].subset: Invalid value: "v7": split subset "v7" is not defined`},
			{"unknown template", "analysis: {metrics: [{name: p99, template: p99, threshold: {max: 1}}]}", `spec.analysis.metrics[0].template: Invalid value: "p99": no MetricTemplate ` + ns + `/p99 and no built-in template of that name`},
			{"template with bad PromQL", "analysis: {metrics: [{name: x, template: broken, threshold: {max: 1}}]}", "MetricTemplate " + ns + "/broken is broken: spec.query: Invalid value"},
			{"judge the template cannot feed", "analysis: {metrics: [{name: x, template: latency, sequential: {maxIncrease: 0.01}}]}", "the sequential judge needs MetricTemplate " + ns + "/latency to set spec.badQuery and spec.sampleQuery"},
			{"inline query not PromQL", `analysis: {metrics: [{name: x, query: 'sum(rate(x[{{.Window}}])', threshold: {max: 1}}]}`, "spec.analysis.metrics[0].query: Invalid value: \"sum(rate(x[{{.Window}}])\": not valid PromQL once rendered (sum(rate(x[300s]))"},
			{"inline query template error", `analysis: {metrics: [{name: x, query: 'x{a="{{.Nope}}"}', threshold: {max: 1}}]}`, "field .Nope is not allowed in a query template"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var spec []string
				if tt.spec != "" {
					spec = []string{tt.spec}
				}
				_, err := mrs.Create(ctx, obj(t, rolloutYAML(ns, "bad", spec...)), metav1.CreateOptions{})
				assertDenied(t, err, `admission webhook "modelrollouts.fulcrum.dev" denied the request`, tt.want)
			})
		}
	})

	t.Run("a broken MetricTemplate is rejected", func(t *testing.T) {
		_, err := admin.Resource(gvrMT).Namespace(ns).Create(ctx, objf(t, mtYAML, "new-broken", ns, `'rate(x[{{.Service}}])'`), metav1.CreateOptions{})
		assertDenied(t, err, `admission webhook "metrictemplates.fulcrum.dev" denied the request`, "spec.query: Invalid value", "not valid PromQL once rendered (rate(x[model]))")
	})

	t.Run("a template's own connection: a Secret reference is admitted, credentials in the address are not", func(t *testing.T) {
		const withProvider = `
apiVersion: fulcrum.dev/v1alpha1
kind: MetricTemplate
metadata: {name: %s, namespace: %s}
spec:
  provider: %s
  query: sum(up)
`
		if _, err := admin.Resource(gvrMT).Namespace(ns).Create(ctx, objf(t, withProvider, "tenant", ns,
			`{type: prometheus, address: "https://mimir.team-a:8080/prometheus", httpClientConfigSecretRef: {name: mimir-auth, key: config.yaml}}`), metav1.CreateOptions{}); err != nil {
			t.Fatalf("template with a Secret reference: %v", err)
		}
		_, err := admin.Resource(gvrMT).Namespace(ns).Create(ctx, objf(t, withProvider, "userinfo", ns,
			`{type: prometheus, address: "https://u:pw@mimir.team-a:8080"}`), metav1.CreateOptions{})
		assertDenied(t, err, `admission webhook "metrictemplates.fulcrum.dev" denied the request`, "spec.provider.address: Invalid value", "httpClientConfigSecretRef")
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("the denial shows the password: %v", err)
		}
	})

	t.Run("stable cannot move during a rollout except by Fulcrum", func(t *testing.T) {
		setPhase(t, ctx, admin, ns, "good", "Progressing")
		_, err := patch(ctx, asAlice.Resource(gvrMR).Namespace(ns), "good", `{"spec":{"stable":"v3"}}`)
		assertDenied(t, err, `spec.stable: Forbidden: cannot change from "v1" to "v3" while the rollout is Progressing: run `+"`fulcrumctl -n "+ns+" promote good`"+` to make the candidate stable, or `+"`fulcrumctl -n "+ns+" rollback good`")
		if _, err := patch(ctx, asFulcrum.Resource(gvrMR).Namespace(ns), "good", `{"spec":{"stable":"v2","candidate":null}}`); err != nil {
			t.Fatalf("Fulcrum's promotion must be admitted: %v", err)
		}
		// Restore the rollout's shape for the guard tests.
		if _, err := patch(ctx, asFulcrum.Resource(gvrMR).Namespace(ns), "good", `{"spec":{"stable":"v1","candidate":"v2"}}`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("spec.intent.actor names the requesting user, except when Fulcrum writes for one", func(t *testing.T) {
		good := asAlice.Resource(gvrMR).Namespace(ns)
		_, err := patch(ctx, good, "good", `{"spec":{"intent":{"id":"p1","action":"Pause","actor":"bob","reason":"bob said so"}}}`)
		assertDenied(t, err, `spec.intent.actor: Forbidden: is "bob", but the API server authenticated this request as "alice": set spec.intent.actor to "alice"`)
		if _, err := patch(ctx, good, "good", `{"spec":{"intent":{"id":"p1","action":"Pause","actor":"alice"}}}`); err != nil {
			t.Fatalf("alice naming herself: %v", err)
		}
		_, err = patch(ctx, good, "good", `{"spec":{"intent":{"id":"r1","action":"Rollback","actor":"alice","supersedes":{"id":"p0","action":"Start","actor":"carol"}}}}`)
		assertDenied(t, err, `spec.intent.supersedes: Forbidden: names intent "p0" (Start by "carol"), which is not the intent this edit replaces`)
		// The admin API writes as Fulcrum's service account, for the user
		// it authenticated.
		if _, err := patch(ctx, asFulcrum.Resource(gvrMR).Namespace(ns), "good", `{"spec":{"intent":{"id":"p2","action":"Pause","actor":"carol"}}}`); err != nil {
			t.Fatalf("Fulcrum writing carol's intent: %v", err)
		}
		// Carol's intent stays while alice edits another field.
		if _, err := patch(ctx, good, "good", `{"spec":{"onDelete":"Keep"}}`); err != nil {
			t.Fatalf("alice editing onDelete under carol's intent: %v", err)
		}
	})

	t.Run("a forged review cannot make the webhook read another namespace", func(t *testing.T) {
		victim, err := env.CreateNamespace(ctx, "victim")
		if err != nil {
			t.Fatal(err)
		}
		create(t, admin, gvrVS("v1"), obj(t, vsYAML(victim, "fraud", `[{name: predict, route: [{destination: {host: fraud, subset: v1}}]}]`)))
		create(t, admin, gvrDR, objf(t, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: fraud, namespace: %s}
spec:
  host: secret-host
  subsets: [{name: v1}, {name: hidden-v7}]
`, victim))
		// A review any pod could send straight to the webhook port: the
		// request is about the caller's namespace, the object names the
		// victim's.
		forged := obj(t, rolloutYAML(victim, "probe", "candidate: v9", "analysis: "))
		body, err := forged.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range []string{"CREATE", "UPDATE"} {
			review := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"fulcrum.dev","version":"v1alpha1","kind":"ModelRollout"},"namespace":%q,"name":"probe","operation":%q,"userInfo":{"username":"mallory"},"object":%s,"oldObject":%s}}`,
				ns, op, body, body)
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", webhook.PathModelRollouts, strings.NewReader(review))
			req.Header.Set("Content-Type", "application/json")
			srv.Handler().ServeHTTP(rec, req)
			answer := rec.Body.String()
			if !strings.Contains(answer, `"allowed":false`) {
				t.Errorf("%s: forged review admitted: %s", op, answer)
			}
			for _, secret := range []string{victim, "hidden-v7", "secret-host"} {
				if strings.Contains(answer, secret) {
					t.Errorf("%s: the answer describes the other namespace (%q): %s", op, secret, answer)
				}
			}
		}
	})

	vsFor := func(c *client, version string) func(string) (*unstructured.Unstructured, error) {
		return func(p string) (*unstructured.Unstructured, error) {
			return patch(ctx, c.Resource(gvrVS(version)).Namespace(ns), "fraud", p)
		}
	}
	// JSON patches on the predict route (index 0).
	const (
		weights50 = `[{"op":"replace","path":"/spec/http/0/route/0/weight","value":50},{"op":"replace","path":"/spec/http/0/route/1/weight","value":50}]`
		timeout   = `[{"op":"replace","path":"/spec/http/0/timeout","value":"9s"}]`
		explain   = `[{"op":"add","path":"/spec/http/1/timeout","value":"3s"}]`
	)

	t.Run("the guard denies an ordinary user's weight edit, in every API version", func(t *testing.T) {
		for _, version := range []string{"v1", "v1beta1", "v1alpha3"} {
			_, err := vsFor(asAlice, version)(weights50)
			assertDenied(t, err, `admission webhook "virtualservices.guard.fulcrum.dev" denied the request`,
				`the weights of HTTP route "predict" of VirtualService `+ns+`/fraud are managed by ModelRollout `+ns+`/good (Progressing): to pin weights run `+"`fulcrumctl -n "+ns+" split good v1=50 v2=50`",
				"to end the rollout `fulcrumctl -n "+ns+" rollback good`")
		}
	})

	t.Run("the guard allows other edits of the same VirtualService", func(t *testing.T) {
		for _, p := range []string{timeout, explain} {
			if _, err := vsFor(asAlice, "v1")(p); err != nil {
				t.Errorf("edit %s: %v", p, err)
			}
		}
	})

	t.Run("the guard allows Fulcrum's service account to write weights", func(t *testing.T) {
		got, err := vsFor(asFulcrum, "v1")(weights50)
		if err != nil {
			t.Fatalf("Fulcrum's weight write denied: %v", err)
		}
		routes, _, _ := unstructured.NestedSlice(got.Object, "spec", "http")
		if w := routes[0].(map[string]any)["route"].([]any)[1].(map[string]any)["weight"]; fmt.Sprint(w) != "50" {
			t.Errorf("weight after Fulcrum's write = %v", w)
		}
	})

	t.Run("with the webhook down, VirtualService writes succeed and rollouts are refused", func(t *testing.T) {
		stopServer()
		if err := <-served; err != nil {
			t.Fatalf("server stopped with %v", err)
		}
		served <- nil // for the deferred stop
		if _, err := vsFor(asAlice, "v1")(`[{"op":"replace","path":"/spec/http/0/timeout","value":"11s"}]`); err != nil {
			t.Errorf("unrelated VirtualService edit must pass while the guard is down (failurePolicy Ignore): %v", err)
		}
		if _, err := vsFor(asAlice, "v1")(`[{"op":"replace","path":"/spec/http/0/route/0/weight","value":70},{"op":"replace","path":"/spec/http/0/route/1/weight","value":30}]`); err != nil {
			t.Errorf("with the guard down, even weight edits pass (the controller puts them back): %v", err)
		}
		_, err := mrs.Create(ctx, obj(t, rolloutYAML(ns, "while-down", "virtualService: {name: single}")), metav1.CreateOptions{})
		assertDenied(t, err, `failed calling webhook "modelrollouts.fulcrum.dev"`)
	})
}

func assertDenied(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("admitted; want a denial containing %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("denial lacks %q:\n%v", w, err)
		}
	}
}

func assertWarnings(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d warnings, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("warning %d = %q, want it to contain %q", i, got[i], want[i])
		}
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func setPhase(t *testing.T, ctx context.Context, c *client, ns, name, phase string) {
	t.Helper()
	u, err := c.Resource(gvrMR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(u.Object, phase, "status", "phase"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resource(gvrMR).Namespace(ns).UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
