package provider

import (
	"fmt"
	"io"
	"net/http"
)

// cappedTransport fails the read of a response body that passes max bytes,
// so a huge answer costs at most max bytes of memory and is an error, never
// a truncated result decoded as if it were whole. Bodies are counted as the
// client reads them: after the transport's own gzip decompression.
type cappedTransport struct {
	next http.RoundTripper
	max  int64
}

func (t *cappedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{rc: resp.Body, max: t.max}
	return resp, nil
}

type cappedBody struct {
	rc   io.ReadCloser
	max  int64
	read int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.read > b.max {
		return 0, b.tooLarge()
	}
	// Ask for one byte more than is left, to see whether there is more.
	if left := b.max - b.read + 1; int64(len(p)) > left {
		p = p[:left]
	}
	n, err := b.rc.Read(p)
	b.read += int64(n)
	if b.read > b.max {
		return n, b.tooLarge()
	}
	return n, err
}

func (b *cappedBody) tooLarge() error {
	return fmt.Errorf("%w: the response is larger than the cap of %d bytes (--prometheus-max-response-bytes): aggregate the query (sum by (...)) so it returns fewer series", ErrTooLarge, b.max)
}

func (b *cappedBody) Close() error { return b.rc.Close() }
