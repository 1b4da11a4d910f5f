// list.js: every rollout with its phase, versions, weights and age, filtered
// by namespace (asked of the server) and phase (applied here), kept live by
// the event stream.

import { api, subscribe } from './api.js';
import { h, age, key, badge, subsetStyle } from './format.js';
import { subsetOrder } from './chart.js';
import { isNewer, PHASES } from './store.js';
import { pendingApproval } from './gates.js';

export function weightBar(r) {
  const weights = r.status?.weights || [];
  const order = subsetOrder(r);
  const bar = h('div', { class: 'wbar', 'aria-hidden': 'true' });
  for (const w of weights) {
    if (!w.weight) continue;
    const seg = h('span', { class: 'wseg', title: `${w.subset} ${w.weight}%` });
    seg.style.width = `${w.weight}%`;
    seg.style.background = subsetStyle(order.indexOf(w.subset)).color;
    bar.append(seg);
  }
  const text = weights.length ? weights.map((w) => `${w.subset} ${w.weight}%`).join(' · ') : 'no weights yet';
  return h('div', { class: 'weights' }, bar, h('span', { class: 'wtext' }, text));
}

export function listView({ params, setParams }) {
  const namespace = params.get('namespace') || '';
  let phase = params.get('phase') || '';
  const items = new Map();
  let error = null;
  let loaded = false;
  const flashed = new Set();

  const nsInput = h('input', { id: 'f-namespace', type: 'search', list: 'ns-options', value: namespace, placeholder: 'all namespaces', autocomplete: 'off', spellcheck: 'false' });
  const nsOptions = h('datalist', { id: 'ns-options' });
  const phaseSelect = h('select', { id: 'f-phase' }, h('option', { value: '' }, 'All phases'), PHASES.map((p) => h('option', { value: p, selected: p === phase }, p)));
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter rollouts', onsubmit: (e) => { e.preventDefault(); setParams({ namespace: nsInput.value.trim(), phase }); } },
    h('div', { class: 'field' }, h('label', { for: 'f-namespace' }, 'Namespace'), nsInput, nsOptions),
    h('div', { class: 'field' }, h('label', { for: 'f-phase' }, 'Phase'), phaseSelect),
    h('button', { type: 'submit', class: 'btn' }, 'Apply'));
  nsInput.addEventListener('change', () => setParams({ namespace: nsInput.value.trim(), phase }));
  phaseSelect.addEventListener('change', () => {
    phase = phaseSelect.value;
    setParams({ namespace, phase }, { replace: true });
    render();
  });

  const status = h('p', { class: 'count', role: 'status', 'aria-live': 'polite' });
  const body = h('div', { class: 'list-body' });
  const el = h('section', { class: 'view list', 'aria-labelledby': 'list-title' },
    h('h1', { id: 'list-title' }, 'Rollouts'), filters, status, body);

  function row(r) {
    const ns = r.metadata.namespace;
    const name = r.metadata.name;
    const candidate = r.spec?.candidate || r.status?.candidate || '';
    const tr = h('tr', { dataset: { key: key(r), phase: r.status?.phase || '' } },
      h('td', { 'data-label': 'Rollout' }, h('div', {},
        h('a', { href: `#/rollouts/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`, class: 'rname' }, h('span', { class: 'ns' }, `${ns}/`), name),
        r.status?.message ? h('div', { class: 'msg' }, r.status.message) : null)),
      h('td', { 'data-label': 'Phase' }, badge('phase', r.status?.phase || 'Pending'),
        pendingApproval(r) ? h('span', { class: 'badge gate-waiting', title: `gate ${pendingApproval(r).name} waits for a person's approval` }, 'Approval needed') : null),
      h('td', { 'data-label': 'Stable' }, r.spec?.stable || '—'),
      h('td', { 'data-label': 'Candidate' }, candidate || h('span', { class: 'muted' }, 'none')),
      h('td', { 'data-label': 'Weights', class: 'wcell' }, weightBar(r)),
      h('td', { 'data-label': 'Age' }, h('time', { datetime: r.metadata.creationTimestamp, title: r.metadata.creationTimestamp }, age(r.metadata.creationTimestamp))));
    if (flashed.has(key(r))) tr.classList.add('flash');
    return tr;
  }

  function render() {
    const all = [...items.values()].sort((a, b) => key(a).localeCompare(key(b)));
    nsOptions.replaceChildren(...[...new Set(all.map((r) => r.metadata.namespace))].sort().map((n) => h('option', { value: n })));
    const shown = all.filter((r) => !phase || (r.status?.phase || '') === phase);
    if (error) {
      status.textContent = '';
      body.replaceChildren(h('div', { class: 'problem', role: 'alert' }, h('strong', {}, error.title || 'Error'), ' ', error.detail || error.message));
      return;
    }
    if (!loaded) { status.textContent = 'Loading rollouts…'; body.replaceChildren(); return; }
    status.textContent = `${shown.length} of ${all.length} rollout${all.length === 1 ? '' : 's'}${namespace ? ` in ${namespace}` : ''}`;
    if (!shown.length) {
      body.replaceChildren(h('p', { class: 'empty' }, all.length ? 'No rollout matches these filters.' : 'No rollouts yet. Create a ModelRollout to see it here.'));
      return;
    }
    body.replaceChildren(h('table', { class: 'rollouts' },
      h('caption', { class: 'sr-only' }, 'Rollouts, live'),
      h('thead', {}, h('tr', {}, ['Rollout', 'Phase', 'Stable', 'Candidate', 'Weights', 'Age'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, shown.map(row))));
  }

  async function snapshot() {
    try {
      const list = await api.list(namespace);
      const fresh = new Map();
      for (const r of list.items || []) {
        const old = items.get(key(r));
        fresh.set(key(r), old && !isNewer(old, r) ? old : r);
      }
      items.clear();
      for (const [k, v] of fresh) items.set(k, v);
      error = null;
      loaded = true;
    } catch (e) {
      if (!e.unreachable) error = e;
    }
    render();
  }

  function flash(k) {
    flashed.add(k);
    setTimeout(() => { flashed.delete(k); el.querySelector(`tr[data-key="${CSS.escape(k)}"]`)?.classList.remove('flash'); }, 1500);
  }

  const sub = subscribe(api.eventsPath(namespace), {
    onOpen: snapshot,
    onEvent(type, data) {
      if (type === 'rollout' && data?.metadata) {
        const k = key(data);
        const old = items.get(k);
        if (!isNewer(old, data)) return;
        items.set(k, data);
        // Highlight real changes only: the stream opens by replaying every
        // rollout, which must not light up the whole list.
        if (old ? old.metadata.resourceVersion !== data.metadata.resourceVersion : loaded) flash(k);
      } else if (type === 'deleted' && data?.name) {
        items.delete(`${data.namespace}/${data.name}`);
      } else return;
      render();
    },
  });
  snapshot();
  const tick = setInterval(render, 30000);
  render();
  return { el, destroy() { sub.close(); clearInterval(tick); } };
}
