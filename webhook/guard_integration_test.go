package webhook_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fulcrum-ml/fulcrum/webhook"
	"github.com/fulcrum-ml/fulcrum/webhook/certs"
)

// serveWebhooks starts a self-signed webhook server with the guard in mode,
// behind freshly installed configurations, and returns a function that stops
// it (also run at cleanup).
func serveWebhooks(t *testing.T, ctx context.Context, mode webhook.GuardMode) (stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	installWebhooks(t, ctx, ln.Addr().String())
	srv, err := webhook.NewServer(webhook.Config{
		RESTConfig: env.Config,
		GuardMode:  mode,
		SelfSigned: &certs.SelfSignedConfig{
			Namespace: "fulcrum-system", SecretName: "fulcrum-webhook-ca", Hosts: []string{"127.0.0.1"},
			WebhookConfigurations: []string{webhook.ConfigModelRollouts, webhook.ConfigVirtualServices},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(srvCtx, ln) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("webhook server stopped with %v", err)
		}
	})
	t.Cleanup(stop)
	return stop
}

func TestGuardSteeringThroughTheAPIServer(t *testing.T) {
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
	ns, err := env.CreateNamespace(ctx, "guard")
	if err != nil {
		t.Fatal(err)
	}
	grantEdit(t, ctx, ns)
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fulcrum-system"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	// Leave no configuration behind that points at a stopped server: the
	// ModelRollout and MetricTemplate webhooks fail closed.
	t.Cleanup(func() {
		for _, name := range []string{webhook.ConfigModelRollouts, webhook.ConfigVirtualServices} {
			if err := env.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
		}
	})

	// Given a VirtualService whose route "predict" a Progressing ModelRollout
	// manages, behind the guard in deny mode.
	create(t, admin, gvrVS("v1"), obj(t, vsYAML(ns, "fraud", "["+predictRoute+"]")))
	create(t, admin, gvrDR, objf(t, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: fraud, namespace: %s}
spec:
  host: fraud
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`, ns))
	stop := serveWebhooks(t, ctx, webhook.GuardDeny)
	mrs := admin.Resource(gvrMR).Namespace(ns)
	waitFor(t, ctx, "the ModelRollout webhook to answer", func() bool {
		_, err := mrs.Create(ctx, obj(t, rolloutYAML(ns, "probe", "destinationRule: nope")), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "DestinationRule "+ns+"/nope does not exist")
	})
	create(t, admin, gvrMR, obj(t, rolloutYAML(ns, "fraud",
		"analysis: {interval: 30s, minSamples: 200, failureLimit: 2, metrics: [{name: error-rate, template: istio-error-rate, sequential: {maxIncrease: 0.005, confidence: 0.99}}]}")))
	setPhase(t, ctx, admin, ns, "fraud", "Progressing")

	edit := func(c *client, p string, opts ...string) error {
		_, err := c.Resource(gvrVS("v1")).Namespace(ns).Patch(ctx, "fraud", types.JSONPatchType, []byte(p), metav1.PatchOptions{DryRun: opts})
		return err
	}
	const (
		addFault    = `[{"op":"add","path":"/spec/http/0/fault","value":{"abort":{"httpStatus":503,"percentage":{"value":10}}}}]`
		addCatchAll = `[{"op":"add","path":"/spec/http/0","value":{"name":"all","route":[{"destination":{"host":"fraud","subset":"v1"}}]}}]`
		denied      = `admission webhook "virtualservices.guard.fulcrum.dev" denied the request`
	)
	waitFor(t, ctx, "the guard to answer", func() bool {
		err := edit(asAlice, addFault, metav1.DryRunAll)
		return err != nil && strings.Contains(err.Error(), denied)
	})
	route := `HTTP route "predict" of VirtualService ` + ns + `/fraud is managed by ModelRollout ` + ns + `/fraud (Progressing)`

	t.Run("a fault added to the managed route is denied", func(t *testing.T) {
		err := edit(asAlice, addFault)
		assertDenied(t, err, denied, route+" and this edit changes who gets its traffic or what they get back (fault added)",
			"put the new behaviour on a separate route with a narrower match in front of it, or delete the rollout first with `kubectl -n "+ns+" delete modelrollout fraud`")
	})

	t.Run("a catch-all route inserted in front of the managed route is denied", func(t *testing.T) {
		err := edit(asAlice, addCatchAll)
		assertDenied(t, err, denied, route+` and after this edit route "all" in front of managed route "predict" catches all of its traffic: move route "all" after "predict" or give it a narrower match`)
	})

	t.Run("an unrelated route behind, or a narrower one in front, is allowed", func(t *testing.T) {
		asAlice.warns.take()
		for _, p := range []string{
			`[{"op":"add","path":"/spec/http/-","value":{"name":"explain","route":[{"destination":{"host":"fraud","subset":"v1"}}]}}]`,
			`[{"op":"add","path":"/spec/http/0","value":{"name":"beta","match":[{"uri":{"prefix":"/predict"},"headers":{"x-beta":{"exact":"1"}}}],"route":[{"destination":{"host":"fraud","subset":"v2"}}]}}]`,
		} {
			if err := edit(asAlice, p); err != nil {
				t.Errorf("edit %s: %v", p, err)
			}
		}
		if w := asAlice.warns.take(); len(w) != 0 {
			t.Errorf("warnings: %q", w)
		}
	})

	// spec.http is now [beta, predict, explain].
	t.Run("Fulcrum's service account is allowed; a field already there stays editable, and can be removed", func(t *testing.T) {
		if err := edit(asFulcrum, strings.Replace(addFault, "/http/0/", "/http/1/", 1)); err != nil {
			t.Fatalf("Fulcrum's edit denied: %v", err)
		}
		asAlice.warns.take()
		if err := edit(asAlice, `[{"op":"add","path":"/spec/http/1/timeout","value":"3s"}]`); err != nil {
			t.Errorf("timeout of a route that already has a fault: %v", err)
		}
		if w := asAlice.warns.take(); len(w) != 0 {
			t.Errorf("warnings: %q", w)
		}
		if err := edit(asAlice, `[{"op":"remove","path":"/spec/http/1/fault"}]`); err != nil {
			t.Errorf("removing the fault: %v", err)
		}
		assertWarnings(t, asAlice.warns.take(), []string{`this edit removes fault from HTTP route "predict" of VirtualService ` + ns + `/fraud, managed by ModelRollout ` + ns + `/fraud (Progressing): admitted, the route sends its traffic to its destinations again`})
	})

	stop()
	serveWebhooks(t, ctx, webhook.GuardWarn)
	waitFor(t, ctx, "the guard to answer in warn mode", func() bool {
		asAlice.warns.take()
		err := edit(asAlice, strings.Replace(addFault, "/http/0/", "/http/1/", 1), metav1.DryRunAll)
		return err == nil && strings.Contains(strings.Join(asAlice.warns.take(), "\n"), "warn mode")
	})

	t.Run("warn mode admits with a warning", func(t *testing.T) {
		if err := edit(asAlice, addCatchAll); err != nil {
			t.Fatalf("warn mode denied: %v", err)
		}
		assertWarnings(t, asAlice.warns.take(), []string{route + ` and after this edit route "all" in front of managed route "predict" catches all of its traffic: move route "all" after "predict" or give it a narrower match (allowed: the guard is in warn mode; Fulcrum does not undo this change)`})
		// The route is shadowed now: other edits pass without a word.
		if err := edit(asAlice, `[{"op":"add","path":"/spec/http/0/timeout","value":"3s"}]`); err != nil {
			t.Fatal(err)
		}
		if w := asAlice.warns.take(); len(w) != 0 {
			t.Errorf("warnings on an unrelated edit: %q", w)
		}
	})
}
