package dataplane

import (
	"strings"
	"testing"
)

// gammaWorldWith is gammaWorld with one pod per backend, served by it.
func gammaWorldWith(t *testing.T, backends map[string]*backend, routeDocs ...string) Snapshot {
	s := gammaWorld(t, routeDocs...)
	s.Pods = nil
	for v, b := range backends {
		s.Pods = append(s.Pods, pod("ml", "fraud-"+v, "fraud-"+v+"-abc12-x", map[string]string{"app": "fraud", "version": v}, b.addr()))
	}
	return s
}

// Through an HTTPRoute the Istio metrics name the backend Service, as
// ambient waypoints report them: PromQL selects versions by
// destination_service_name.
func TestProxyHTTPRouteMetricsNameBackendServices(t *testing.T) {
	v1, v2 := newBackend(t, "v1", 200), newBackend(t, "v2", 200)
	_, front, reg := newTestProxy(t, gammaWorldWith(t, map[string]*backend{"v1": v1, "v2": v2}, weightedRoute(50, 50)))
	const n = 200
	byVersion := map[string]int{}
	for range n {
		resp, body := post(t, front.URL+"/v2/models/fraud/infer", "fraud", `{"inputs":[]}`)
		v := resp.Header.Get("x-model-version")
		if resp.StatusCode != 200 || !strings.Contains(body, v) {
			t.Fatalf("answer %d %q from %q", resp.StatusCode, body, v)
		}
		byVersion[v]++
	}
	if byVersion["v1"] < 60 || byVersion["v2"] < 60 {
		t.Fatalf("50/50 split served %v", byVersion)
	}
	for _, v := range []string{"v1", "v2"} {
		want := map[string]string{
			"reporter": "destination", "destination_service": "fraud-" + v + ".ml.svc.cluster.local",
			"destination_service_name": "fraud-" + v, "destination_service_namespace": "ml",
			"destination_workload": "fraud-" + v, "destination_version": v,
			"response_code": "200", "response_flags": "-", "request_protocol": "http",
		}
		if got := counterWith(t, reg, RequestsTotalMetric, want); got != float64(byVersion[v]) {
			t.Errorf("istio_requests_total%v = %v, want %d", want, got, byVersion[v])
		}
	}
}

func TestProxyHTTPRouteDirect500AndMirror(t *testing.T) {
	v1, v2 := newBackend(t, "v1", 200), newBackend(t, "v2", 200)
	p, front, reg := newTestProxy(t, gammaWorldWith(t, map[string]*backend{"v1": v1, "v2": v2}, meshRoute("fraud")+`  rules:
  - matches: [{path: {value: /broken}}]
    backendRefs: [{name: fraud-v1, port: 80, weight: 0}]
  - filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: fraud-v2, port: 80}}}
    - {type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: x-routed-by, value: httproute}]}}
    backendRefs: [{name: fraud-v1, port: 80}]
`))
	resp, _ := post(t, front.URL+"/broken", "fraud", "")
	if resp.StatusCode != 500 || resp.Header.Get("x-envoy-response-flags") != FlagNone {
		t.Errorf("all-zero weights: %d flags %q, want 500 with no flag", resp.StatusCode, resp.Header.Get("x-envoy-response-flags"))
	}
	if got := counterWith(t, reg, RequestsTotalMetric, map[string]string{"reporter": "source", "response_code": "500"}); got != 1 {
		t.Errorf("source reporter counted %v 500s, want 1", got)
	}
	resp, _ = post(t, front.URL+"/infer", "fraud.ml", "payload")
	if resp.Header.Get("x-model-version") != "v1" || resp.Header.Get("x-routed-by") != "httproute" {
		t.Fatalf("answer from %q with x-routed-by %q, want v1 with the rule's response header", resp.Header.Get("x-model-version"), resp.Header.Get("x-routed-by"))
	}
	p.Wait()
	hosts, bodies := v2.seen()
	if len(hosts) != 1 || hosts[0] != "fraud.ml-shadow" || bodies[0] != "payload" {
		t.Fatalf("mirror saw hosts %v bodies %v, want one copy to fraud.ml-shadow with the body", hosts, bodies)
	}
	if got := counterWith(t, reg, RequestsTotalMetric, map[string]string{"reporter": "destination", "destination_service_name": "fraud-v2"}); got != 1 {
		t.Errorf("mirror counted %v times under fraud-v2, want 1", got)
	}
}
