package faults

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is what the data plane had counted at one instant.
type Sample struct {
	At time.Time
	// Reached counts answers from each version's pods (reporter
	// "destination", by destination_version).
	Reached map[string]float64
	// NoPod and NoSubset count the proxy's own 503 answers (reporter
	// "source"): UH, the subset drawn by weight had no Ready pod; NC, the
	// subset drawn is not in the DestinationRule. Envoy labels them with no
	// destination version, and so does the stand-in.
	NoPod, NoSubset float64
}

// Toward counts the requests the data plane routed to subset: answered by
// its pods, or by the proxy itself because the subset had no Ready pod or no
// DestinationRule entry. The proxy's own answers name no subset; the fault
// tests take care that only the subset under fault can lack pods or an
// entry (stable always has both), so they are counted toward it.
func (s Sample) Toward(subset string) float64 { return s.Reached[subset] + s.NoPod + s.NoSubset }

// Total counts every request the data plane routed.
func (s Sample) Total() float64 {
	n := s.NoPod + s.NoSubset
	for _, v := range s.Reached {
		n += v
	}
	return n
}

// Share is the part of the requests between from and s that subset's pods
// answered, and how many requests that was in all.
func (s Sample) Share(from Sample, subset string) (float64, float64) {
	n := s.Total() - from.Total()
	if n <= 0 {
		return 0, 0
	}
	return (s.Reached[subset] - from.Reached[subset]) / n, n
}

// Traffic samples the data plane's istio_requests_total over time, so a test
// can say when the last request went to a subset, not only that the
// VirtualService stopped naming it.
type Traffic struct {
	metrics http.Handler
	readMu  sync.Mutex // one read at a time, so samples are in time order
	mu      sync.Mutex
	samples []Sample
	err     error
	stop    chan struct{}
	done    chan struct{}
}

// RecordTraffic samples metrics (a handler serving the proxy's exposition:
// Proxy.MetricsHandler) every interval until Stop or ctx ends.
func RecordTraffic(ctx context.Context, metrics http.Handler, every time.Duration) *Traffic {
	t := &Traffic{metrics: metrics, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(t.done)
		for {
			t.Now()
			select {
			case <-ctx.Done():
				return
			case <-t.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	return t
}

// Stop ends sampling and waits for the sampler. Safe to call twice.
func (t *Traffic) Stop() {
	t.mu.Lock()
	select {
	case <-t.stop:
	default:
		close(t.stop)
	}
	t.mu.Unlock()
	<-t.done
}

// Err is the first error reading the metrics, if any.
func (t *Traffic) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Now takes a sample at once, records it and returns it.
func (t *Traffic) Now() Sample {
	t.readMu.Lock()
	defer t.readMu.Unlock()
	s, err := read(t.metrics)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.err == nil {
			t.err = err
		}
		if len(t.samples) > 0 {
			return t.samples[len(t.samples)-1]
		}
		return s
	}
	t.samples = append(t.samples, s)
	return s
}

// LastChange is when the count of requests toward subset last grew, if it
// grew at or after since: the time of the first sample that saw the final
// count (the last request completed between that sample and the one before
// it, so this errs late by at most one interval).
func (t *Traffic) LastChange(subset string, since time.Time) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.samples) - 1; i > 0; i-- {
		if t.samples[i].Toward(subset) > t.samples[i-1].Toward(subset) {
			if t.samples[i].At.Before(since) {
				return time.Time{}, false
			}
			return t.samples[i].At, true
		}
	}
	return time.Time{}, false
}

// Between counts the requests toward subset from the last sample taken
// at or before from (so it errs high, never low) to the latest sample.
func (t *Traffic) Between(subset string, from time.Time) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.samples) == 0 {
		return 0
	}
	base := t.samples[0]
	for _, s := range t.samples {
		if s.At.After(from) {
			break
		}
		base = s
	}
	return t.samples[len(t.samples)-1].Toward(subset) - base.Toward(subset)
}

// read takes one sample from the exposition served by h. It is stamped
// when the read ends, so a sample never claims a count before it existed.
func read(h http.Handler) (Sample, error) {
	s := Sample{Reached: map[string]float64{}}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	s.At = time.Now()
	if rec.Code != http.StatusOK {
		return s, fmt.Errorf("data-plane metrics: status %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		return s, fmt.Errorf("parse data-plane metrics: %w", err)
	}
	fam := fams["istio_requests_total"]
	if fam == nil {
		return s, nil // nothing routed yet
	}
	for _, m := range fam.GetMetric() {
		l := map[string]string{}
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		v := m.GetCounter().GetValue()
		switch {
		case l["reporter"] == "destination":
			s.Reached[l["destination_version"]] += v
		case l["reporter"] == "source" && l["response_flags"] == "UH":
			s.NoPod += v
		case l["reporter"] == "source" && l["response_flags"] == "NC":
			s.NoSubset += v
		}
	}
	return s, nil
}

// String renders a sample's counts, for failure messages.
func (s Sample) String() string {
	var vs []string
	for v := range s.Reached {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "%s=%.0f ", v, s.Reached[v])
	}
	fmt.Fprintf(&b, "UH=%.0f NC=%.0f", s.NoPod, s.NoSubset)
	return b.String()
}
