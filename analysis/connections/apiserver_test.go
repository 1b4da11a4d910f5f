package connections

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
	"github.com/fulcrum-ml/fulcrum/e2e/promserver/promauth"
)

var env *localenv.Env

// fulcrumUser stands for Fulcrum's service account: it gets the shipped
// ClusterRole and nothing else.
const fulcrumUser = "system:serviceaccount:fulcrum-system:fulcrum"

func TestMain(m *testing.M) {
	opts := localenv.APIServerOnly()
	opts.Users = []localenv.User{{Name: fulcrumUser, Groups: []string{"system:serviceaccounts"}}}
	os.Exit(localenv.Main(m, opts, &env))
}

// TestTemplateSecretOnAPIServer: a template's Secret, read by Fulcrum's
// own identity with the install manifests' RBAC (get, no list or watch),
// connects to a real Prometheus behind basic auth and TLS; an edit of the
// Secret takes effect, and a deleted one is an explained error.
func TestTemplateSecretOnAPIServer(t *testing.T) {
	if env == nil {
		t.Skip("needs the local Kubernetes environment (not under -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	namespace, err := env.CreateNamespace(ctx, "connections")
	if err != nil {
		t.Fatal(err)
	}
	// Given Fulcrum's identity bound to the shipped ClusterRole,
	bindShippedRole(ctx, t)
	reader := clientFor(t, fulcrumUser)
	if err := reader.List(ctx, &corev1.SecretList{}, client.InNamespace(namespace)); !apierrors.IsForbidden(err) {
		t.Fatalf("Fulcrum may list Secrets (%v): the shipped RBAC should grant get only", err)
	}

	// a Prometheus behind basic auth and TLS,
	pki, err := promauth.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ready, err := config.NewClientFromConfig(config.HTTPClientConfig{
		BasicAuth: &config.BasicAuth{Username: promauth.User, Password: promauth.Password},
		TLSConfig: config.TLSConfig{CAFile: pki.CAFile},
	}, "ready")
	if err != nil {
		t.Fatal(err)
	}
	web := promauth.Web{BasicAuth: true, TLS: pki}
	prom, err := promserver.Start(ctx, promserver.Config{WebConfig: web.Config(), HTTPS: true, Client: ready})
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()

	// and a Secret in the template's namespace with the password and CA inline,
	settings := func(password string) map[string][]byte {
		return map[string][]byte{"config.yaml": fmt.Appendf(nil, "basic_auth:\n  username: %s\n  password: %q\ntls_config:\n  ca: %q\n", promauth.User, password, pki.CAPEM)}
	}
	secrets := env.Client.CoreV1().Secrets(namespace)
	if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "prom-auth"}, Data: settings(promauth.Password)}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now())
	// The controller's own connection is elsewhere and has credentials of
	// its own, which must not be what gets this template in.
	global := config.DefaultHTTPClientConfig
	global.Authorization = &config.Authorization{Type: "Bearer", Credentials: "controller-token"}
	pool, err := New(Config{Global: provider.PrometheusConfig{Address: "http://127.0.0.1:9", HTTP: global, Timeout: 5 * time.Second}, Secrets: reader, Clock: clk,
		AllowedAddresses: []string{prom.URL}})
	if err != nil {
		t.Fatal(err)
	}
	tpl := Template{Namespace: namespace, Provider: &v1alpha1.Provider{Address: prom.URL,
		HTTPClientConfigSecretRef: &v1alpha1.SecretKeyRef{Name: "prom-auth", Key: "config.yaml"}}}

	// When a round asks for the template's connection, its query answers.
	p, err := pool.For(ctx, tpl)
	if err != nil {
		t.Fatal(err)
	}
	if err := query(t, p); err != nil {
		t.Fatalf("query with the Secret's settings: %v", err)
	}

	// When the Secret is edited to a wrong password, the next read after
	// the TTL builds a new client, and Prometheus refuses it.
	if _, err := secrets.Update(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "prom-auth"}, Data: settings("wrong")}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Step(DefaultSecretTTL + time.Second)
	p, err = pool.For(ctx, tpl)
	if err != nil {
		t.Fatal(err)
	}
	if err := query(t, p); !errors.Is(err, provider.ErrUnreachable) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("query after the password changed: %v; want a 401", err)
	}

	// When the Secret is deleted, the template's rounds get an error that
	// names it and says what to do.
	if err := secrets.Delete(ctx, "prom-auth", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Step(DefaultSecretTTL + time.Second)
	if _, err := pool.For(ctx, tpl); err == nil || !strings.Contains(err.Error(), "Secret "+namespace+"/prom-auth") || !strings.Contains(err.Error(), "create it") {
		t.Fatalf("deleted Secret: %v", err)
	}
}

// bindShippedRole creates manifests/install's ClusterRole fulcrum-controller
// and binds fulcrumUser to it.
func bindShippedRole(ctx context.Context, t *testing.T) {
	t.Helper()
	root, err := localenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "manifests", "install", "rbac-controller.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var kind metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &kind); err != nil {
			t.Fatal(err)
		}
		if kind.Kind == "ClusterRole" {
			if err := yaml.UnmarshalStrict([]byte(doc), &role); err != nil {
				t.Fatal(err)
			}
		}
	}
	if role.Name == "" {
		t.Fatal("no ClusterRole in manifests/install/rbac-controller.yaml")
	}
	rbac := env.Client.RbacV1()
	if _, err := rbac.ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fulcrumUser}},
	}
	if _, err := rbac.ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// clientFor is a controller-runtime client that reads straight from the
// API server as user, as mgr.GetAPIReader() does.
func clientFor(t *testing.T, user string) client.Client {
	t.Helper()
	cfg, err := env.ConfigForUser(user)
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
