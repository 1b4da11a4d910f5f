package webhook_test

import (
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/fulcrum-ml/fulcrum/webhook"
)

// Without --allow-inline-queries (the default) the webhook refuses a
// ModelRollout whose metric carries its own PromQL, and says which flag
// turns them on; the same rollout passes when the flag is on.
func TestInlineQueriesNeedTheFlag(t *testing.T) {
	mr := benchRollout("fraud") // its metric "custom" is an inline query
	for _, allow := range []bool{false, true} {
		l := memCluster()
		l.mrs = nil // mr is new
		s, err := webhook.NewServer(webhook.Config{Lookups: l, CertDir: certDir(t), AllowInlineQueries: allow})
		if err != nil {
			t.Fatal(err)
		}
		resp := call(t, s.Handler(), webhook.PathModelRollouts, review(t, admissionv1.Create, "alice", mrKind, mr, nil))
		if allow {
			if !resp.Allowed {
				t.Errorf("with the flag: denied: %+v", resp.Result)
			}
			continue
		}
		if resp.Allowed || !strings.Contains(resp.Result.Message, `spec.analysis.metrics[1].query: Forbidden: inline queries are turned off (fulcrum runs without --allow-inline-queries)`) {
			t.Errorf("without the flag: allowed=%v %+v", resp.Allowed, resp.Result)
		}
	}
}
