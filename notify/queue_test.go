package notify

import (
	"context"
	"testing"
	"time"
)

func TestQueueDropsTheOldestWhenFull(t *testing.T) {
	q := newQueue(3)
	var dropped []string
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if old := q.push(Event{ID: id}); old != nil {
			dropped = append(dropped, old.ID)
		}
	}
	if len(dropped) != 2 || dropped[0] != "a" || dropped[1] != "b" {
		t.Errorf("dropped %v, want [a b]", dropped)
	}
	ctx := context.Background()
	for _, want := range []string{"c", "d", "e"} {
		if ev, ok := q.pop(ctx); !ok || ev.ID != want {
			t.Errorf("popped %q, want %q", ev.ID, want)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, ok := q.pop(ctx); ok {
		t.Error("popped from an empty queue")
	}
}

func TestSeenRecognisesRepeatsUntilExpiry(t *testing.T) {
	s := newSeen(3)
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	if !s.add("a", now.Add(time.Minute), now) || s.add("a", now.Add(time.Minute), now) {
		t.Fatal("a repeat was not recognised")
	}
	if !s.add("a", now.Add(3*time.Minute), now.Add(2*time.Minute)) {
		t.Error("an expired ID is still recognised")
	}
	s.remove("a")
	if !s.add("a", now.Add(5*time.Minute), now.Add(2*time.Minute)) {
		t.Error("a removed ID is still recognised")
	}
	for _, id := range []string{"b", "c", "d"} {
		s.add(id, now.Add(time.Hour), now)
	}
	if len(s.until) > 3 {
		t.Errorf("holds %d IDs, bound 3", len(s.until))
	}
}
