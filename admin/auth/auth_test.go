package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestParseTokenFile(t *testing.T) {
	tf, err := ParseTokenFile(strings.NewReader(`# comment
tok-a,alice,1,"ml-engineers,devs"
tok-b,bob,2

tok-c, carol ,3,viewers
`))
	if err != nil {
		t.Fatal(err)
	}
	u, ok, _ := tf.AuthenticateToken(context.Background(), "tok-a")
	if !ok || u.Name != "alice" || u.UID != "1" || strings.Join(u.Groups, "|") != "ml-engineers|devs" {
		t.Fatalf("alice: %+v %v", u, ok)
	}
	if u, ok, _ := tf.AuthenticateToken(context.Background(), "tok-c"); !ok || u.Name != "carol" || len(u.Groups) != 1 {
		t.Fatalf("carol: %+v", u)
	}
	if _, ok, _ := tf.AuthenticateToken(context.Background(), "tok-"); ok {
		t.Fatal("prefix accepted")
	}
	for name, bad := range map[string]string{
		"short":     "tok,alice\n",
		"empty":     ",alice,1\n",
		"duplicate": "t,a,1\nt,b,2\n",
		"quote":     "t,\"a,1\n",
	} {
		if _, err := ParseTokenFile(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
}

type fakeTokenReviewer struct {
	calls int
	users map[string]authnv1.UserInfo
	err   error
}

func (f *fakeTokenReviewer) Create(_ context.Context, tr *authnv1.TokenReview, _ metav1.CreateOptions) (*authnv1.TokenReview, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	out := tr.DeepCopy()
	if u, ok := f.users[tr.Spec.Token]; ok {
		out.Status = authnv1.TokenReviewStatus{Authenticated: true, User: u}
	}
	return out, nil
}

func TestTokenReviewCaches(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	f := &fakeTokenReviewer{users: map[string]authnv1.UserInfo{"good": {Username: "alice", Groups: []string{"g"}, Extra: map[string]authnv1.ExtraValue{"k": {"v"}}}}}
	a := NewTokenReview(TokenReviewConfig{Reviewer: f, Clock: clk, SuccessTTL: 10 * time.Second, FailureTTL: 2 * time.Second})
	ctx := context.Background()
	for range 3 {
		u, ok, err := a.AuthenticateToken(ctx, "good")
		if err != nil || !ok || u.Name != "alice" || u.Extra["k"][0] != "v" {
			t.Fatalf("%+v %v %v", u, ok, err)
		}
	}
	if f.calls != 1 {
		t.Fatalf("calls = %d, want 1 (cached)", f.calls)
	}
	clk.Step(11 * time.Second)
	_, _, _ = a.AuthenticateToken(ctx, "good")
	if f.calls != 2 {
		t.Fatalf("calls = %d, want 2 after expiry", f.calls)
	}
	if _, ok, _ := a.AuthenticateToken(ctx, "bad"); ok {
		t.Fatal("bad token accepted")
	}
	_, _, _ = a.AuthenticateToken(ctx, "bad")
	if f.calls != 3 {
		t.Fatalf("calls = %d, want 3 (failure cached)", f.calls)
	}
	clk.Step(3 * time.Second)
	_, _, _ = a.AuthenticateToken(ctx, "bad")
	if f.calls != 4 {
		t.Fatalf("calls = %d, want 4 (failure expired)", f.calls)
	}
	f.err = errors.New("down")
	if _, _, err := a.AuthenticateToken(ctx, "other"); err == nil {
		t.Fatal("API error swallowed")
	}
}

type fakeSAR struct {
	calls int
	last  authzv1.SubjectAccessReviewSpec
	allow func(authzv1.SubjectAccessReviewSpec) bool
}

func (f *fakeSAR) Create(_ context.Context, s *authzv1.SubjectAccessReview, _ metav1.CreateOptions) (*authzv1.SubjectAccessReview, error) {
	f.calls++
	f.last = s.Spec
	out := s.DeepCopy()
	out.Status.Allowed = f.allow(s.Spec)
	return out, nil
}

func TestSubjectAccessReview(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	f := &fakeSAR{allow: func(s authzv1.SubjectAccessReviewSpec) bool { return s.ResourceAttributes.Verb == "get" }}
	z := NewSubjectAccessReview(SARConfig{Reviewer: f, Clock: clk})
	ctx := context.Background()
	u := User{Name: "alice", Groups: []string{"b", "a"}}
	d, err := z.Authorize(ctx, u, Attributes{Verb: "get", Namespace: "ml", Name: "fraud"})
	if err != nil || !d.Allowed {
		t.Fatalf("%+v %v", d, err)
	}
	ra := f.last.ResourceAttributes
	if ra.Group != "fulcrum.dev" || ra.Resource != "modelrollouts" || ra.Namespace != "ml" || ra.Name != "fraud" || f.last.User != "alice" {
		t.Fatalf("review %+v", f.last)
	}
	// Same groups in another order hit the cache.
	_, _ = z.Authorize(ctx, User{Name: "alice", Groups: []string{"a", "b"}}, Attributes{Verb: "get", Namespace: "ml", Name: "fraud"})
	if f.calls != 1 {
		t.Fatalf("calls = %d", f.calls)
	}
	if d, _ := z.Authorize(ctx, u, Attributes{Verb: "rollback", Namespace: "ml", Name: "fraud"}); d.Allowed {
		t.Fatal("rollback allowed")
	}
	if d, _ := z.Authorize(ctx, User{Name: "bob"}, Attributes{Verb: "get", Namespace: "ml", Name: "fraud"}); !d.Allowed || f.calls != 3 {
		t.Fatal("another user must not share alice's cache entry")
	}
}

func TestBearerToken(t *testing.T) {
	r := httptest.NewRequest("GET", "/api/v1/events?access_token=q", nil)
	if tok, ok := BearerToken(r, true); !ok || tok != "q" {
		t.Fatal("query token on streams")
	}
	if _, ok := BearerToken(r, false); ok {
		t.Fatal("query token accepted outside streams")
	}
	r.Header.Set("Authorization", "Bearer  abc ")
	if tok, ok := BearerToken(r, true); !ok || tok != "abc" {
		t.Fatalf("header token %q", tok)
	}
	r.Header.Set("Authorization", "Basic abc")
	if _, ok := BearerToken(r, true); ok {
		t.Fatal("basic accepted")
	}
}

// gatedTokenReviewer answers every token as valid for audiences once gate
// is closed, counting the calls.
type gatedTokenReviewer struct {
	calls     atomic.Int32
	gate      chan struct{}
	audiences []string
}

func (g *gatedTokenReviewer) Create(_ context.Context, tr *authnv1.TokenReview, _ metav1.CreateOptions) (*authnv1.TokenReview, error) {
	g.calls.Add(1)
	if g.gate != nil {
		<-g.gate
	}
	out := tr.DeepCopy()
	out.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: "u-" + tr.Spec.Token}, Audiences: g.audiences}
	return out, nil
}

// concurrently runs f n times at once and waits for them.
func concurrently(n int, release func(), f func()) {
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	for range n {
		go func() {
			defer done.Done()
			started.Done()
			f()
		}()
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond) // let them all reach the review
	release()
	done.Wait()
}

// TestReviewsAreMergedAndEvictedOneAtATime: concurrent requests with one new
// token cost one TokenReview, and a full cache drops one answer, not all of
// them (issue 14, finding 5).
func TestReviewsAreMergedAndEvictedOneAtATime(t *testing.T) {
	g := &gatedTokenReviewer{gate: make(chan struct{})}
	a := NewTokenReview(TokenReviewConfig{Reviewer: g})
	ctx := context.Background()
	concurrently(20, func() { close(g.gate) }, func() {
		if u, ok, err := a.AuthenticateToken(ctx, "new"); err != nil || !ok || u.Name != "u-new" {
			t.Errorf("%+v %v %v", u, ok, err)
		}
	})
	if n := g.calls.Load(); n != 1 {
		t.Fatalf("20 concurrent requests with one token cost %d TokenReviews, want 1", n)
	}

	// Fill the default cache (4096 answers) and go one past it.
	for i := range 4096 {
		_, _, _ = a.AuthenticateToken(ctx, fmt.Sprint("t", i))
	}
	_, _, _ = a.AuthenticateToken(ctx, "one-more")
	before := g.calls.Load()
	for _, tok := range []string{"t4095", "t100", "one-more"} {
		_, _, _ = a.AuthenticateToken(ctx, tok)
	}
	if n := g.calls.Load() - before; n != 0 {
		t.Fatalf("after one answer too many, %d recent tokens were reviewed again: the cache was emptied", n)
	}

	s := &fakeSAR{allow: func(authzv1.SubjectAccessReviewSpec) bool { return true }}
	gate := make(chan struct{})
	gs := &gatedSAR{fakeSAR: s, gate: gate}
	z := NewSubjectAccessReview(SARConfig{Reviewer: gs})
	concurrently(20, func() { close(gate) }, func() {
		if d, err := z.Authorize(ctx, User{Name: "alice"}, Attributes{Verb: "get", Namespace: "ml"}); err != nil || !d.Allowed {
			t.Errorf("%+v %v", d, err)
		}
	})
	if n := gs.calls.Load(); n != 1 {
		t.Fatalf("20 concurrent identical questions cost %d SubjectAccessReviews, want 1", n)
	}
}

type gatedSAR struct {
	*fakeSAR
	mu    sync.Mutex
	calls atomic.Int32
	gate  chan struct{}
}

func (g *gatedSAR) Create(ctx context.Context, s *authzv1.SubjectAccessReview, o metav1.CreateOptions) (*authzv1.SubjectAccessReview, error) {
	g.calls.Add(1)
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fakeSAR.Create(ctx, s, o)
}

// TestTokenAudiences: with audiences configured, a token the API server
// vouches for only for other audiences is refused (issue 14, finding 5).
func TestTokenAudiences(t *testing.T) {
	var asked []string
	r := &audienceReviewer{valid: map[string][]string{"for-fulcrum": {"fulcrum"}, "for-apiserver": {"https://kubernetes.default.svc"}}, asked: &asked}
	a := NewTokenReview(TokenReviewConfig{Reviewer: r, Audiences: []string{"fulcrum"}})
	ctx := context.Background()
	if _, ok, err := a.AuthenticateToken(ctx, "for-fulcrum"); err != nil || !ok {
		t.Fatalf("token for fulcrum refused: %v", err)
	}
	if strings.Join(asked, ",") != "fulcrum" {
		t.Fatalf("TokenReview asked for audiences %q, want fulcrum", asked)
	}
	if _, ok, _ := a.AuthenticateToken(ctx, "for-apiserver"); ok {
		t.Fatal("a token for the API server was accepted by an admin API that wants audience fulcrum")
	}
}

// audienceReviewer is an authenticator that ignores the audiences asked
// for and reports those the token has, as audience-agnostic ones may.
type audienceReviewer struct {
	valid map[string][]string
	asked *[]string
}

func (r *audienceReviewer) Create(_ context.Context, tr *authnv1.TokenReview, _ metav1.CreateOptions) (*authnv1.TokenReview, error) {
	*r.asked = tr.Spec.Audiences
	out := tr.DeepCopy()
	if auds, ok := r.valid[tr.Spec.Token]; ok {
		out.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: "x"}, Audiences: auds}
	}
	return out, nil
}
