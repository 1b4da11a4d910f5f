package certs

import (
	"bytes"
	"context"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestSelfSignedRenewsAndRepublishes runs the renewal loop on a fake clock:
// the serving certificate is replaced once it enters the last third of its
// life, and a caBundle that someone emptied (re-applied manifests) is
// written back within one check interval.
func TestSelfSignedRenewsAndRepublishes(t *testing.T) {
	sch := runtime.NewScheme()
	if err := corev1.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	if err := admissionregistrationv1.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "fulcrum-modelrollouts"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "modelrollouts.fulcrum.dev", SideEffects: ptr(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	cl := fake.NewClientBuilder().WithScheme(sch).WithObjects(vwc).Build()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC))
	s, err := NewSelfSigned(SelfSignedConfig{
		Client: cl, Namespace: "fulcrum-system", SecretName: "fulcrum-webhook-ca",
		Hosts: []string{"127.0.0.1"}, WebhookConfigurations: []string{"fulcrum-modelrollouts"},
		CheckInterval: time.Minute, Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	first, _ := s.GetCertificate(nil)
	if got := caBundle(ctx, t, cl); !bytes.Equal(got, s.CABundle()) {
		t.Fatal("Setup did not publish the caBundle")
	}
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()

	// Someone re-applies the manifests and empties the caBundle.
	emptyCABundle(ctx, t, cl)
	waitFor(t, clk, func() bool { return bytes.Equal(caBundle(ctx, t, cl), s.CABundle()) }, "caBundle republished")
	if cur, _ := s.GetCertificate(nil); cur != first {
		t.Fatal("serving certificate replaced long before its last third")
	}

	// Into the last third of the certificate's life: renewed.
	clk.Step(ServingValidity*2/3 + time.Hour)
	waitFor(t, clk, func() bool { cur, _ := s.GetCertificate(nil); return cur != first }, "serving certificate renewed")
	cur, _ := s.GetCertificate(nil)
	if cur.Leaf == nil || first.Leaf == nil || !cur.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Fatal("renewed certificate does not outlive the old one")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitFor steps the fake clock by a check interval until cond holds, with a
// real-time bound so a broken loop fails instead of hanging.
func waitFor(t *testing.T, clk *clocktesting.FakeClock, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		if clk.HasWaiters() {
			clk.Step(time.Minute)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func caBundle(ctx context.Context, t *testing.T, cl client.Client) []byte {
	t.Helper()
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	if err := cl.Get(ctx, client.ObjectKey{Name: "fulcrum-modelrollouts"}, &v); err != nil {
		t.Fatal(err)
	}
	return v.Webhooks[0].ClientConfig.CABundle
}

func emptyCABundle(ctx context.Context, t *testing.T, cl client.Client) {
	t.Helper()
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	if err := cl.Get(ctx, client.ObjectKey{Name: "fulcrum-modelrollouts"}, &v); err != nil {
		t.Fatal(err)
	}
	v.Webhooks[0].ClientConfig.CABundle = nil
	if err := cl.Update(ctx, &v); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
