// split.js: pure arithmetic for the split controls. Weights are integers in
// percent and every function returns a list summing to exactly 100, so the
// controls can never offer a split the API would refuse.

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

// apportion turns non-negative shares into integers summing to total, by the
// largest-remainder method (ties go to the earlier entry).
export function apportion(shares, total) {
  const s = sum(shares);
  const exact = s > 0 ? shares.map((x) => (x * total) / s) : shares.map(() => total / shares.length);
  const out = exact.map(Math.floor);
  let left = total - sum(out);
  const order = exact.map((x, i) => [x - Math.floor(x), i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) out[order[k][1]]++;
  return out;
}

// normalize makes any list of weights sum to 100, keeping their proportions.
export function normalize(weights) {
  if (weights.length === 0) return [];
  return apportion(weights.map((w) => Math.max(0, Number(w) || 0)), 100);
}

// rebalance sets weights[i] to value (clamped to 0..100, rounded) and shares
// the rest among the other entries in proportion to their current weights
// (evenly when they are all zero).
export function rebalance(weights, i, value) {
  const n = weights.length;
  if (n === 0) return [];
  if (n === 1) return [100];
  const v = clamp(Math.round(Number(value) || 0), 0, 100);
  const others = weights.filter((_, j) => j !== i).map((w) => Math.max(0, Number(w) || 0));
  const rest = apportion(others, 100 - v);
  const out = [];
  for (let j = 0, k = 0; j < n; j++) out.push(j === i ? v : rest[k++]);
  return out;
}

// remove drops entry i and gives its weight to the others proportionally.
export function remove(weights, i) {
  return normalize(weights.filter((_, j) => j !== i));
}

// even splits 100 as evenly as integers allow.
export function even(n) {
  return n > 0 ? apportion(new Array(n).fill(1), 100) : [];
}
