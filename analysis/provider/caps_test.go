package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
)

// vectorJSON is a Prometheus answer of n series, padded by a label of pad
// bytes each.
func vectorJSON(n, pad int) string {
	series := make([]string, n)
	for i := range series {
		series[i] = fmt.Sprintf(`{"metric":{"i":"%d","pad":"%s"},"value":[1,"1"]}`, i, strings.Repeat("x", pad))
	}
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(series, ",") + `]}}`
}

func TestResponseBytesAreCapped(t *testing.T) {
	small, big := vectorJSON(2, 10), vectorJSON(50, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.FormValue("query") == "big" {
			fmt.Fprint(w, big)
			return
		}
		fmt.Fprint(w, small)
	}))
	defer srv.Close()
	limit := int64(len(small))
	p, err := NewPrometheus(PrometheusConfig{Address: srv.URL, Timeout: 5 * time.Second, MaxResponseBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// A body of exactly the cap is read whole.
	if got, err := p.Query(context.Background(), "small", time.Now()); err != nil || len(got) != 2 {
		t.Fatalf("answer at the cap: %v %+v", err, got)
	}
	// A larger one is an error, not the first bytes decoded as a result.
	got, err := p.Query(context.Background(), "big", time.Now())
	if !errors.Is(err, ErrTooLarge) || got != nil {
		t.Fatalf("answer over the cap: %v %+v; want ErrTooLarge and no samples", err, got)
	}
	for _, want := range []string{fmt.Sprintf("cap of %d bytes", limit), "--prometheus-max-response-bytes", "sum by", "big"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if errors.Is(err, ErrUnreachable) || errors.Is(err, ErrNoData) {
		t.Errorf("a response over the cap reads as another kind: %v", err)
	}
}

func TestSeriesAreCappedAgainstRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := promserver.Start(ctx, promserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	p, err := NewPrometheus(PrometheusConfig{Address: srv.URL, Timeout: 5 * time.Second, MaxSeries: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// series builds a query that Prometheus answers with n series.
	series := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`label_replace(vector(1), "i", "%d", "", "")`, i)
		}
		return strings.Join(parts, " or ")
	}
	if got, err := p.Query(ctx, series(3), time.Now()); err != nil || len(got) != 3 {
		t.Fatalf("3 series with a cap of 3: %v %+v", err, got)
	}
	got, err := p.Query(ctx, series(4), time.Now())
	if !errors.Is(err, ErrTooLarge) || got != nil {
		t.Fatalf("4 series with a cap of 3: %v %+v; want ErrTooLarge and no samples", err, got)
	}
	for _, want := range []string{"returned 4 series", "cap of 3", "--prometheus-max-series", "sum by"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
