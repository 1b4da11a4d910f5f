package auth

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
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
