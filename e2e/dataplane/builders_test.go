package dataplane

import (
	"testing"
	"time"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// vsFromYAML parses a VirtualService manifest as the API server would
// serve it.
func vsFromYAML(t testing.TB, doc string) VirtualService {
	t.Helper()
	var o istionetv1.VirtualService
	if err := yaml.UnmarshalStrict([]byte(doc), &o); err != nil {
		t.Fatalf("parse VirtualService: %v", err)
	}
	if o.Namespace == "" {
		o.Namespace = "ml"
	}
	return VirtualService{Namespace: o.Namespace, Name: o.Name, ResourceVersion: o.ResourceVersion, Created: o.CreationTimestamp.Time, Spec: &o.Spec}
}

func drFromYAML(t testing.TB, doc string) DestinationRule {
	t.Helper()
	var o istionetv1.DestinationRule
	if err := yaml.UnmarshalStrict([]byte(doc), &o); err != nil {
		t.Fatalf("parse DestinationRule: %v", err)
	}
	if o.Namespace == "" {
		o.Namespace = "ml"
	}
	return DestinationRule{Namespace: o.Namespace, Name: o.Name, Created: o.CreationTimestamp.Time, Spec: &o.Spec}
}

func service(ns, name string, selector map[string]string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Selector: selector}}
}

type podOpt func(*corev1.Pod)

func notReady(p *corev1.Pod)  { p.Status.Conditions[0].Status = corev1.ConditionFalse }
func noBackend(p *corev1.Pod) { delete(p.Annotations, BackendAnnotation) }
func deleting(p *corev1.Pod) {
	now := metav1.NewTime(time.Unix(1, 0))
	p.DeletionTimestamp = &now
}

// pod is a Ready pod of Deployment deploy (owned through a ReplicaSet, as
// the Deployment controller makes them) with the given labels and backend.
func pod(ns, deploy, name string, lbl map[string]string, backend string, opts ...podOpt) *corev1.Pod {
	l := map[string]string{"pod-template-hash": "abc12"}
	for k, v := range lbl {
		l[k] = v
	}
	yes := true
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, Labels: l,
			Annotations:     map[string]string{BackendAnnotation: backend},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: deploy + "-abc12", Controller: &yes}},
		},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

const fraudDR = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: fraud, namespace: ml}
spec:
  host: fraud
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`

// fraudWorld is a Service "fraud" in "ml" with one Ready pod per version,
// each served by a distinct fake address, and the DestinationRule above.
func fraudWorld(t testing.TB, vsDocs ...string) Snapshot {
	s := Snapshot{
		DestinationRules: []DestinationRule{drFromYAML(t, fraudDR)},
		Services:         []*corev1.Service{service("ml", "fraud", map[string]string{"app": "fraud"})},
		Pods: []*corev1.Pod{
			pod("ml", "fraud-v1", "fraud-v1-abc12-aaaaa", map[string]string{"app": "fraud", "version": "v1"}, "127.0.0.1:1001"),
			pod("ml", "fraud-v2", "fraud-v2-abc12-bbbbb", map[string]string{"app": "fraud", "version": "v2"}, "127.0.0.1:1002"),
			pod("ml", "fraud-v3", "fraud-v3-abc12-ccccc", map[string]string{"app": "fraud", "version": "v3"}, "127.0.0.1:1003"),
		},
	}
	for _, d := range vsDocs {
		s.VirtualServices = append(s.VirtualServices, vsFromYAML(t, d))
	}
	return s
}
