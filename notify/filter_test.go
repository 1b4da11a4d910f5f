package notify

import (
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func TestFilters(t *testing.T) {
	ev := rollbackEvent() // ml/fraud, labels team=risk, RolledBack, Critical
	nsLabels := func() (labels.Set, error) { return labels.Set{"env": "prod"}, nil }
	cases := map[string]struct {
		filter  v1alpha1.ClusterNotifierFilter
		inScope bool
		wants   bool
	}{
		"empty: everything":             {v1alpha1.ClusterNotifierFilter{}, true, true},
		"named rollout":                 {nf(v1alpha1.NotifierFilter{Rollouts: []string{"churn", "fraud"}}), true, true},
		"other rollout":                 {nf(v1alpha1.NotifierFilter{Rollouts: []string{"churn"}}), false, true},
		"rollout selector matches":      {nf(v1alpha1.NotifierFilter{RolloutSelector: sel("team", "risk")}), true, true},
		"rollout selector misses":       {nf(v1alpha1.NotifierFilter{RolloutSelector: sel("team", "growth")}), false, true},
		"type listed":                   {nf(v1alpha1.NotifierFilter{Types: []string{"Promoted", "RolledBack"}}), true, true},
		"type not listed":               {nf(v1alpha1.NotifierFilter{Types: []string{"Promoted"}}), true, false},
		"severity at the minimum":       {nf(v1alpha1.NotifierFilter{MinSeverity: v1alpha1.SeverityCritical}), true, true},
		"severity above the minimum":    {nf(v1alpha1.NotifierFilter{MinSeverity: v1alpha1.SeverityWarning}), true, true},
		"namespace listed":              {v1alpha1.ClusterNotifierFilter{Namespaces: []string{"ml"}}, true, true},
		"namespace not listed":          {v1alpha1.ClusterNotifierFilter{Namespaces: []string{"web"}}, false, true},
		"namespace selector matches":    {v1alpha1.ClusterNotifierFilter{NamespaceSelector: sel("env", "prod")}, true, true},
		"namespace selector misses":     {v1alpha1.ClusterNotifierFilter{NamespaceSelector: sel("env", "dev")}, false, true},
		"all must match: type excluded": {v1alpha1.ClusterNotifierFilter{NotifierFilter: v1alpha1.NotifierFilter{Rollouts: []string{"fraud"}, Types: []string{"Started"}}, Namespaces: []string{"ml"}}, true, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := compileClusterFilter(&tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			in, err := f.inScope(&ev, nsLabels)
			if err != nil || in != tc.inScope {
				t.Errorf("inScope = %v, %v; want %v", in, err, tc.inScope)
			}
			if got := f.wants(ev.Type, ev.Severity); got != tc.wants {
				t.Errorf("wants = %v, want %v", got, tc.wants)
			}
		})
	}

	info := promotedEvent()
	f, _ := compileFilter(&v1alpha1.NotifierFilter{MinSeverity: v1alpha1.SeverityWarning})
	if f.wants(info.Type, info.Severity) {
		t.Error("an Info event passes minSeverity Warning")
	}
}

// Namespace labels are read only for a namespace selector, and an error
// reading them is the caller's.
func TestFilterReadsNamespaceLabelsOnlyWhenSelecting(t *testing.T) {
	ev := rollbackEvent()
	boom := func() (labels.Set, error) { return nil, errors.New("boom") }
	f, _ := compileClusterFilter(&v1alpha1.ClusterNotifierFilter{Namespaces: []string{"ml"}})
	if in, err := f.inScope(&ev, boom); err != nil || !in {
		t.Errorf("without a selector: %v, %v", in, err)
	}
	f, _ = compileClusterFilter(&v1alpha1.ClusterNotifierFilter{NamespaceSelector: sel("env", "prod")})
	if _, err := f.inScope(&ev, boom); err == nil {
		t.Error("the namespace read's error was lost")
	}
}

func TestInvalidSelectorIsAnError(t *testing.T) {
	_, err := compileFilter(&v1alpha1.NotifierFilter{RolloutSelector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near"}}}})
	if err == nil {
		t.Error("an unknown operator compiled")
	}
}

func nf(f v1alpha1.NotifierFilter) v1alpha1.ClusterNotifierFilter {
	return v1alpha1.ClusterNotifierFilter{NotifierFilter: f}
}

func sel(k, v string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
}
