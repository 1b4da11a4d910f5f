// Package stats holds the pure statistics behind Fulcrum's judges:
// time-uniform confidence bounds and e-values for bad-event rates, a
// conditional sequential test of candidate against stable, and chi-square
// tests for sample-ratio mismatch and distribution drift.
//
// # Sequential comparison of bad-event rates
//
// Each request to a version is a trial; a bad event is an error, or a
// response slower than an SLO. Within one step of a rollout the traffic
// split is fixed, so every request goes to the candidate with the same
// share a (estimated as the candidate's share of requests in the window).
//
// Worse (roll back). Null hypothesis H0: p_c <= p_s. Condition on the total
// number B of bad events so far. If p_c = p_s all requests are exchangeable
// and the candidate's count X is hypergeometric; by Hoeffding (1963, thm. 4)
// E f(X) <= E f(Binomial(B, a)) for convex f. For a rate ratio ρ > 1 the
// likelihood ratio L_ρ(X) = (π_ρ/a)^X ((1-π_ρ)/(1-a))^(B-X), with
// π_ρ = ρa/(ρa+1-a), is convex in X, so E L_ρ <= 1; if p_c < p_s, X is
// stochastically smaller (Fisher's noncentral hypergeometric is ordered by
// its odds ratio) and L_ρ increases in X, so again E L_ρ <= 1. Each new bad
// event multiplies L_ρ by a factor of mean at most 1 given the past, so L_ρ
// is a nonnegative supermartingale over bad events, and so is the average
// E = mean_ρ L_ρ over a fixed grid of ρ in [1.1, 10] (uniform in log ρ).
// Ville's inequality gives P_H0(sup_t E_t >= 1/α) <= α: rejecting when E
// crosses 1/α, at any of arbitrarily many looks, falsely rolls back with
// probability at most α. min_t 1/E_t is an always-valid p-value.
//
// NotWorse (advance). Null H1: p_c >= p_s + δ (δ = maxIncrease). For one
// version and a rate q, the average over r in [0.01, 0.99] of the
// likelihood ratios (rq/q)^x ((1-rq)/(1-q))^(n-x) is a supermartingale
// under any rate >= q (the one-trial mean p'r + (1-p')(1-rq)/(1-q) is 1 at
// p' = q and falls as p' grows), and it increases in q. Its level-α set,
// UpperBound, therefore covers the true rate at all times with probability
// >= 1-α; the mirror construction gives LowerBound. With the candidate's
// upper bound at 0.9α and stable's lower bound at 0.1α, the event
// "U_c - L_s < δ at some look" has probability at most α when p_c - p_s >= δ
// (a union bound over the two bounds failing). So a candidate at least δ
// worse than stable is passed with probability at most α.
//
// Between the two (0 < p_c - p_s < δ) either decision may come, as in
// Wald's SPRT with its indifference zone: δ is the increase the test is
// built to catch, not an increase it promises to tolerate.
//
// Steps. The split changes between steps, so each step tests its own window
// from the step's start. Step k spends α_k = α·6/(π²(k+1)²) (StepAlpha);
// summed over all steps this is at most α, so over a whole rollout:
//
//   - P(any false rollback | p_c <= p_s)            <= α = 1 - confidence
//   - P(promotion | p_c >= p_s + δ)                 <= α_k of the last step <= α
//
// These hold however many rounds run and whenever the controller looks,
// because they come from Ville's inequality, not from a fixed sample size.
// Counts read from Prometheus are rounded estimates (increase() extrapolates
// to the window's edges); the bounds are exact for exact counts.
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
