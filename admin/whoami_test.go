package admin

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/admin/auth"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// countingSAR allows get and list to everyone and counts the reviews.
type countingSAR struct{ calls atomic.Int32 }

func (c *countingSAR) Create(_ context.Context, s *authzv1.SubjectAccessReview, _ metav1.CreateOptions) (*authzv1.SubjectAccessReview, error) {
	c.calls.Add(1)
	out := s.DeepCopy()
	v := s.Spec.ResourceAttributes.Verb
	out.Status.Allowed = v == "get" || v == "list"
	return out, nil
}

// TestWhoamiCost: whoami costs at most one review per verb per cache
// period, and a namespace the caller makes up costs none (issue 14,
// finding 5).
func TestWhoamiCost(t *testing.T) {
	sar := &countingSAR{}
	f := newFixture(t, nil, func(c *Config) {
		c.Authorizer = auth.NewSubjectAccessReview(auth.SARConfig{Reviewer: sar, Clock: c.Clock})
	}, newRollout("ml", "fraud", v1alpha1.PhaseProgressing))
	verbs := int32(len(whoamiVerbs))

	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := f.do("GET", "/api/v1/whoami", viewerToken, ""); r.status != 200 {
				t.Errorf("whoami: %d %s", r.status, r.raw)
			}
		}()
	}
	wg.Wait()
	if n := sar.calls.Load(); n != verbs {
		t.Fatalf("10 whoami calls cost %d reviews, want %d (one per verb)", n, verbs)
	}
	for i := range 20 {
		r := f.do("GET", fmt.Sprintf("/api/v1/whoami?namespace=made-up-%d", i), viewerToken, "")
		if can := r.body["can"].(map[string]any); r.status != 200 || can["list"] != true || can["rollback"] != false {
			t.Fatalf("whoami in a made-up namespace: %d %s", r.status, r.raw)
		}
	}
	if n := sar.calls.Load(); n != verbs {
		t.Fatalf("whoami in 20 made-up namespaces cost %d more reviews, want none", n-verbs)
	}
	// A namespace with rollouts is asked about once per verb.
	for range 3 {
		f.do("GET", "/api/v1/whoami?namespace=ml", viewerToken, "")
	}
	if n := sar.calls.Load(); n != 2*verbs {
		t.Fatalf("whoami in ml cost %d reviews, want %d", n-verbs, verbs)
	}
}
