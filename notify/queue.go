package notify

import (
	"context"
	"sync"
)

// queue is a bounded FIFO of events that never blocks the producer: when
// full, push drops the oldest event and returns it. One worker pops from
// each queue, so the events of one rollout (always the same queue) are
// delivered in order.
type queue struct {
	mu    sync.Mutex
	items []Event // ring buffer of cap(items)
	head  int
	n     int
	wake  chan struct{} // holds a token while items may be waiting
}

func newQueue(capacity int) *queue {
	return &queue{items: make([]Event, max(capacity, 1)), wake: make(chan struct{}, 1)}
}

// push adds ev; when the queue was full it drops the oldest event and
// returns it.
func (q *queue) push(ev Event) (dropped *Event) {
	q.mu.Lock()
	if q.n == len(q.items) {
		old := q.items[q.head]
		dropped = &old
		q.head = (q.head + 1) % len(q.items)
		q.n--
	}
	q.items[(q.head+q.n)%len(q.items)] = ev
	q.n++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return dropped
}

// pop waits for an event; false when ctx is done.
func (q *queue) pop(ctx context.Context) (Event, bool) {
	for {
		q.mu.Lock()
		if q.n > 0 {
			ev := q.items[q.head]
			q.items[q.head] = Event{}
			q.head = (q.head + 1) % len(q.items)
			q.n--
			more := q.n > 0
			q.mu.Unlock()
			if more {
				select {
				case q.wake <- struct{}{}:
				default:
				}
			}
			return ev, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return Event{}, false
		}
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
