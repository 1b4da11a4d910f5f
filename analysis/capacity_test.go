package analysis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/analysis/templates"
)

// The capacity query is rendered for the rollout and confined to its
// namespace, whatever namespace it names itself.
func TestCapacityQueryIsConfinedToTheNamespace(t *testing.T) {
	got, err := CapacityQuery(`min(triton_capacity_rps{namespace="other", service="{{.Service}}"})`, "ml", "fraud", "namespace")
	if err != nil {
		t.Fatal(err)
	}
	if want := `min(triton_capacity_rps{namespace="ml",service="fraud"})`; got != want {
		t.Fatalf("query %s, want %s", got, want)
	}
	if _, err := CapacityQuery(`min(`, "ml", "fraud", ""); err == nil || !strings.Contains(err.Error(), "spec.readiness.requestsPerPodQuery") {
		t.Fatalf("bad PromQL: %v", err)
	}
}

func TestPodCapacity(t *testing.T) {
	now := time.Unix(10000, 0)
	tests := map[string]struct {
		samples []provider.Sample
		err     error
		inline  bool
		want    float64
		wantErr string
	}{
		"one value":                 {samples: []provider.Sample{{Value: 42}}, inline: true, want: 42},
		"a vector: its least value": {samples: []provider.Sample{{Value: 50}, {Value: 35}, {Value: 40}}, inline: true, want: 35},
		"no data":                   {err: provider.ErrNoData, inline: true, wantErr: "returned no data"},
		"zero":                      {samples: []provider.Sample{{Value: 0}}, inline: true, wantErr: "not a positive number"},
		"inline queries off":        {samples: []provider.Sample{{Value: 42}}, wantErr: "--allow-inline-queries"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fp := &fakeProvider{calls: map[string]int{}, answers: func(string) ([]provider.Sample, error) { return tc.samples, tc.err }}
			e, err := NewEngine(EngineConfig{Provider: fp, AllowInlineQueries: tc.inline})
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.PodCapacity(context.Background(), "ml", "fraud", `min(model_capacity_rps{service="{{.Service}}"})`, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				if !tc.inline && (!errors.Is(err, templates.ErrInlineQueriesOff) || len(fp.calls) != 0) {
					t.Fatalf("inline queries off: err %v, %d queries run", err, len(fp.calls))
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("capacity %g, %v; want %g", got, err, tc.want)
			}
		})
	}
}
