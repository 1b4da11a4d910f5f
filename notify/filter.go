package notify

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// filter is a Notifier's or ClusterNotifier's filter, compiled. It answers
// two questions apart: whether an event's rollout is in scope (names,
// labels, namespaces), and whether the notifier wants an entry type of a
// severity; Alertmanager sinks ask the second about the alerts an event
// resolves as well as about the event.
type filter struct {
	rollouts    map[string]bool // nil: every rollout
	rolloutSel  labels.Selector // nil: every rollout
	namespaces  map[string]bool // nil: every namespace
	nsSel       labels.Selector // nil: every namespace
	types       map[string]bool // nil: every type
	minSeverity v1alpha1.Severity
}

func compileFilter(f *v1alpha1.NotifierFilter) (filter, error) {
	out := filter{rollouts: set(f.Rollouts), types: set(f.Types), minSeverity: f.MinSeverity}
	var err error
	if out.rolloutSel, err = selector(f.RolloutSelector); err != nil {
		return filter{}, fmt.Errorf("spec.filter.rolloutSelector: %w", err)
	}
	return out, nil
}

func compileClusterFilter(f *v1alpha1.ClusterNotifierFilter) (filter, error) {
	out, err := compileFilter(&f.NotifierFilter)
	if err != nil {
		return filter{}, err
	}
	out.namespaces = set(f.Namespaces)
	if out.nsSel, err = selector(f.NamespaceSelector); err != nil {
		return filter{}, fmt.Errorf("spec.filter.namespaceSelector: %w", err)
	}
	return out, nil
}

// inScope says whether ev's rollout is one the filter follows. nsLabels
// reads the labels of ev's namespace; it is called only when a namespace
// selector needs them.
func (f *filter) inScope(ev *Event, nsLabels func() (labels.Set, error)) (bool, error) {
	if f.rollouts != nil && !f.rollouts[ev.Rollout] {
		return false, nil
	}
	if f.rolloutSel != nil && !f.rolloutSel.Matches(labels.Set(ev.Labels)) {
		return false, nil
	}
	if f.namespaces != nil && !f.namespaces[ev.Namespace] {
		return false, nil
	}
	if f.nsSel != nil {
		l, err := nsLabels()
		if err != nil {
			return false, err
		}
		return f.nsSel.Matches(l), nil
	}
	return true, nil
}

// wants says whether entries of type typ and severity sev pass the
// filter's types and minSeverity.
func (f *filter) wants(typ string, sev v1alpha1.Severity) bool {
	if f.types != nil && !f.types[typ] {
		return false
	}
	return rank(sev) >= rank(f.minSeverity)
}

func selector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return nil, nil
	}
	return metav1.LabelSelectorAsSelector(s)
}

func set(xs []string) map[string]bool {
	if len(xs) == 0 {
		return nil
	}
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}
