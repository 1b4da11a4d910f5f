// chart.js: the weights-over-time chart, drawn as SVG by hand. Weights are
// step functions: each point holds until the next one.

import { subsetStyle } from './format.js';

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null && v !== '') el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// subsetOrder lists a rollout's subsets, stable first then the candidate,
// then any other subset seen in its weights or history, so each keeps its
// colour everywhere.
export function subsetOrder(r, points = []) {
  const seen = [];
  const add = (x) => { if (x && !seen.includes(x)) seen.push(x); };
  add(r.spec?.stable);
  add(r.spec?.candidate || r.status?.candidate);
  const rest = new Set();
  for (const w of r.status?.weights || []) rest.add(w.subset);
  for (const p of points) for (const sub of Object.keys(p.weights)) rest.add(sub);
  [...rest].sort().forEach(add);
  return seen;
}

// weightPoints turns history entries (and live observations) into points
// {t (ms), weights {subset: percent}, label}, sorted by time, dropping
// entries that carry no weights.
export function weightPoints(history = [], live = []) {
  const pts = [];
  for (const e of history) {
    if (!e.weights || !e.weights.length) continue;
    const w = {};
    for (const x of e.weights) w[x.subset] = x.weight;
    pts.push({ t: new Date(e.time).getTime(), weights: w, label: e.type + (e.actor ? ` by ${e.actor}` : '') });
  }
  for (const p of live) pts.push(p);
  pts.sort((a, b) => a.t - b.t);
  return pts;
}

// clip keeps the points from a time on, starting with the weights that held
// at that time, so a long history does not squash the current rollout.
export function clip(points, from) {
  if (!from) return points;
  const before = points.filter((p) => p.t < from);
  const after = points.filter((p) => p.t >= from);
  if (before.length) after.unshift({ ...before[before.length - 1], t: from, label: 'at the start of the range' });
  return after;
}

function timeTicks(t0, t1, count) {
  const span = t1 - t0;
  const steps = [1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400, 604800].map((x) => x * 1000);
  const step = steps.find((x) => span / x <= count) || steps[steps.length - 1];
  const ticks = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);
  return { ticks, step };
}

function tickLabel(t, step) {
  const d = new Date(t);
  if (step >= 86400000) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  const opts = { hour: '2-digit', minute: '2-digit' };
  if (step < 60000) opts.second = '2-digit';
  return d.toLocaleTimeString(undefined, opts);
}

// renderChart draws points for the given subsets into an SVG of the given
// pixel width, up to now. It returns the <svg> element.
export function renderChart({ points, subsets, width, height = 240, now = Date.now(), title = 'Traffic weights over time' }) {
  const m = { top: 12, right: 16, bottom: 28, left: 44 };
  const w = Math.max(200, width) - m.left - m.right;
  const ht = height - m.top - m.bottom;
  const svg = s('svg', { viewBox: `0 0 ${w + m.left + m.right} ${height}`, width: w + m.left + m.right, height, role: 'img', 'aria-labelledby': 'chart-title chart-desc', class: 'chart' });
  const last = points[points.length - 1];
  const desc = last ? `Latest weights: ${subsets.map((x) => `${x} ${last.weights[x] || 0}%`).join(', ')}. ${points.length} changes shown.` : 'No weight changes recorded yet.';
  svg.append(s('title', { id: 'chart-title' }, title), s('desc', { id: 'chart-desc' }, desc));
  const g = s('g', { transform: `translate(${m.left},${m.top})` });
  svg.append(g);
  const y = (v) => ht - (v / 100) * ht;
  for (const v of [0, 25, 50, 75, 100]) {
    g.append(s('line', { x1: 0, x2: w, y1: y(v), y2: y(v), class: 'grid' }));
    g.append(s('text', { x: -6, y: y(v), dy: '0.32em', 'text-anchor': 'end', class: 'axis' }, `${v}%`));
  }
  if (!points.length) {
    g.append(s('text', { x: w / 2, y: ht / 2, 'text-anchor': 'middle', class: 'axis' }, 'No weight changes recorded yet'));
    return svg;
  }
  let t0 = points[0].t;
  let t1 = Math.max(now, last.t);
  if (t1 - t0 < 60000) t0 = t1 - 60000;
  const pad = (t1 - t0) * 0.02;
  t1 += pad;
  const x = (t) => ((t - t0) / (t1 - t0)) * w;
  const { ticks, step } = timeTicks(t0, t1, Math.max(2, Math.floor(w / 90)));
  for (const t of ticks) {
    g.append(s('line', { x1: x(t), x2: x(t), y1: ht, y2: ht + 4, class: 'tick' }));
    g.append(s('text', { x: x(t), y: ht + 18, 'text-anchor': 'middle', class: 'axis' }, tickLabel(t, step)));
  }
  g.append(s('line', { x1: 0, x2: w, y1: ht, y2: ht, class: 'baseline' }));
  subsets.forEach((sub, i) => {
    const { color, dash } = subsetStyle(i);
    let d = '';
    points.forEach((p, k) => {
      const v = p.weights[sub] || 0;
      const px = x(p.t);
      d += k === 0 ? `M${px.toFixed(1)},${y(v).toFixed(1)}` : `H${px.toFixed(1)}V${y(v).toFixed(1)}`;
    });
    d += `H${x(Math.max(now, last.t)).toFixed(1)}`;
    g.append(s('path', { d, fill: 'none', stroke: color, 'stroke-width': 2.5, 'stroke-dasharray': dash, class: 'series', 'data-subset': sub }));
    for (const p of points) {
      const v = p.weights[sub] || 0;
      const dot = s('circle', { cx: x(p.t).toFixed(1), cy: y(v).toFixed(1), r: 3.5, fill: color, class: 'point' });
      dot.append(s('title', {}, `${new Date(p.t).toLocaleString()} · ${sub} ${v}% · ${p.label}`));
      g.append(dot);
    }
  });
  return svg;
}
