package dataplane

import (
	"fmt"
	"net"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Backend is one Ready pod behind a destination, with the process address
// its BackendAnnotation names and the workload labels Istio reports.
type Backend struct {
	Addr              string // host:port of the serving process
	Pod               string // namespace/name
	Workload          string // owning Deployment (or the pod when it has none)
	WorkloadNamespace string
	App               string
	Version           string
	CanonicalService  string
	CanonicalRevision string
}

// backendsFor returns the Ready, annotated pods of svc whose labels also
// match subset (nil for the whole Service), sorted by pod name so that a
// seeded choice among them is reproducible.
func backendsFor(svc *corev1.Service, subset map[string]string, pods []*corev1.Pod) ([]Backend, []string) {
	if svc == nil || len(svc.Spec.Selector) == 0 {
		return nil, nil
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var sub labels.Selector
	if subset != nil {
		sub = labels.SelectorFromSet(subset)
	}
	var out []Backend
	var problems []string
	for _, p := range pods {
		if p.Namespace != svc.Namespace || p.DeletionTimestamp != nil {
			continue
		}
		set := labels.Set(p.Labels)
		if !sel.Matches(set) || (sub != nil && !sub.Matches(set)) || !podReady(p) {
			continue
		}
		addr, err := backendAddr(p)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		out = append(out, backendOf(p, addr))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out, problems
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// backendAddr reads and checks the pod's BackendAnnotation. The proxy only
// forwards to loopback so a stray annotation cannot send load elsewhere.
func backendAddr(p *corev1.Pod) (string, error) {
	addr, ok := p.Annotations[BackendAnnotation]
	if !ok {
		return "", fmt.Errorf("pod %s/%s is Ready but has no %s annotation; set it to the 127.0.0.1:PORT of the process serving it", p.Namespace, p.Name, BackendAnnotation)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", fmt.Errorf("pod %s/%s annotation %s=%q: want host:port, e.g. 127.0.0.1:8080", p.Namespace, p.Name, BackendAnnotation, addr)
	}
	if !isLoopback(host) {
		return "", fmt.Errorf("pod %s/%s annotation %s=%q: only loopback addresses are allowed", p.Namespace, p.Name, BackendAnnotation, addr)
	}
	return addr, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// backendOf derives Istio's workload labels from a pod: the workload is the
// Deployment that owns its ReplicaSet, app and version come from the usual
// labels, canonical service and revision follow Istio's fallbacks.
func backendOf(p *corev1.Pod, addr string) Backend {
	l := p.Labels
	b := Backend{
		Addr:              addr,
		Pod:               p.Namespace + "/" + p.Name,
		Workload:          workloadName(p),
		WorkloadNamespace: p.Namespace,
		App:               first(l["app"], l["app.kubernetes.io/name"]),
		Version:           first(l["version"], l["app.kubernetes.io/version"]),
	}
	b.CanonicalService = first(l["service.istio.io/canonical-name"], l["app.kubernetes.io/name"], l["app"], b.Workload)
	b.CanonicalRevision = first(l["service.istio.io/canonical-revision"], l["app.kubernetes.io/version"], l["version"], "latest")
	if b.App == "" {
		b.App = unknown
	}
	if b.Version == "" {
		b.Version = unknown
	}
	return b
}

func workloadName(p *corev1.Pod) string {
	for _, o := range p.OwnerReferences {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		if o.Kind == "ReplicaSet" {
			if h := p.Labels["pod-template-hash"]; h != "" {
				if d, ok := strings.CutSuffix(o.Name, "-"+h); ok {
					return d
				}
			}
		}
		return o.Name
	}
	return p.Name
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

const unknown = "unknown"
