package notify

import (
	"net/http"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	p := RetryPolicy{InitialBackoff: time.Second, MaxBackoff: 8 * time.Second}.withDefaults()
	lowest := func(n int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	cases := []struct {
		retry      int
		retryAfter time.Duration
		min, max   time.Duration
	}{
		{1, 0, 500 * time.Millisecond, time.Second},
		{2, 0, time.Second, 2 * time.Second},
		{3, 0, 2 * time.Second, 4 * time.Second},
		{4, 0, 4 * time.Second, 8 * time.Second},
		{10, 0, 4 * time.Second, 8 * time.Second}, // capped
		{1, 20 * time.Second, 20 * time.Second, 20 * time.Second},
	}
	for _, c := range cases {
		lo, hi := p.backoff(c.retry, c.retryAfter, lowest), p.backoff(c.retry, c.retryAfter, highest)
		if lo != c.min || hi != c.max {
			t.Errorf("retry %d (Retry-After %s): waits %s..%s, want %s..%s", c.retry, c.retryAfter, lo, hi, c.min, c.max)
		}
	}
}

func TestClassify(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	cases := map[string]struct {
		status     int
		retryAfter string
		retryable  bool
		after      time.Duration
	}{
		"500":                       {500, "", true, 0},
		"502":                       {502, "", true, 0},
		"408":                       {408, "", true, 0},
		"429 with seconds":          {429, "7", true, 7 * time.Second},
		"503 with a date":           {503, now.Add(90 * time.Second).Format(http.TimeFormat), true, 90 * time.Second},
		"429 with a date passed":    {429, now.Add(-time.Minute).Format(http.TimeFormat), true, 0},
		"429 with garbage":          {429, "soon", true, 0},
		"400":                       {400, "", false, 0},
		"404 (Slack's no_service)":  {404, "", false, 0},
		"410 (archived channel)":    {410, "", false, 0},
		"302 (redirects not taken)": {302, "", false, 0},
	}
	for name, c := range cases {
		err := classify(c.status, c.retryAfter, "body", now)
		de, ok := err.(*deliveryError)
		if !ok {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if de.retryable != c.retryable || de.retryAfter != c.after {
			t.Errorf("%s: retryable %v after %s, want %v after %s", name, de.retryable, de.retryAfter, c.retryable, c.after)
		}
	}
	if err := classify(204, "", "", now); err != nil {
		t.Errorf("204: %v", err)
	}
}
