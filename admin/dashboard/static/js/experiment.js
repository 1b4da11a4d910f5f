// experiment.js: the Experiment card of a rollout with
// spec.strategy.experiment: each arm's figures against the control, a chart
// of each arm's value with its interval (the control's value as the
// reference line), the outcome with its reason and winner, and how users
// stay on their arm. The figures come from status.experiment as the
// controller wrote them; nothing is computed here but the layout.

import { h, num, badge, timeEl, subsetStyle } from './format.js';

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null && v !== '') el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// signed prints a lift with its sign, so a loss and a gain read apart.
export const signed = (v) => (v === undefined || v === null ? '—' : `${v > 0 ? '+' : ''}${num(v)}`);
const bounds = (lo, hi, f = num) => (lo === undefined && hi === undefined ? '—' : `[${f(lo)}, ${f(hi)}]`);

// stickinessText says how a user stays on one arm, with the controller's
// defaults (mode Cookie, cookie fulcrum-exp-NAME).
export function stickinessText(r) {
  const st = r.spec.strategy.experiment.stickiness || {};
  switch (st.mode) {
    case 'Header': return `Header: request header ${st.header || '?'} names the arm`;
    case 'None': return 'None: every request is split by weight';
    default: return `Cookie: ${st.cookieName || `fulcrum-exp-${r.metadata.name}`}`;
  }
}

// arms are status.experiment's figures, or the spec's arms and weights
// before the experiment has any.
function armsOf(r) {
  const es = r.status?.experiment;
  if (es?.arms?.length) return es.arms;
  return (r.spec.strategy.experiment.arms || []).map((a) => ({ subset: a.subset, weight: a.weight }));
}

// outcomeText is the outcome in words: what a person does next depends on it.
function outcomeText(es, control) {
  if (!es?.startedAt && !es?.outcome) return es ? 'Starting: waiting for the arms\' pods before the weights go on.' : 'Not started: start the rollout with one of the arms as the candidate.';
  switch (es.outcome) {
    case 'Winner': return es.winner === control ? `The control ${control} won: every other arm is worse.` : `${es.winner} won against the control ${control}.`;
    case 'NoDifference': return `No difference worth having: every arm is within the minimum effect of ${control}, which serves everyone again.`;
    case 'Inconclusive': return `Inconclusive by the deadline (maxDuration): ${control} serves everyone again.`;
    case 'Stopped': return `Stopped before an outcome: ${control} serves everyone again.`;
    default: return 'Running: no outcome yet.';
  }
}

function table(arms, control, winner) {
  const cols = ['Arm', 'Weight', 'Samples', 'Value [lower, upper]', `Lift vs ${control} [lower, upper]`];
  return h('div', { class: 'scroll' }, h('table', { class: 'arms' },
    h('caption', { class: 'sr-only' }, `Arms of the experiment: each arm's reward and its lift against the control ${control}, with their bounds`),
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, arms.map((a) => h('tr', { dataset: { arm: a.subset }, class: a.subset === winner ? 'winner' : null },
      h('th', { scope: 'row', 'data-label': 'Arm' }, a.subset,
        a.subset === control ? h('span', { class: 'muted' }, ' (control)') : null,
        a.subset === winner ? h('span', { class: 'badge outcome-winner' }, 'winner') : null),
      h('td', { 'data-label': 'Weight', class: 'n' }, `${a.weight ?? 0}%`),
      h('td', { 'data-label': 'Samples', class: 'n' }, num(a.samples ?? 0)),
      h('td', { 'data-label': 'Value', class: 'n' }, a.value === undefined ? '—' : `${num(a.value)} ${bounds(a.lower, a.upper)}`),
      h('td', { 'data-label': `Lift vs ${control}`, class: 'n' }, a.subset === control || a.lift === undefined ? '—'
        : `${signed(a.lift)} ${bounds(a.liftLower, a.liftUpper, signed)}`))))));
}

// intervalChart draws one row per arm: its interval as a bar and its value
// as a dot, on a common scale, with the control's value as a dashed line,
// so an arm whose interval clears the line stands out. Null before any
// arm has a value.
export function intervalChart(arms, control, order, width) {
  const shown = arms.filter((a) => a.value !== undefined && a.value !== null);
  if (!shown.length) return null;
  const lo = Math.min(...shown.map((a) => a.lower ?? a.value));
  const hi = Math.max(...shown.map((a) => a.upper ?? a.value));
  const pad = (hi - lo || Math.abs(hi) || 1) * 0.08;
  const [x0, x1] = [lo - pad, hi + pad];
  const m = { top: 8, right: 16, bottom: 26, left: 64 };
  const row = 28;
  const w = Math.max(200, width) - m.left - m.right;
  const height = m.top + m.bottom + row * arms.length;
  const x = (v) => ((v - x0) / (x1 - x0)) * w;
  const ctl = arms.find((a) => a.subset === control);
  const desc = arms.map((a) => (a.value === undefined ? `${a.subset}: no value yet` : `${a.subset} ${num(a.value)} ${bounds(a.lower, a.upper)}`)).join('; ');
  const svg = s('svg', { viewBox: `0 0 ${w + m.left + m.right} ${height}`, width: w + m.left + m.right, height, role: 'img', 'aria-labelledby': 'exp-chart-title exp-chart-desc', class: 'chart exp-chart' },
    s('title', { id: 'exp-chart-title' }, `Each arm's reward with its interval${ctl?.value !== undefined ? `; the dashed line is the control ${control}` : ''}`),
    s('desc', { id: 'exp-chart-desc' }, `${desc}.`));
  const g = s('g', { transform: `translate(${m.left},${m.top})` });
  svg.append(g);
  const ticks = [x0 + pad, (x0 + x1) / 2, x1 - pad];
  for (const t of ticks) {
    g.append(s('line', { x1: x(t), x2: x(t), y1: 0, y2: row * arms.length, class: 'grid' }));
    g.append(s('text', { x: x(t), y: row * arms.length + 16, 'text-anchor': 'middle', class: 'axis' }, num(t)));
  }
  if (ctl?.value !== undefined) {
    g.append(s('line', { x1: x(ctl.value), x2: x(ctl.value), y1: 0, y2: row * arms.length, class: 'control-line', 'stroke-dasharray': '4 3' }));
  }
  arms.forEach((a, i) => {
    const y = row * i + row / 2;
    const { color } = subsetStyle(Math.max(0, order.indexOf(a.subset)));
    g.append(s('text', { x: -8, y, dy: '0.32em', 'text-anchor': 'end', class: 'axis arm-label' }, a.subset));
    if (a.value === undefined || a.value === null) return;
    const item = s('g', { class: 'arm', 'data-arm': a.subset });
    if (a.lower !== undefined && a.upper !== undefined) {
      item.append(s('line', { x1: x(a.lower), x2: x(a.upper), y1: y, y2: y, stroke: color, 'stroke-width': 6, 'stroke-linecap': 'round', opacity: 0.45, class: 'interval' }));
    }
    const dot = s('circle', { cx: x(a.value), cy: y, r: 5, fill: color, class: 'point' });
    dot.append(s('title', {}, `${a.subset} ${num(a.value)} ${bounds(a.lower, a.upper)}`));
    item.append(dot);
    g.append(item);
  });
  return svg;
}

// experimentCard is the card's content, or null when the rollout has no
// experiment. order is the subsets in the weights chart's order, so an arm
// keeps its colour.
export function experimentCard(r, order, width) {
  const spec = r.spec?.strategy?.experiment;
  if (!spec) return null;
  const es = r.status?.experiment;
  const arms = armsOf(r);
  const control = spec.arms?.[0]?.subset || r.spec.stable;
  const winner = es?.outcome === 'Winner' ? es.winner : null;
  const reward = spec.reward || {};
  const facts = h('dl', { class: 'facts exp-facts' },
    h('div', {}, h('dt', {}, 'Outcome'), h('dd', { class: 'exp-outcome' }, es?.outcome ? badge('outcome', es.outcome) : h('span', { class: 'badge outcome-running' }, es?.startedAt ? 'Running' : 'Not running'))),
    h('div', {}, h('dt', {}, 'Winner'), h('dd', { class: 'exp-winner' }, winner || '—')),
    h('div', {}, h('dt', {}, 'Stickiness'), h('dd', { class: 'exp-stickiness' }, stickinessText(r))),
    h('div', {}, h('dt', {}, 'Reward'), h('dd', {}, `${reward.template} (${reward.kind || 'Proportion'}${reward.lowerIsBetter ? ', lower is better' : ''}), min effect ${num(reward.minEffect)}`)),
    h('div', {}, h('dt', {}, 'Started'), h('dd', {}, timeEl(es?.startedAt, { relative: true }))),
    h('div', {}, h('dt', {}, es?.decidedAt ? 'Decided' : 'Last read'), h('dd', {}, timeEl(es?.decidedAt || es?.lastReadAt, { relative: true }))));
  const chart = intervalChart(arms, control, order, width);
  return h('div', { class: 'experiment' }, facts,
    h('p', { class: 'message exp-result' }, outcomeText(es, control), es?.reason ? h('span', { class: 'exp-reason' }, ` ${es.reason}`) : null),
    table(arms, control, winner),
    chart ? h('div', { class: 'chart-box exp-chart-box' }, chart,
      h('p', { class: 'muted exp-chart-note' }, `Dot: the arm's reward; bar: its interval; dashed line: the control ${control}.`))
      : h('p', { class: 'muted' }, 'No reward read yet: the chart appears with the first reading.'));
}
