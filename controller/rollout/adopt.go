package rollout

import (
	"fmt"
	"strings"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
)

// A new ModelRollout never moves traffic. The weights it finds on its routes
// are adopted: stable at 100% is the ordinary idle state; anything else
// becomes a manual split, recorded with the weights, until a person or a
// pipeline acts (resume, split, start, roll back).

// fresh reports whether the controller has never managed this rollout's
// weights: no weights were ever recorded in status.
func (x *decider) fresh() bool {
	return len(x.r.Status.Weights) == 0 && (x.st.Phase == "" || x.st.Phase == v1alpha1.PhaseStable)
}

// adoptionProblem is set when a fresh rollout's managed routes disagree:
// adopting one route's weights would move the others, so nothing is written
// until they agree.
func (x *decider) adoptionProblem() string {
	if !x.fresh() || len(x.o.RouteWeights) < 2 {
		return ""
	}
	var first map[string]int32
	var firstRoute string
	for _, route := range sortedRoutes(x.o.RouteWeights) {
		rw := x.o.RouteWeights[route]
		if first == nil {
			first, firstRoute = rw, route
			continue
		}
		if !router.WeightsEqual(nonZero(first), nonZero(rw)) {
			return fmt.Sprintf("the managed routes carry different weights (%s: %s; %s: %s): Fulcrum adopts existing weights without moving traffic, so make the routes agree first",
				firstRoute, formatWeights(nonZero(first)), route, formatWeights(nonZero(rw)))
		}
	}
	return ""
}

// adopt takes over the weights found on a fresh rollout's routes.
func (x *decider) adopt() {
	if !x.fresh() || len(x.o.RouteWeights) == 0 {
		return
	}
	found := nonZero(x.o.RouteWeights[sortedRoutes(x.o.RouteWeights)[0]])
	stable := x.r.Spec.Stable
	if len(found) == 0 || (len(found) == 1 && found[stable] == 100) {
		return
	}
	x.applied = found
	if c := x.r.Spec.Candidate; c != "" {
		// The rollout the spec asks for continues from where the traffic
		// is, not from its first step: resume picks the largest step not
		// above the candidate's adopted weight.
		x.st.Candidate = c
		step := int32(0)
		for i, w := range steps(x.r) {
			if w <= found[c] && w < 100 {
				step = int32(i)
			}
		}
		x.st.Step = &step
		x.st.RolloutStartedAt = &x.now
	}
	reason := fmt.Sprintf("adopted the weights on %s (%s) as a manual split; nothing moved. Resume, split, start or roll back to change them",
		x.r.Spec.RouteRef(), formatWeights(found))
	x.transition(HistoryAdopted, v1alpha1.PhaseManualSplit, ActorController, reason, "", found)
	x.event(EventTypeNormal, ReasonAdopted, reason)
}

func nonZero(m map[string]int32) map[string]int32 {
	out := map[string]int32{}
	for k, v := range m {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

func verb(a v1alpha1.IntentAction) string { return strings.ToLower(string(a)) }
