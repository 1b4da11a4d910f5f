package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Notifiers' status is written in batches: workers count into a
// statusBook, and every StatusInterval the dispatcher writes, for each
// notifier that changed, its counters, last delivery and error, and its
// Ready condition. One write per notifier per interval, however many
// events; none when nothing changed.

// pending is what a notifier's status lacks.
type pending struct {
	delivered, failed int64 // not yet added to status
	lastDelivery      time.Time
	lastFailure       time.Time
	lastError         string
	recheck           bool // a delivery met a Secret problem: check the sinks again
}

type statusBook struct {
	mu sync.Mutex
	m  map[notifierRef]*pending
}

func (b *statusBook) entry(ref notifierRef) *pending {
	if b.m == nil {
		b.m = map[notifierRef]*pending{}
	}
	p := b.m[ref]
	if p == nil {
		p = &pending{}
		b.m[ref] = p
	}
	return p
}

func (b *statusBook) delivered(ref notifierRef, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.entry(ref)
	p.delivered++
	p.lastDelivery = at
}

func (b *statusBook) failed(ref notifierRef, at time.Time, msg string, secretProblem bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.entry(ref)
	p.failed++
	p.lastFailure = at
	p.lastError = msg
	p.recheck = p.recheck || secretProblem
}

func (b *statusBook) snapshot() map[notifierRef]pending {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[notifierRef]pending, len(b.m))
	for ref, p := range b.m {
		out[ref] = *p
	}
	return out
}

// written takes what was written (w) off ref's pending counts; what
// workers added meanwhile stays for the next write.
func (b *statusBook) written(ref notifierRef, w pending) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.m[ref]
	if p == nil {
		return
	}
	p.delivered -= w.delivered
	p.failed -= w.failed
	if w.recheck {
		p.recheck = false
	}
	if p.delivered == 0 && p.failed == 0 && !p.recheck {
		delete(b.m, ref)
	}
}

func (b *statusBook) forget(keep map[notifierRef]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ref := range b.m {
		if !keep[ref] {
			delete(b.m, ref)
		}
	}
}

func (d *Dispatcher) statusLoop(ctx context.Context) {
	t := d.cfg.Clock.NewTicker(d.cfg.StatusInterval)
	defer t.Stop()
	d.flushStatus(ctx)
	for {
		select {
		case <-t.C():
			d.flushStatus(ctx)
		case <-ctx.Done():
			return
		}
	}
}

// statusObject is a Notifier or a ClusterNotifier: both have a
// NotifierStatus.
type statusObject struct {
	ref    notifierRef
	obj    client.Object
	status *v1alpha1.NotifierStatus
	// check returns the Ready condition, or nil when it cannot be known
	// now (a Secret could not be read).
	check func(ctx context.Context) *metav1.Condition
}

// flushStatus writes the status of every notifier that changed.
func (d *Dispatcher) flushStatus(ctx context.Context) {
	log := logr.FromContextOrDiscard(ctx)
	objs, err := d.statusObjects(ctx)
	if err != nil {
		log.Error(err, "cannot list notifiers to write their status")
		return
	}
	book := d.status.snapshot()
	keep := map[notifierRef]bool{}
	for _, o := range objs {
		keep[o.ref] = true
		p := book[o.ref]
		if err := d.writeStatus(ctx, o, p); err != nil {
			log.Error(err, "cannot write a notifier's status; trying again later", "notifier", o.ref.String())
			continue
		}
		d.status.written(o.ref, p)
	}
	d.status.forget(keep)
}

func (d *Dispatcher) writeStatus(ctx context.Context, o statusObject, p pending) error {
	old := o.status
	ready := meta.FindStatusCondition(old.Conditions, v1alpha1.NotifierReady)
	recheck := p.recheck || ready == nil || ready.Status != metav1.ConditionTrue || old.ObservedGeneration != o.obj.GetGeneration()
	if !recheck && p.delivered == 0 && p.failed == 0 {
		return nil
	}
	st := old.DeepCopy()
	st.Delivered += p.delivered
	st.Failed += p.failed
	if !p.lastDelivery.IsZero() {
		t := metav1.NewTime(p.lastDelivery)
		st.LastDeliveryTime = &t
	}
	if !p.lastFailure.IsZero() {
		t := metav1.NewTime(p.lastFailure)
		st.LastFailureTime = &t
		st.LastError = v1alpha1.CutText(p.lastError, 1024)
	}
	if recheck {
		if c := o.check(ctx); c != nil {
			c.ObservedGeneration = o.obj.GetGeneration()
			c.LastTransitionTime = metav1.NewTime(d.cfg.Clock.Now())
			meta.SetStatusCondition(&st.Conditions, *c)
			st.ObservedGeneration = o.obj.GetGeneration()
		}
	}
	if equality.Semantic.DeepEqual(st, old) {
		return nil
	}
	// The object is the cache's: write a copy. Update, not patch: the
	// counters add to what this copy read, and a conflict (a stale cache)
	// must not count twice.
	upd := o.obj.DeepCopyObject().(client.Object)
	switch u := upd.(type) {
	case *v1alpha1.Notifier:
		u.Status = *st
	case *v1alpha1.ClusterNotifier:
		u.Status = *st
	}
	return d.cfg.Client.Status().Update(ctx, upd)
}

func (d *Dispatcher) statusObjects(ctx context.Context) ([]statusObject, error) {
	var ns v1alpha1.NotifierList
	if err := d.cfg.Client.List(ctx, &ns); err != nil {
		return nil, fmt.Errorf("list Notifiers: %w", err)
	}
	var cns v1alpha1.ClusterNotifierList
	if err := d.cfg.Client.List(ctx, &cns); err != nil {
		return nil, fmt.Errorf("list ClusterNotifiers: %w", err)
	}
	var out []statusObject
	for i := range ns.Items {
		n := &ns.Items[i]
		out = append(out, statusObject{
			ref: notifierRef{namespace: n.Namespace, name: n.Name}, obj: n, status: &n.Status,
			check: func(ctx context.Context) *metav1.Condition {
				_, err := compileFilter(&n.Spec.Filter)
				return d.readiness(ctx, err, n.Spec.Sinks, n.Namespace)
			},
		})
	}
	for i := range cns.Items {
		n := &cns.Items[i]
		out = append(out, statusObject{
			ref: notifierRef{cluster: true, name: n.Name}, obj: n, status: &n.Status,
			check: func(ctx context.Context) *metav1.Condition {
				_, err := compileClusterFilter(&n.Spec.Filter)
				return d.readiness(ctx, err, n.Spec.Sinks, n.Spec.SecretNamespace)
			},
		})
	}
	return out, nil
}

// readiness is the Ready condition of a notifier: its filter parses, and
// every sink's Secrets exist and hold what the sink needs. nil: a Secret
// could not be read, so nothing is known.
func (d *Dispatcher) readiness(ctx context.Context, filterErr error, sinks []v1alpha1.NotifierSink, secretNS string) *metav1.Condition {
	if filterErr != nil {
		return &metav1.Condition{Type: v1alpha1.NotifierReady, Status: metav1.ConditionFalse,
			Reason: v1alpha1.NotifierReasonInvalidFilter, Message: v1alpha1.CutText(filterErr.Error(), 32768)}
	}
	for i := range sinks {
		t := target{sink: sinks[i], secretNamespace: secretNS}
		if _, _, err := d.endpoint(ctx, &t); err != nil {
			var se *secretError
			if !errors.As(err, &se) {
				return nil
			}
			return &metav1.Condition{Type: v1alpha1.NotifierReady, Status: metav1.ConditionFalse,
				Reason: se.reason, Message: fmt.Sprintf("sink %s: %s", sinks[i].Name, se.msg)}
		}
	}
	return &metav1.Condition{Type: v1alpha1.NotifierReady, Status: metav1.ConditionTrue,
		Reason: v1alpha1.NotifierReasonReady, Message: "every sink's URL and credentials were found"}
}
