package notify

import (
	"sync"
	"time"
)

// seen remembers the IDs of the events published, until they are too old
// to be published again (Config.MaxAge after the entry's time), so that an
// entry published twice is delivered once. It holds at most max IDs,
// forgetting the oldest first.
type seen struct {
	mu    sync.Mutex
	until map[string]time.Time
	order []string // insertion order, for expiry and the bound
	max   int
}

func newSeen(max int) *seen {
	return &seen{until: map[string]time.Time{}, max: max}
}

// add records id until expiry; false when id is already recorded.
func (s *seen) add(id string, expiry, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if _, ok := s.until[id]; ok {
		return false
	}
	s.until[id] = expiry
	s.order = append(s.order, id)
	for len(s.until) > s.max && len(s.order) > 0 {
		delete(s.until, s.order[0])
		s.order = s.order[1:]
	}
	return true
}

// remove forgets id, so that it may be published again (its event was
// dropped before delivery).
func (s *seen) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.until, id)
}

// expire forgets IDs from the front of the order that have expired or
// were removed. Entries arrive in roughly time order, so the front holds
// the oldest.
func (s *seen) expire(now time.Time) {
	for len(s.order) > 0 {
		t, ok := s.until[s.order[0]]
		if ok && now.Before(t) {
			return
		}
		delete(s.until, s.order[0])
		s.order = s.order[1:]
	}
}
