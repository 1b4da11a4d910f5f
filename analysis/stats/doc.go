// Package stats holds the pure statistics behind Fulcrum's judges:
// time-uniform confidence bounds and e-values for bad-event rates, a
// conditional sequential test of candidate against stable, and chi-square
// tests for sample-ratio mismatch and distribution drift.
//
// # Sequential comparison of bad-event rates over a whole rollout
//
// Each request to a version is a trial; a bad event is an error, or a
// response slower than an SLO. A rollout moves through steps k = 1, 2, ...;
// within step k the traffic split is fixed and every request goes to the
// candidate with the same probability a_k. The candidate's rate p_c and stable's p_s do not
// depend on the split, so evidence from every step counts: a Segment holds
// one step's counts, and the judge sees all of the rollout's segments.
//
// Worse (roll back). Null hypothesis H0: p_c <= p_s. Inside step k,
// condition on the step's bad events. If p_c = p_s every bad event is the
// candidate's with probability a_k, independently of the past (exactly: the
// candidate's count X_k among the step's B_k bad events is hypergeometric,
// which Hoeffding (1963, thm. 4) bounds in convex order by
// Binomial(B_k, a_k)); if p_c < p_s that probability is smaller. For a rate
// ratio ρ > 1 the likelihood ratio of one bad event is π/a_k if it is the
// candidate's and (1-π)/(1-a_k) if not, with π = ρa_k/(ρa_k+1-a_k); its mean
// given the past is q·π/a_k + (1-q)(1-π)/(1-a_k) for the true probability
// q, which is 1 at q = a_k and increases in q, so it is at most 1 under H0.
// The step's ratio is L_k(ρ) = ρ^{X_k}/(1+a_k(ρ-1))^{B_k}.
//
// The argument takes a_k as the probability the mesh routes a request to
// the candidate. The judge uses the step's observed share of requests
// instead, which does not trust the mesh to apply the weights exactly (a
// mesh that sends the candidate more than its weight would otherwise make
// an equal candidate look worse). Given the step's request totals, the
// candidate's bad count under p_c = p_s is exactly hypergeometric, so the
// bound E L_k <= 1 holds at every look; the observed share differs from the
// routing probability by a relative 1/√(requests), far below the noise of
// the bad events the test is about (requests ≫ bad events). The property
// tests draw every split at random and measure the bound with the observed
// share.
//
// Over the rollout, fix ρ and multiply: M_t(ρ) = Π_{j<k} L_j(ρ) · L_k,t(ρ),
// the completed steps' ratios times the current step's so far. Every bad
// event of every step multiplies M by a factor of conditional mean at most
// 1, and the split a_k of a step is chosen (by the controller, from the
// data) before that step's events arrive, so M(ρ) is a nonnegative
// supermartingale with M_0 = 1 across steps, whenever and however the steps
// change. A product of conditionally mean-at-most-one factors is the whole
// argument: no α is spent per step. The test statistic averages these
// products over a fixed prior (a grid of 48 ρ in [1.1, 10], uniform in
// log ρ):
//
//	E_t = mean_ρ Π_j L_j(ρ)
//
// An average of supermartingales under one fixed prior is a supermartingale
// (the prior does not look at the data), so Ville's inequality gives
// P_H0(sup_t E_t >= 1/α) <= α: rejecting when E crosses 1/α, at any of
// arbitrarily many looks in any step, falsely rolls back with probability
// at most α for the whole rollout. min_t 1/E_t is an always-valid p-value.
// The mixture of products, not the product of per-step mixtures, is what
// lets a common ratio accumulate evidence across steps: each per-step
// mixture pays for not knowing ρ (about log(grid range) + ½·log(bad events)
// nats) again, the mixture of products pays once. WorseTest keeps
// log Π_j L_j(ρ) per grid point for the completed steps.
//
// What a step's evidence must be for this to hold: its counts from its own
// start to a look (or to its end), never mixed with another step's split,
// and never dropped after a look once used (dropping a step whose ratio had
// fallen below 1 would be a restart, which breaks the supermartingale).
// Requests not counted at all (the last seconds of a step after its final
// look) do no harm: data never looked at cannot bias the test.
//
// NotWorse (advance, promote). Null H1: p_c >= p_s + δ (δ = maxIncrease).
// For one version and a rate q, the average over r in [0.1, 0.99] of the
// likelihood ratios r^x ((1-rq)/(1-q))^(n-x) is a supermartingale under any
// rate >= q (the one-trial mean p'r + (1-p')(1-rq)/(1-q) is 1 at p' = q and
// falls as p' grows), and it increases in q. Its level-α set, UpperBound,
// therefore covers the true rate at all times with probability >= 1-α; the
// mirror construction gives LowerBound. Both are taken over every request
// the version served in the rollout (Pooled): the candidate's requests are
// Bernoulli(p_c) trials whatever the split, and the steps only decide how
// fast they come. With the candidate's upper bound at 0.9α and stable's
// lower bound at 0.1α, the event "U_c - L_s < δ at some look of the rollout"
// has probability at most α when p_c - p_s >= δ (a union bound over the two
// bounds failing). So a candidate at least δ worse than stable is passed,
// at any step, with probability at most α.
//
// Between the two (0 < p_c - p_s < δ) either decision may come, as in
// Wald's SPRT with its indifference zone: δ is the increase the test is
// built to catch, not an increase it promises to tolerate.
//
// So over a whole rollout, however many rounds run, whenever the controller
// looks and however it moves between steps:
//
//   - P(any false rollback | p_c <= p_s)     <= α = 1 - confidence
//   - P(any NotWorse | p_c >= p_s + δ)       <= α, so P(promotion) <= α
//
// The property tests (property_test.go) check both on thousands of
// simulated rollouts with data-driven steps and a look after every batch,
// next to a fixed-sample test looked at as often, which breaks the bound.
// Counts read from Prometheus are rounded estimates (increase()
// extrapolates to the window's edges); the bounds are exact for exact
// counts.
//
// # Sample-ratio mismatch and drift
//
// SampleRatio is Pearson's goodness-of-fit chi-square of the observed
// request split against the weights; Drift is the chi-square test of
// homogeneity between candidate and stable histograms plus the population
// stability index, with a PSI noise floor χ²(k-1, 1-α)·(1/n_c + 1/n_s) that
// grows as samples shrink. These are fixed-sample tests at each look: their
// per-look error rate is α, and the controller's failureLimit (consecutive
// failed rounds) is what keeps repeated looks from rolling back on noise.
package stats
