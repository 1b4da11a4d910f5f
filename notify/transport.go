package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// request is one HTTP POST to a sink.
type request struct {
	url           string // never logged or quoted: it may be a credential
	authorization string
	contentType   string
	body          []byte
}

// deliveryError is why an attempt failed. Its text never quotes the URL
// (a Slack or Teams URL is a credential) nor a Secret.
type deliveryError struct {
	status     int  // HTTP status; 0 when there was no answer
	retryable  bool // a later attempt may succeed
	retryAfter time.Duration
	msg        string
}

func (e *deliveryError) Error() string { return e.msg }

// newHTTPClient is the sinks' client: the environment's proxy, and no
// redirects, which would take the body (and the Authorization header's
// purpose) to an address no Secret named.
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// post sends r once, within timeout.
func post(ctx context.Context, c *http.Client, r request, timeout time.Duration, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		return &deliveryError{msg: "invalid URL"}
	}
	req.Header.Set("Content-Type", r.contentType)
	req.Header.Set("User-Agent", "fulcrum-notify/1")
	if r.authorization != "" {
		req.Header.Set("Authorization", r.authorization)
	}
	resp, err := c.Do(req)
	if err != nil {
		return transportError(ctx, err, timeout)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	return classify(resp.StatusCode, resp.Header.Get("Retry-After"), string(snippet), now)
}

// transportError describes an attempt that got no answer, without the URL
// that *url.Error quotes.
func transportError(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return &deliveryError{retryable: true, msg: fmt.Sprintf("no answer within %s", timeout)}
	}
	if ctx.Err() != nil {
		return &deliveryError{msg: "stopped: " + ctx.Err().Error()}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &deliveryError{retryable: true, msg: "POST failed: " + err.Error()}
}

// classify turns an answer into nil (2xx) or a deliveryError: 408, 429 and
// 5xx may succeed later (429 and 503 after Retry-After); any other status
// will not.
func classify(status int, retryAfter, body string, now time.Time) error {
	if status >= 200 && status < 300 {
		return nil
	}
	e := &deliveryError{status: status, msg: fmt.Sprintf("HTTP %d", status)}
	if b := oneLine(body); b != "" {
		e.msg += ": " + b
	}
	switch {
	case status >= 300 && status < 400:
		e.msg += " (redirects are not followed: put the final URL in the Secret)"
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		e.retryable = true
		e.retryAfter, _ = parseRetryAfter(retryAfter, now)
	case status == http.StatusRequestTimeout || status >= 500:
		e.retryable = true
	}
	return e
}

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// oneLine is the start of a response body, on one line, for an error.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
