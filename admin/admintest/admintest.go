// Package admintest runs the admin API against a real API server for
// integration tests (of admin itself and of fulcrumctl): real TokenReview,
// SubjectAccessReview, informer cache and Events, with the user roles from
// manifests/install bound to test groups.
package admintest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"golang.org/x/time/rate"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/admin"
	"github.com/fulcrum-ml/fulcrum/admin/auth"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/manifests"
)

// Groups bound to the user roles, and the users to create with
// localenv.Options.Users (names and groups; tokens are generated).
const (
	ViewerGroup   = "fulcrum-test-viewers"
	EngineerGroup = "fulcrum-test-ml-engineers"
	AdminGroup    = "fulcrum-test-admins"
	// PipelineGroup holds fulcrum-pipeline: it may start and roll back but
	// not approve (nor promote, nor split).
	PipelineGroup = "fulcrum-test-pipelines"
)

// TestUsers are the identities the integration tests use: one per role and
// one with no role at all.
var TestUsers = []struct {
	Name   string
	Groups []string
}{
	{"vera", []string{ViewerGroup}},
	{"alice", []string{EngineerGroup}},
	{"ada", []string{AdminGroup}},
	{"ci", []string{PipelineGroup}},
	{"nobody", []string{"fulcrum-test-nothing"}},
}

var roleForGroup = map[string]string{
	ViewerGroup:   "fulcrum-viewer",
	EngineerGroup: "fulcrum-ml-engineer",
	AdminGroup:    "fulcrum-admin",
	PipelineGroup: "fulcrum-pipeline",
}

// Scheme has the core types and Fulcrum's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	return s
}

// InstallRoles applies the user ClusterRoles from manifests/install (the
// files users apply) and binds each test group to its role.
func InstallRoles(ctx context.Context, cs kubernetes.Interface) error {
	objs, err := manifests.Objects("install")
	if err != nil {
		return fmt.Errorf("read install manifests: %w", err)
	}
	found := map[string]bool{}
	for _, u := range objs {
		if u.GetKind() != "ClusterRole" || !strings.HasPrefix(u.GetName(), "fulcrum-") || u.GetName() == "fulcrum-controller" {
			continue
		}
		var role rbacv1.ClusterRole
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
			return fmt.Errorf("convert ClusterRole %s: %w", u.GetName(), err)
		}
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create ClusterRole %s: %w", role.Name, err)
		}
		found[role.Name] = true
	}
	for group, role := range roleForGroup {
		if !found[role] {
			return fmt.Errorf("manifests/install has no ClusterRole %s", role)
		}
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "test-" + group},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: group}},
		}
		if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("bind %s to %s: %w", group, role, err)
		}
	}
	return nil
}

// Running is an admin server on a loopback port.
type Running struct {
	URL    string
	Server *admin.Server
	// Client is an uncached admin client for setting up objects and playing
	// the controller's part.
	Client client.Client
}

// Options tune Start.
type Options struct {
	// RateLimit per client; unlimited when zero (tests and benchmarks).
	RateLimit rate.Limit
	// Quiet drops the server's logs.
	Quiet bool
	// Version is the build the server reports at /api/v1/version.
	Version admin.BuildInfo
}

// Start runs an admin server against the API server of cfg (an admin
// config: it creates TokenReviews and SubjectAccessReviews as Fulcrum's
// service account would) until the test ends.
func Start(t testing.TB, cfg *rest.Config, opts Options) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	scheme := Scheme()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	cached, err := client.New(cfg, client.Options{Scheme: scheme, Cache: &client.CacheOptions{Reader: c}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()

	bc := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	bc.StartRecordingToSink(ctx.Done())
	rec := bc.NewRecorder(scheme, "fulcrum-admin")

	log := logr.Discard()
	if tt, ok := t.(*testing.T); ok && !opts.Quiet {
		log = testr.New(tt)
	}
	limit := opts.RateLimit
	if limit == 0 {
		limit = rate.Inf
	}
	srv, err := admin.NewServer(admin.Config{
		Client:            cached,
		APIReader:         direct,
		Informers:         c,
		Authenticator:     auth.NewTokenReview(auth.TokenReviewConfig{Reviewer: cs.AuthenticationV1().TokenReviews()}),
		Authorizer:        auth.NewSubjectAccessReview(auth.SARConfig{Reviewer: cs.AuthorizationV1().SubjectAccessReviews()}),
		Recorder:          rec,
		Logger:            log,
		RateLimit:         limit,
		HeartbeatInterval: 2 * time.Second,
		Version:           opts.Version,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln); err != nil {
			t.Logf("admin server: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		bc.Shutdown()
		<-done
	})
	r := &Running{URL: "http://" + ln.Addr().String(), Server: srv, Client: direct}
	// Ready once the informer synced.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if !c.WaitForCacheSync(ctx) {
			t.Fatal("admin cache did not sync")
		}
		if ok, _ := ready(r.URL); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("admin server not ready after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// Fixture creates namespace ns with a DestinationRule "fraud" (subsets v1,
// v2, v3) and a ModelRollout "fraud" (stable v1) in phase, as the
// controller would have set it.
func (r *Running) Fixture(ctx context.Context, ns string, phase v1alpha1.Phase) (*v1alpha1.ModelRollout, error) {
	dr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "DestinationRule",
		"metadata":   map[string]any{"name": "fraud", "namespace": ns},
		"spec": map[string]any{
			"host": "fraud",
			"subsets": []any{
				map[string]any{"name": "v1", "labels": map[string]any{"version": "v1"}},
				map[string]any{"name": "v2", "labels": map[string]any{"version": "v2"}},
				map[string]any{"name": "v3", "labels": map[string]any{"version": "v3"}},
			},
		},
	}}
	if err := r.Client.Create(ctx, dr); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create DestinationRule: %w", err)
	}
	mr := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: ns},
		Spec: v1alpha1.ModelRolloutSpec{
			VirtualService:  &v1alpha1.VirtualServiceRef{Name: "fraud"},
			DestinationRule: "fraud",
			Stable:          "v1",
			Strategy:        v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{Steps: []int32{5, 25, 50, 100}, MinStepDuration: metav1.Duration{Duration: time.Minute}}},
		},
	}
	if err := r.Client.Create(ctx, mr); err != nil {
		return nil, fmt.Errorf("create ModelRollout: %w", err)
	}
	if phase != "" {
		mr.Status.Phase = phase
		if err := r.Client.Status().Update(ctx, mr); err != nil {
			return nil, fmt.Errorf("set phase: %w", err)
		}
	}
	return mr, nil
}

// historyTypes are the history entry types the controller writes when it
// applies each action (controller/rollout).
var historyTypes = map[v1alpha1.IntentAction]string{
	v1alpha1.IntentStart:    "Started",
	v1alpha1.IntentPause:    "Paused",
	v1alpha1.IntentResume:   "Resumed",
	v1alpha1.IntentSplit:    "ManualSplit",
	v1alpha1.IntentPromote:  "Promoted",
	v1alpha1.IntentRollback: "RolledBack",
	v1alpha1.IntentApprove:  v1alpha1.HistoryApproved,
}

// AwaitApproval plays the controller holding a progressing rollout at
// approval gate gate before its promotion (status.gates.pending).
func (r *Running) AwaitApproval(ctx context.Context, ns, name, gate string) error {
	var mr v1alpha1.ModelRollout
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &mr); err != nil {
		return err
	}
	mr.Status.Phase = v1alpha1.PhaseProgressing
	mr.Status.Gates = &v1alpha1.GatesStatus{
		Point: &v1alpha1.GatePoint{At: v1alpha1.GatePrePromote},
		Pending: &v1alpha1.GateRun{Name: gate, At: v1alpha1.GatePrePromote, Weight: 100, Type: v1alpha1.GateTypeApproval,
			ID: "test-" + gate, State: v1alpha1.GateWaitingForApproval, StartedAt: metav1.Now(),
			Message: "waits for a person's approval"},
	}
	return r.Client.Status().Update(ctx, &mr)
}

// Observe plays the controller: it sets the phase (and, when given, the
// weights) and, the first time it sees a pending intent, marks it applied
// with a history entry as the controller's: the intent it superseded
// recorded as IntentSuperseded, a start's candidate in status.candidate.
func (r *Running) Observe(ctx context.Context, ns, name string, phase v1alpha1.Phase, weights ...v1alpha1.SubsetWeight) error {
	var mr v1alpha1.ModelRollout
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &mr); err != nil {
		return err
	}
	from := mr.Status.Phase
	if in := mr.Spec.Intent; in != nil && in.ID != mr.Status.ObservedIntent {
		now := metav1.Now()
		if old := in.Supersedes; old != nil {
			mr.Status.History = append(mr.Status.History, v1alpha1.HistoryEntry{
				Time: now, Type: "IntentSuperseded", From: from, To: from, Actor: old.Actor, IntentID: old.ID,
				Reason: fmt.Sprintf("%s requested by %s was superseded by %s from %s before it was applied",
					strings.ToLower(string(old.Action)), old.Actor, strings.ToLower(string(in.Action)), in.Actor),
			})
		}
		if in.Action == v1alpha1.IntentStart {
			mr.Status.Candidate = mr.Spec.Candidate
		}
		if in.Action == v1alpha1.IntentApprove && mr.Status.Gates != nil {
			mr.Status.Gates.Pending = nil
		}
		mr.Status.ObservedIntent = in.ID
		mr.Status.History = append(mr.Status.History, v1alpha1.HistoryEntry{
			Time: now, Type: historyTypes[in.Action], From: from, To: phase, Actor: in.Actor, Reason: in.Reason, IntentID: in.ID, Weights: weights,
		})
	}
	mr.Status.Phase = phase
	if len(weights) > 0 {
		mr.Status.Weights = weights
	}
	return r.Client.Status().Update(ctx, &mr)
}

func ready(url string) (bool, error) {
	res, err := http.Get(url + "/readyz")
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	return res.StatusCode == http.StatusOK, nil
}
