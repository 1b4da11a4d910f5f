package gates

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// maxAnswer bounds the answer body read for the verdict.
const maxAnswer = 1 << 20

// attemptResult is one attempt's verdict: passed, or failed and whether a
// retry may change it.
type attemptResult struct {
	passed, retry bool
	message       string
}

// attempt makes one request of c. No answer, a timeout, 429 and 5xx, and
// an answer whose verdict cannot be read are worth a retry; an answer that
// says fail (an unexpected status, a verdict not among pass) is final.
func (r *Runner) attempt(ctx context.Context, c Call, n int32) attemptResult {
	timeout := DefaultAttemptTimeout
	if d := c.Spec.AttemptTimeout.Duration; d > 0 {
		timeout = d
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	method := c.Spec.Method
	if method == "" {
		method = DefaultMethod
	}
	p := c.Payload
	p.Attempt = n
	var body io.Reader
	if method != http.MethodGet {
		b, err := Body(c.Spec.Body, p)
		if err != nil {
			return attemptResult{message: err.Error()}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(actx, method, c.Spec.URL, body)
	if err != nil {
		return attemptResult{message: fmt.Sprintf("bad request: %v", err)}
	}
	for k, vs := range c.Headers {
		req.Header[k] = vs
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "fulcrum-gate")
	req.Header.Set("X-Fulcrum-Gate-Id", p.ID)
	resp, err := r.cfg.HTTP.Do(req)
	if err != nil {
		if actx.Err() != nil && ctx.Err() == nil {
			return attemptResult{retry: true, message: fmt.Sprintf("no answer within %s (spec.gates[].http.attemptTimeout)", timeout)}
		}
		return attemptResult{retry: true, message: "no answer: " + oneLine(err.Error(), 200)}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return attemptResult{retry: true, message: fmt.Sprintf("%s, and the body could not be read: %v", resp.Status, err)}
	}
	return judge(c.Spec.Expect, resp, answer)
}

// judge reads an answer against expect.
func judge(expect *v1alpha1.HTTPExpect, resp *http.Response, answer []byte) attemptResult {
	status := resp.Status
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return attemptResult{retry: true, message: status + snippet(answer)}
	}
	var want []int32
	var verdict *v1alpha1.JSONVerdict
	if expect != nil {
		want, verdict = expect.Status, expect.Verdict
	}
	switch {
	case len(want) == 0 && (resp.StatusCode < 200 || resp.StatusCode > 299):
		return attemptResult{message: fmt.Sprintf("%s, expected 2xx%s", status, snippet(answer))}
	case len(want) > 0 && !slices.Contains(want, int32(resp.StatusCode)):
		return attemptResult{message: fmt.Sprintf("%s, expected %s%s", status, statusList(want), snippet(answer))}
	case verdict == nil:
		return attemptResult{passed: true, message: status}
	}
	pass := verdict.Pass
	if len(pass) == 0 {
		pass = []string{"pass"}
	}
	value, ok, why := field(answer, verdict.Field)
	switch {
	case !ok:
		return attemptResult{retry: true, message: fmt.Sprintf("%s, but %s", status, why)}
	case slices.Contains(pass, value):
		return attemptResult{passed: true, message: fmt.Sprintf("%s, %s is %q", status, verdict.Field, value)}
	}
	return attemptResult{message: fmt.Sprintf("%s, but %s is %q, not %s", status, verdict.Field, value, strings.Join(quoteAll(pass), " or "))}
}

// field reads the dotted path of a JSON object as text, or why it cannot.
func field(answer []byte, path string) (string, bool, string) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(answer))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", false, "the answer is not JSON" + snippet(answer)
	}
	for _, name := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", false, fmt.Sprintf("the answer has no field %s", path)
		}
		if v, ok = obj[name]; !ok {
			return "", false, fmt.Sprintf("the answer has no field %s", path)
		}
	}
	switch x := v.(type) {
	case string:
		return x, true, ""
	case json.Number:
		return x.String(), true, ""
	case bool:
		return strconv.FormatBool(x), true, ""
	case nil:
		return "null", true, ""
	}
	return "", false, fmt.Sprintf("field %s is an object or a list, not a value", path)
}

// snippet is the start of an answer body for a message, on one line.
func snippet(b []byte) string {
	s := oneLine(string(b), 120)
	if s == "" {
		return ""
	}
	return ": " + s
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
	return v1alpha1.CutText(s, max)
}

func statusList(codes []int32) string {
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = strconv.Itoa(int(c))
	}
	return strings.Join(parts, ", ")
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
