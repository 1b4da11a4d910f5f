// Package analysis judges a rollout's step from metrics: it renders query
// templates for every subset, asks a metrics provider, and turns the numbers
// into one verdict per metric with the evidence behind it.
//
// The controller depends only on the Analyzer interface below; the engine
// that implements it lives in this package and its subpackages.
package analysis

import (
	"context"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Request is everything one analysis round needs to know about a rollout.
type Request struct {
	// Namespace and Name of the ModelRollout.
	Namespace, Name string
	// Service is the model's Kubernetes Service, as metrics name it
	// (destination_service_name).
	Service string
	// Stable (the baseline) and Candidate subset names.
	Stable, Candidate string
	// Weights currently set on the mesh, by subset.
	Weights map[string]int32
	// Step is the index of the current step in spec.strategy.canary.steps.
	// The engine copies it into the round and into each sequential
	// metric's step evidence.
	Step int32
	// Spec is the rollout's analysis configuration (never nil).
	Spec *v1alpha1.Analysis
	// WindowStart is the start of the evidence window (the current step's
	// start); Now is its end.
	WindowStart, Now time.Time
	// Previous is the previous round's results for this step, so judges that
	// carry state across looks (always-valid p-values) can continue.
	Previous []v1alpha1.MetricResult
	// Evidence is what sequential metrics counted in the rollout's
	// completed steps (status.analysis.evidence): their tests continue over
	// the whole rollout with one error budget.
	Evidence []v1alpha1.MetricEvidence
}

// Analyzer runs one analysis round for a rollout. It returns a round whose
// verdict is Error (never Pass) when metrics cannot be read; err is reserved
// for a request the analyzer cannot even start (a nil spec, say).
type Analyzer interface {
	Analyze(ctx context.Context, req Request) (v1alpha1.AnalysisRound, error)
}
