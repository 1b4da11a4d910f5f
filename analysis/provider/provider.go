// Package provider runs metric queries. It speaks transport only: what is
// asked is decided by package templates, what the numbers mean by package
// judge. Errors are typed so callers can tell a provider that is down from a
// query that is wrong from a window with no data, with errors.Is/As.
package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Provider runs one instant query.
type Provider interface {
	// Query evaluates query at time at and returns one sample per series.
	// An empty result is an error wrapping ErrNoData.
	Query(ctx context.Context, query string, at time.Time) ([]Sample, error)
}

// Sample is one series of an instant-query result.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Kinds of query failure, for errors.Is.
var (
	// ErrUnreachable: the provider could not be reached or did not answer
	// in time (connection refused, TLS failure, timeout, 5xx).
	ErrUnreachable = errors.New("metrics provider unreachable")
	// ErrBadQuery: the provider rejected the query (syntax, wrong type, 4xx).
	ErrBadQuery = errors.New("metrics query rejected")
	// ErrNoData: the query ran and returned no series.
	ErrNoData = errors.New("metrics query returned no data")
	// ErrTooLarge: the response passed a cap (PrometheusConfig.MaxResponseBytes
	// or MaxSeries); nothing of it is used.
	ErrTooLarge = errors.New("metrics query result too large")
	// ErrUnknownProvider: a provider type Fulcrum does not implement.
	ErrUnknownProvider = errors.New("unknown metrics provider type")
)

// QueryError says which query failed, how and why.
type QueryError struct {
	// Kind is ErrUnreachable, ErrBadQuery, ErrNoData or ErrTooLarge.
	Kind error
	// Provider names the provider (its address).
	Provider string
	Query    string
	Err      error
}

func (e *QueryError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%s: %v: %s", e.Provider, e.Kind, e.Query)
	}
	return fmt.Sprintf("%s: %v: %s: %v", e.Provider, e.Kind, e.Query, e.Err)
}

// Unwrap exposes both the kind and the cause to errors.Is/As.
func (e *QueryError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// New builds the provider of type t with cfg as given: the caller decides
// the address and the credentials (package connections keeps a template
// that names its own address from receiving the controller's). Unknown
// types are an error wrapping ErrUnknownProvider, never a silent default.
func New(t v1alpha1.ProviderType, cfg PrometheusConfig) (Provider, error) {
	switch t {
	case v1alpha1.ProviderPrometheus, "":
		return NewPrometheus(cfg)
	default:
		return nil, fmt.Errorf("provider.type %q: %w; the supported type is %q", t, ErrUnknownProvider, v1alpha1.ProviderPrometheus)
	}
}
