// Package client is a Go client for Fulcrum's admin API, used by fulcrumctl
// and tests. It speaks the routes of docs/admin-api.md, returns problems as
// *Problem, and reads the server-sent event streams.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Client talks to one admin API server.
type Client struct {
	// Server is the base URL, e.g. https://fulcrum.example:8443.
	Server string
	// Token is the bearer token.
	Token string
	// HTTP is the client to use; one with a 30s timeout when nil. Streams
	// use it without the timeout.
	HTTP *http.Client
	// UserAgent names the caller in the server's access log.
	UserAgent string
}

// Problem is an RFC 9457 error from the server.
type Problem struct {
	Type      string                 `json:"type"`
	Title     string                 `json:"title"`
	Status    int                    `json:"status"`
	Detail    string                 `json:"detail"`
	Field     string                 `json:"field,omitempty"`
	Phase     v1alpha1.Phase         `json:"phase,omitempty"`
	RequestID string                 `json:"requestId,omitempty"`
	Current   *v1alpha1.ModelRollout `json:"current,omitempty"`
	// RetryAfter from the Retry-After header, when given.
	RetryAfter time.Duration `json:"-"`
}

func (p *Problem) Error() string {
	s := fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
	if p.RequestID != "" {
		s += " (request " + p.RequestID + ")"
	}
	return s
}

// WhoAmI is the caller and what it may do.
type WhoAmI struct {
	User   string          `json:"user"`
	Groups []string        `json:"groups"`
	Can    map[string]bool `json:"can"`
}

// ServerVersion is the server's build (GET /api/v1/version).
type ServerVersion struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// History is a rollout's transitions.
type History struct {
	Items   []v1alpha1.HistoryEntry `json:"items"`
	Dropped int64                   `json:"dropped"`
}

// ActionRequest is the body of an action.
type ActionRequest struct {
	Candidate string                  `json:"candidate,omitempty"`
	Weights   []v1alpha1.SubsetWeight `json:"weights,omitempty"`
	Reason    string                  `json:"reason,omitempty"`
	// Gate names the approval gate an approve passes.
	Gate string `json:"gate,omitempty"`
	// IdempotencyKey, when set, is sent as the Idempotency-Key header.
	IdempotencyKey string `json:"-"`
}

func (c *Client) http(stream bool) *http.Client {
	if c.HTTP == nil {
		if stream {
			return http.DefaultClient
		}
		return &http.Client{Timeout: 30 * time.Second}
	}
	if stream && c.HTTP.Timeout != 0 {
		cp := *c.HTTP
		cp.Timeout = 0
		return &cp
	}
	return c.HTTP
}

func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	u := strings.TrimRight(c.Server, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	return req, nil
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, hdr http.Header, out any) error {
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := c.http(false).Do(req)
	if err != nil {
		return &ConnectionError{Err: err}
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		return readProblem(res)
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

// ConnectionError is a failure to reach the server.
type ConnectionError struct{ Err error }

func (e *ConnectionError) Error() string { return "cannot reach the admin API: " + e.Err.Error() }
func (e *ConnectionError) Unwrap() error { return e.Err }

func readProblem(res *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	p := &Problem{}
	if err := json.Unmarshal(raw, p); err != nil || p.Status == 0 {
		p = &Problem{Status: res.StatusCode, Title: http.StatusText(res.StatusCode), Detail: strings.TrimSpace(string(raw))}
	}
	if ra := res.Header.Get("Retry-After"); ra != "" {
		if d, err := time.ParseDuration(ra + "s"); err == nil {
			p.RetryAfter = d
		}
	}
	return p
}

func rolloutPath(ns, name string) string {
	return "/api/v1/namespaces/" + url.PathEscape(ns) + "/rollouts/" + url.PathEscape(name)
}

func nsQuery(ns string) url.Values {
	if ns == "" {
		return nil
	}
	return url.Values{"namespace": {ns}}
}

// List lists rollouts in ns, or in all namespaces when ns is empty.
func (c *Client) List(ctx context.Context, ns string) ([]v1alpha1.ModelRollout, error) {
	var out struct {
		Items []v1alpha1.ModelRollout `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/rollouts", nsQuery(ns), nil, nil, &out)
	return out.Items, err
}

// Get reads one rollout.
func (c *Client) Get(ctx context.Context, ns, name string) (*v1alpha1.ModelRollout, error) {
	var mr v1alpha1.ModelRollout
	if err := c.do(ctx, http.MethodGet, rolloutPath(ns, name), nil, nil, nil, &mr); err != nil {
		return nil, err
	}
	return &mr, nil
}

// History reads a rollout's history.
func (c *Client) History(ctx context.Context, ns, name string) (*History, error) {
	var h History
	if err := c.do(ctx, http.MethodGet, rolloutPath(ns, name)+"/history", nil, nil, nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// Version asks the server for its build. The route needs no token (the
// client sends it anyway, and the server ignores it). A server older than
// the route answers 404.
func (c *Client) Version(ctx context.Context) (*ServerVersion, error) {
	var v ServerVersion
	if err := c.do(ctx, http.MethodGet, "/api/v1/version", nil, nil, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// WhoAmI asks who the token is and what it may do in ns.
func (c *Client) WhoAmI(ctx context.Context, ns string) (*WhoAmI, error) {
	var w WhoAmI
	if err := c.do(ctx, http.MethodGet, "/api/v1/whoami", nsQuery(ns), nil, nil, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// Act requests an action (start, split, promote, rollback, pause, resume)
// and returns the rollout with the recorded intent.
func (c *Client) Act(ctx context.Context, ns, name, action string, req ActionRequest) (*v1alpha1.ModelRollout, error) {
	var hdr http.Header
	if req.IdempotencyKey != "" {
		hdr = http.Header{"Idempotency-Key": {req.IdempotencyKey}}
	}
	var mr v1alpha1.ModelRollout
	if err := c.do(ctx, http.MethodPost, rolloutPath(ns, name)+"/"+action, nil, req, hdr, &mr); err != nil {
		return nil, err
	}
	return &mr, nil
}

// Event is one server-sent event. Rollout is set for "rollout" events;
// Namespace and Name for "deleted".
type Event struct {
	Type      string
	Rollout   *v1alpha1.ModelRollout
	Namespace string
	Name      string
}

// Watch streams events for one rollout (name set) or for a namespace (or
// all, ns empty) and calls fn for each until fn returns false, the stream
// ends or ctx is done. A stream the server closed returns io.EOF.
func (c *Client) Watch(ctx context.Context, ns, name string, fn func(Event) bool) error {
	path, q := "/api/v1/events", nsQuery(ns)
	if name != "" {
		path, q = rolloutPath(ns, name)+"/events", nil
	}
	req, err := c.newRequest(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	res, err := c.http(true).Do(req)
	if err != nil {
		return &ConnectionError{Err: err}
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return readProblem(res)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var typ string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() > 0 || typ != "" {
				ev, err := parseEvent(typ, data.String())
				if err != nil {
					return err
				}
				if !fn(ev) {
					return nil
				}
			}
			typ = ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			typ = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &ConnectionError{Err: err}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return io.EOF
}

func parseEvent(typ, data string) (Event, error) {
	if typ == "" {
		typ = "message"
	}
	ev := Event{Type: typ}
	switch typ {
	case "rollout":
		ev.Rollout = &v1alpha1.ModelRollout{}
		if err := json.Unmarshal([]byte(data), ev.Rollout); err != nil {
			return ev, fmt.Errorf("decode rollout event: %w", err)
		}
	case "deleted":
		var d struct{ Namespace, Name string }
		if err := json.Unmarshal([]byte(data), &d); err != nil {
			return ev, fmt.Errorf("decode deleted event: %w", err)
		}
		ev.Namespace, ev.Name = d.Namespace, d.Name
	}
	return ev, nil
}

// IsStatus reports whether err is a problem with the given HTTP status.
func IsStatus(err error, status int) bool {
	var p *Problem
	return errors.As(err, &p) && p.Status == status
}
