// format.js: small formatting and DOM helpers shared by the views.

// h builds an element: h('td', {class: 'x', onclick: f}, 'text', child...).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// age says how long ago t was, in the largest sensible unit.
export function age(t, now = Date.now()) {
  if (!t) return '';
  const s = Math.max(0, Math.round((now - new Date(t).getTime()) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h${m % 60 ? `${m % 60}m` : ''}`;
  return `${Math.floor(hr / 24)}d`;
}

export function time(t) {
  if (!t) return '';
  const d = new Date(t);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// timeEl renders a <time> with the relative age visible and the exact time
// in its title and datetime.
export function timeEl(t, { relative = false } = {}) {
  if (!t) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: t, title: new Date(t).toISOString() }, relative ? `${age(t)} ago` : time(t));
}

// num prints a metric value compactly: ratios with enough digits to see a
// 0.1% change, large numbers without noise.
export function num(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2).replace(/\.?0+$/, '');
  if (a >= 0.0001) return v.toPrecision(3).replace(/\.?0+$/, '');
  return v.toExponential(2);
}

export function weightsText(weights) {
  if (!weights || !weights.length) return '—';
  return weights.map((w) => `${w.subset} ${w.weight}%`).join(' · ');
}

export const key = (r) => `${r.metadata.namespace}/${r.metadata.name}`;

// badge renders a phase or verdict as text plus colour (never colour alone).
export function badge(kind, value) {
  if (!value) return h('span', { class: 'muted' }, '—');
  return h('span', { class: `badge ${kind}-${value.toLowerCase()}` }, value);
}

// PALETTE gives each subset a colour and a dash pattern, so lines stay
// distinguishable without colour vision.
const PALETTE = [
  ['#2563eb', ''], ['#d97706', '6 3'], ['#059669', '2 3'], ['#db2777', '8 3 2 3'],
  ['#7c3aed', '4 4'], ['#0891b2', '1 2'], ['#65a30d', '10 4'], ['#dc2626', '3 3 1 3'],
];
export function subsetStyle(index) {
  const [color, dash] = PALETTE[index % PALETTE.length];
  return { color, dash };
}
