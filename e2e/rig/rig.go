// Package rig assembles Fulcrum's end-to-end rig on a local environment
// (e2e/localenv): the fulcrum and fulcrumctl binaries built once, Fulcrum's
// own identity and RBAC from the shipped manifests, model servers behind the
// data-plane proxy with Prometheus scraping them every second, live load, and
// fulcrum processes. The scenario tests (e2e/scenarios) and the demo
// (e2e/demo) share it.
//
// Functions take a Cleaner (a *testing.T, or a Stack for commands) and
// register the teardown of whatever they start on it.
package rig

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
	"github.com/fulcrum-ml/fulcrum/manifests"
	"github.com/fulcrum-ml/fulcrum/webhook"
)

// Identities the rig adds to the environment (LocalenvOptions).
const (
	// FulcrumUser is Fulcrum's own identity: a token user named like the
	// service account the shipped RBAC binds, so the manifests' ClusterRole
	// is what the binary really gets, and the webhook's guard lets it (and
	// only it) write managed weights.
	FulcrumUser = webhook.DefaultFulcrumUser
	// EngineerUser is an ordinary ML engineer (group ml-engineers): may edit
	// VirtualServices and act through the admin API, is not Fulcrum.
	EngineerUser  = "alice"
	EngineerGroup = "ml-engineers"
	// CIUser is a pipeline's identity (group ci), bound to fulcrum-pipeline:
	// it starts, rolls back and pauses, but cannot approve, promote or split
	// (an approval gate waits for a person). The admin API checks its token
	// with a TokenReview.
	CIUser  = "ci-bot"
	CIGroup = "ci"
)

// Static admin-API identities (the --admin-token-file), bound to the shipped
// ClusterRoles fulcrum-admin and fulcrum-viewer through their groups.
const (
	AdminAPIUser   = "demo-admin"
	AdminAPIGroup  = "fulcrum-admins"
	ViewerAPIUser  = "demo-viewer"
	ViewerAPIGroup = "fulcrum-viewers"
)

// Cleaner registers teardown functions; *testing.T is one, and so is *Stack.
type Cleaner interface{ Cleanup(func()) }

// Stack is a Cleaner for commands: Run calls the functions in reverse order.
type Stack struct {
	mu  sync.Mutex
	fns []func()
}

// Cleanup adds fn.
func (s *Stack) Cleanup(fn func()) { s.mu.Lock(); s.fns = append(s.fns, fn); s.mu.Unlock() }

// Run calls every function, last added first, once.
func (s *Stack) Run() {
	s.mu.Lock()
	fns := s.fns
	s.fns = nil
	s.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// LocalenvOptions are the environment options the rig needs: its users, and
// Prometheus scraping every second.
func LocalenvOptions() localenv.Options {
	return localenv.Options{
		Users: []localenv.User{
			{Name: FulcrumUser, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:fulcrum-system"}},
			{Name: EngineerUser, Groups: []string{EngineerGroup}},
			{Name: CIUser, Groups: []string{CIGroup}},
		},
	}
}

// Env is the shared part of the rig: one per environment.
type Env struct {
	Kube *localenv.Env
	// Dir holds the binaries, kubeconfig, token file and process logs.
	Dir string
	// FulcrumBin and FulcrumctlBin are the built binaries.
	FulcrumBin, FulcrumctlBin string
	// FulcrumKubeconfig authenticates as FulcrumUser.
	FulcrumKubeconfig string
	// TokenFile is the admin API's static token file; AdminToken and
	// ViewerToken are in it.
	TokenFile               string
	AdminToken, ViewerToken string
	// Client is an admin controller-runtime client (system:masters).
	Client client.Client
	// Scrape is the environment Prometheus' scrape configuration.
	Scrape *Scrape
}

// Setup builds the binaries into dir, applies Fulcrum's namespace and RBAC
// from the shipped manifests, binds the rig's users and writes Fulcrum's
// kubeconfig and the admin API token file. kube must have been started with
// LocalenvOptions (and Prometheus).
func Setup(ctx context.Context, kube *localenv.Env, dir string) (*Env, error) {
	if kube.Prometheus == nil {
		return nil, fmt.Errorf("rig needs the environment's Prometheus: start it without SkipPrometheus")
	}
	e := &Env{Kube: kube, Dir: dir, Scrape: NewScrape(kube.Prometheus)}
	var err error
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if e.Client, err = client.New(kube.Config, client.Options{Scheme: scheme}); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if err := e.build(ctx); err != nil {
		return nil, err
	}
	if err := e.applyRBAC(ctx); err != nil {
		return nil, err
	}
	if err := e.writeKubeconfig(); err != nil {
		return nil, err
	}
	e.AdminToken, e.ViewerToken = randomToken(), randomToken()
	e.TokenFile = filepath.Join(dir, "admin-tokens.csv")
	tokens := fmt.Sprintf("%s,%s,%s,%q\n%s,%s,%s,%q\n",
		e.AdminToken, AdminAPIUser, AdminAPIUser, AdminAPIGroup,
		e.ViewerToken, ViewerAPIUser, ViewerAPIUser, ViewerAPIGroup)
	if err := os.WriteFile(e.TokenFile, []byte(tokens), 0o600); err != nil {
		return nil, fmt.Errorf("write token file: %w", err)
	}
	return e, nil
}

// build compiles cmd/fulcrum and cmd/fulcrumctl once.
func (e *Env) build(ctx context.Context) error {
	root, err := localenv.RepoRoot()
	if err != nil {
		return err
	}
	e.FulcrumBin, e.FulcrumctlBin = filepath.Join(e.Dir, "fulcrum"), filepath.Join(e.Dir, "fulcrumctl")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", e.Dir+"/", "./cmd/fulcrum", "./cmd/fulcrumctl")
	cmd.Dir = root
	localenv.InterruptOnCancel(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/fulcrum ./cmd/fulcrumctl: %w\n%s", err, out)
	}
	return nil
}

// applyRBAC applies the shipped namespace and RBAC (controller, user roles,
// the webhook's CA Secret role), then binds the rig's groups to the roles.
func (e *Env) applyRBAC(ctx context.Context) error {
	objs, err := manifests.Objects("install")
	if err != nil {
		return err
	}
	var apply []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "Namespace", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			apply = append(apply, o)
		}
	}
	wh, err := webhookRBAC()
	if err != nil {
		return err
	}
	apply = append(apply, wh...)
	for _, o := range apply {
		if err := e.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("apply %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	bind := func(name, role, group string) rbacv1.ClusterRoleBinding {
		return rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: group}},
		}
	}
	vsEditor := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-virtualservice-editor"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"networking.istio.io"},
			Resources: []string{"virtualservices", "destinationrules"}, Verbs: []string{"get", "list", "watch", "update", "patch"}}},
	}
	objsTyped := []client.Object{vsEditor}
	for _, b := range []rbacv1.ClusterRoleBinding{
		bind("e2e-admins", "fulcrum-admin", AdminAPIGroup),
		bind("e2e-viewers", "fulcrum-viewer", ViewerAPIGroup),
		bind("e2e-ci", "fulcrum-pipeline", CIGroup),
		bind("e2e-engineers", "fulcrum-ml-engineer", EngineerGroup),
		bind("e2e-engineers-vs", vsEditor.Name, EngineerGroup),
	} {
		objsTyped = append(objsTyped, &b)
	}
	for _, o := range objsTyped {
		if err := e.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", o.GetName(), err)
		}
	}
	return nil
}

// writeKubeconfig writes a kubeconfig that authenticates as FulcrumUser.
func (e *Env) writeKubeconfig() error {
	token, err := e.Kube.UserToken(FulcrumUser)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: e.Kube.APIServerURL, CertificateAuthorityData: e.Kube.CAData}
	cfg.AuthInfos["fulcrum"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["fulcrum"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "fulcrum"}
	cfg.CurrentContext = "fulcrum"
	e.FulcrumKubeconfig = filepath.Join(e.Dir, "fulcrum.kubeconfig")
	return clientcmd.WriteToFile(*cfg, e.FulcrumKubeconfig)
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Fulcrumctl runs the fulcrumctl binary against an admin API and returns
// its output and exit code (an error only when it could not run at all).
func (e *Env) Fulcrumctl(ctx context.Context, server, token string, args ...string) (string, int, error) {
	cmd := exec.CommandContext(ctx, e.FulcrumctlBin, args...)
	cmd.Env = append(os.Environ(), "FULCRUM_SERVER="+server, "FULCRUM_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode(), nil
	}
	if err != nil {
		return string(out), -1, fmt.Errorf("fulcrumctl %s: %w", strings.Join(args, " "), err)
	}
	return string(out), 0, nil
}
