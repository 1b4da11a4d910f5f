package analysis

import "github.com/fulcrum-ml/fulcrum/api/v1alpha1"

// AdvanceForEvidence says whether the controller may move to the next step
// after an Inconclusive round because traffic, not doubt, is what is
// missing: no metric failed or errored, and every metric without a verdict
// saw fewer than minSamples candidate requests in the step. The controller
// calls it once minStepDuration has passed at the step, and never for the
// last step (100%, promotion): promotion always needs a Pass.
//
// At low traffic a step's exposure is small in absolute terms (fewer than
// minSamples candidate requests per minStepDuration), so moving weight up
// costs few requests and brings evidence sooner; at high traffic the rule
// never fires. The sequential judges stay valid under any such
// data-dependent change of weights, because each step's test starts afresh
// on its own α share (see package stats).
func AdvanceForEvidence(round v1alpha1.AnalysisRound, minSamples int64, nextIsLast bool) bool {
	if nextIsLast || round.Verdict != v1alpha1.VerdictInconclusive {
		return false
	}
	for _, m := range round.Metrics {
		switch m.Verdict {
		case v1alpha1.VerdictFail, v1alpha1.VerdictError:
			return false
		case v1alpha1.VerdictInconclusive:
			if m.CandidateSamples >= minSamples {
				return false
			}
		}
	}
	return true
}
