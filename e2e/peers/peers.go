// Package peers measures Fulcrum against Flagger and Argo Rollouts, the
// controllers teams already run, on the same local environment
// (e2e/localenv) with the same data-plane traffic (e2e/dataplane, the model
// servers and the load generator of the end-to-end rig).
//
// Each system gets the same profiles (Profiles): a stable version at 0.5%
// errors and a candidate at 2% (bad) or 0.5% (healthy), at 1,000 or 1
// request/s, 10% steps up to 50%, a 10 s analysis interval and the same
// tolerance (the candidate at most 0.5 points worse than stable: success
// rate at least 99%). A run starts the way a user starts a rollout of that
// system, then counts, from the load generator's answers, what the candidate
// served until the system reached its outcome. Runs are sequential, each in
// its own namespace with its own controller process; Report turns repeated
// runs into one table of medians and ranges.
//
// The peers are built from their Go modules (e2e/tools/peers) into the
// environment's binary cache; their CRDs come from the same modules.
package peers

import (
	"context"
	"fmt"
	"time"
)

// Profile is one traffic and candidate setting, the same for every system.
type Profile struct {
	// Name is short and stable: it keys the table's rows.
	Name string
	// Rate of the load through the data-plane stand-in, requests per second.
	Rate float64
	// StableErrors and CandidateErrors are the shares of answers that are
	// HTTP 500.
	StableErrors, CandidateErrors float64
}

// Bad says whether the candidate is worse than the tolerance allows: the
// right outcome is a rollback.
func (p Profile) Bad() bool { return p.CandidateErrors-p.StableErrors > Tolerance }

// Tolerance is how much worse than stable (a share of requests) the
// candidate may be: every system is configured with it.
const Tolerance = 0.005

// Shared settings of every system's canary.
const (
	StepWeight = 10               // percent per step
	MaxWeight  = 50               // last step before promotion
	Interval   = 10 * time.Second // analysis interval (and Argo's pause per step)
	// MinSuccessRate is the peers' threshold: stable's 99.5% less Tolerance.
	MinSuccessRate = 0.99
	// FlaggerThreshold is Flagger's failed checks before a rollback.
	FlaggerThreshold = 5
	// ArgoFailureLimit is how many failed measurements Argo allows (the
	// next one aborts).
	ArgoFailureLimit = 3
	// QueryWindow is the range of the peers' rate() queries (Flagger's
	// documented metric interval).
	QueryWindow = "1m"
)

// Profiles are the benchmark's four profiles.
var Profiles = []Profile{
	{Name: "bad-1000rps", Rate: 1000, StableErrors: 0.005, CandidateErrors: 0.02},
	{Name: "healthy-1000rps", Rate: 1000, StableErrors: 0.005, CandidateErrors: 0.005},
	{Name: "bad-1rps", Rate: 1, StableErrors: 0.005, CandidateErrors: 0.02},
	{Name: "healthy-1rps", Rate: 1, StableErrors: 0.005, CandidateErrors: 0.005},
}

// Outcome kinds, the same words for every system; Result.Phase keeps the
// system's own phase.
const (
	Promoted   = "promoted"
	RolledBack = "rolled back"
	Paused     = "paused"    // waits for a person (Fulcrum's inconclusive limit)
	Undecided  = "undecided" // no outcome within the run's time limit
)

// Result is one run of one system on one profile.
type Result struct {
	System, Profile string
	// Outcome is one of Promoted, RolledBack, Paused, Undecided; Phase is
	// the system's own final phase ("Succeeded", "Degraded", ...).
	Outcome, Phase string
	// Seconds from the start of the rollout to the outcome (or to the time
	// limit).
	Seconds float64
	// CandidateRequests and CandidateErrors are the candidate's answers
	// (and its 5xx among them) from the start to the outcome, counted by
	// the load generator.
	CandidateRequests, CandidateErrors int
	// MaxWeight is the largest candidate weight seen on the mesh.
	MaxWeight int
	// Err is set when the run itself failed (setup, controller crash).
	Err string
}

// System is one controller under test.
type System interface {
	// Name as printed in the table.
	Name() string
	// Setup deploys the model's stable version in m's namespace the way
	// this system expects, starts the system's controller for that
	// namespace, and waits until the stable version serves through the
	// system's routing. Everything is torn down through the Cleaner.
	Setup(ctx context.Context, c Cleaner, m *Model, p Profile) (Rollout, error)
}

// Rollout is one system's rollout of the candidate, set up and waiting.
type Rollout interface {
	// Start begins the rollout of the candidate, as a user of the system
	// would.
	Start(ctx context.Context) error
	// Observe reads the system's current state: its own phase, the
	// outcome once there is one ("" before), and the candidate's weight.
	Observe(ctx context.Context) (Observation, error)
}

// Observation is a system's state at one look.
type Observation struct {
	Phase, Outcome string
	Weight         int
}

// Cleaner registers teardown functions (rig.Stack, *testing.T).
type Cleaner interface{ Cleanup(func()) }

func (r Result) String() string {
	if r.Err != "" {
		return fmt.Sprintf("%s %s: error: %s", r.System, r.Profile, r.Err)
	}
	return fmt.Sprintf("%s %s: %s (%s) after %.1fs, candidate %d requests, %d errors, max weight %d%%",
		r.System, r.Profile, r.Outcome, r.Phase, r.Seconds, r.CandidateRequests, r.CandidateErrors, r.MaxWeight)
}
