package notify

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Failure is a sink that the latest event of a rollout sent to it could
// not reach. The controller shows a rollout's failures in its status; a
// later delivery to the same sink clears it.
type Failure struct {
	// Notifier is "Notifier NAMESPACE/NAME" or "ClusterNotifier NAME".
	Notifier string `json:"notifier"`
	// Sink is the sink's name in the Notifier, Kind its kind (webhook,
	// slack, teams, alertmanager).
	Sink string `json:"sink"`
	Kind string `json:"kind"`
	// EventType is the history entry type that was not delivered.
	EventType string    `json:"eventType"`
	Time      time.Time `json:"time"`
	// Error says why, without any Secret's value.
	Error string `json:"error"`
}

// failureBook holds each rollout's failing sinks.
type failureBook struct {
	mu sync.Mutex
	m  map[string]map[string]Failure // rollout namespace/name -> notifier/sink
}

func (b *failureBook) set(rollout string, f Failure) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]map[string]Failure{}
	}
	if b.m[rollout] == nil {
		b.m[rollout] = map[string]Failure{}
	}
	b.m[rollout][f.Notifier+"\x00"+f.Sink] = f
}

// clear forgets a failure of rollout's sink; true when there was one.
func (b *failureBook) clear(rollout, notifier, sink string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	fs := b.m[rollout]
	k := notifier + "\x00" + sink
	if _, ok := fs[k]; !ok {
		return false
	}
	delete(fs, k)
	if len(fs) == 0 {
		delete(b.m, rollout)
	}
	return true
}

func (b *failureBook) get(rollout string) []Failure {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Failure
	for _, f := range b.m[rollout] {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Failure) int {
		if c := strings.Compare(a.Notifier, b.Notifier); c != 0 {
			return c
		}
		return strings.Compare(a.Sink, b.Sink)
	})
	return out
}

func (b *failureBook) forget(rollout string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, rollout)
}
