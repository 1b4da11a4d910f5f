package controller

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/notify"
)

// Notifier tells people what happened to a rollout (package notify's
// Dispatcher): every history entry the controller writes is published, and
// the sinks that failed show in the rollout's Notified condition.
type Notifier interface {
	// Publish queues an event; it never blocks.
	Publish(ev notify.Event)
	// Failures are the sinks the rollout's latest events did not reach.
	Failures(namespace, name string) []notify.Failure
	// Forget drops what is kept for a deleted rollout.
	Forget(namespace, name string)
}

// NotifyChanged asks for a reconcile of a rollout whose delivery failures
// changed, so its Notified condition follows (notify.Config.OnChange). It
// never blocks: when the buffer is full the rollout's next reconcile
// catches up.
func (r *Reconciler) NotifyChanged(namespace, name string) {
	mr := &v1alpha1.ModelRollout{}
	mr.Namespace, mr.Name = namespace, name
	select {
	case r.notifyEvents <- event.GenericEvent{Object: mr}:
	default:
	}
}

// publish sends the history entries the status write added, once it is
// written: an entry published before could describe a decision that a
// conflict then threw away.
func (r *Reconciler) publish(before, after *v1alpha1.ModelRollout) {
	if r.notifier == nil {
		return
	}
	// Entry i of a status has the absolute position HistoryDropped+i.
	seen := before.Status.HistoryDropped + int64(len(before.Status.History))
	for i, h := range after.Status.History {
		if after.Status.HistoryDropped+int64(i) >= seen {
			r.notifier.Publish(notify.NewEvent(after, h))
		}
	}
}

// notifiedCondition sets the Notified condition from the notifier's
// failures: False naming each failed sink, True once they are gone; left
// out while nothing ever failed.
func (r *Reconciler) notifiedCondition(mr *v1alpha1.ModelRollout, st *v1alpha1.ModelRolloutStatus, now metav1.Time) {
	if r.notifier == nil {
		return
	}
	failures := r.notifier.Failures(mr.Namespace, mr.Name)
	had := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionNotified)
	if len(failures) == 0 && had == nil {
		return
	}
	c := metav1.Condition{Type: v1alpha1.ConditionNotified, Status: metav1.ConditionTrue, Reason: "Delivered",
		Message: "every notifier sink received the latest events", ObservedGeneration: mr.Generation, LastTransitionTime: now}
	if len(failures) > 0 {
		var parts []string
		for _, f := range failures {
			parts = append(parts, fmt.Sprintf("%s sink %s (%s) did not receive %s: %s", f.Notifier, f.Sink, f.Kind, f.EventType, f.Error))
		}
		c.Status, c.Reason = metav1.ConditionFalse, "DeliveryFailed"
		c.Message = v1alpha1.CutText(strings.Join(parts, "; "), v1alpha1.MaxConditionText)
	}
	meta.SetStatusCondition(&st.Conditions, c)
}
