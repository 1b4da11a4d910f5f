// rollout.js: one rollout: what it is doing, its weights over time, the step
// timeline, every analysis round with the numbers behind each verdict, the
// history with actors and reasons, and the actions the user may take.

import { api, subscribe } from './api.js';
import { h, age, num, badge, timeEl, weightsText, subsetStyle } from './format.js';
import { clip, renderChart, subsetOrder, weightPoints } from './chart.js';
import { actionBar, availableActions, openAction } from './actions.js';
import { weightBar } from './list.js';
import { experimentCard } from './experiment.js';
import { gatesCard } from './gates.js';
import { isNewer } from './store.js';

const sameWeights = (a, b) => {
  const ka = Object.keys(a).filter((k) => a[k]).sort();
  const kb = Object.keys(b).filter((k) => b[k]).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
};

function section(id, title, ...content) {
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...content);
}

function summary(r) {
  const st = r.status || {};
  const candidate = r.spec?.candidate || st.candidate;
  const pending = r.spec?.intent && r.spec.intent.id !== st.observedIntent ? r.spec.intent : null;
  return h('div', { class: 'summary' },
    h('dl', { class: 'facts' },
      h('div', {}, h('dt', {}, 'Phase'), h('dd', {}, badge('phase', st.phase || 'Pending'))),
      h('div', {}, h('dt', {}, 'Stable'), h('dd', {}, r.spec?.stable || '—')),
      h('div', {}, h('dt', {}, 'Candidate'), h('dd', {}, candidate || 'none')),
      h('div', {}, h('dt', {}, 'Weights'), h('dd', { class: 'wcell' }, weightBar(r))),
      h('div', {}, h('dt', {}, 'Rollout started'), h('dd', {}, timeEl(st.rolloutStartedAt, { relative: true }))),
      h('div', {}, h('dt', {}, 'Created'), h('dd', {}, timeEl(r.metadata.creationTimestamp, { relative: true })))),
    st.message ? h('p', { class: 'message' }, st.message) : null,
    pending ? h('p', { class: 'pending', role: 'status' }, `Waiting for the controller to apply ${pending.action}`, pending.actor ? ` requested by ${pending.actor}` : '', pending.reason ? `: “${pending.reason}”` : '', '.') : null);
}

function steps(r) {
  const canary = r.spec?.strategy?.canary;
  if (r.spec?.strategy?.experiment) return h('p', { class: 'muted' }, 'An experiment has no steps: every arm has its weight from the start. The Experiment card shows its progress.');
  if (!canary?.steps?.length) return h('p', { class: 'muted' }, 'No canary steps: traffic moves only by manual split.');
  const st = r.status || {};
  // When each step was reached in the current rollout, from the history.
  const reached = {};
  let rolledBackAt = null;
  let promotedAt = null;
  for (const e of st.history || []) {
    if (e.type === 'Started') { for (const k of Object.keys(reached)) delete reached[k]; rolledBackAt = null; promotedAt = null; }
    if (e.step !== undefined && e.step !== null) reached[e.step] = e.time;
    if (e.type === 'RolledBack') rolledBackAt = e.time;
    if (e.type === 'Promoted') promotedAt = e.time;
  }
  // After a rollback the timeline shows how far the rollout got: the steps
  // it passed, and the one it was rolled back from.
  const last = Math.max(-1, ...Object.keys(reached).map(Number));
  const stopped = st.phase === 'RolledBack' && rolledBackAt ? last : -1;
  const inShadow = !!st.shadow && (st.phase === 'Progressing' || st.phase === 'Paused');
  const current = inShadow ? -1 : st.phase === 'Progressing' || st.phase === 'Paused' ? st.step ?? -1
    : st.phase === 'Promoted' ? canary.steps.length : stopped;
  const clock = (t) => new Date(t).toLocaleTimeString();
  return h('ol', { class: 'steps' }, shadowStage(canary, st, inShadow, clock), canary.steps.map((w, i) => {
    const state = i < current ? 'done' : i === current ? (i === stopped ? 'stopped' : 'current') : 'todo';
    // A step is done when the next one was reached (the last one when the
    // rollout was promoted).
    const doneAt = reached[i + 1] || (i === canary.steps.length - 1 ? promotedAt : null);
    let note = 'to do';
    if (state === 'current') note = `current${st.stepStartedAt ? ` since ${age(st.stepStartedAt)}` : ''}`;
    // The warm-up gate holds this step's weight until the candidate is warm.
    if (state === 'current' && st.warmup && st.warmup.weight === w) note = `warming up ${st.warmup.subset}: ${st.warmup.message || 'waiting for its latency'}`;
    else if (state === 'stopped') note = `rolled back at ${clock(rolledBackAt)}`;
    else if (state === 'done') note = doneAt ? `done at ${clock(doneAt)}` : 'done';
    return h('li', { class: `step ${state}`, 'aria-current': state === 'current' ? 'step' : null },
      h('span', { class: 'step-n' }, `Step ${i + 1}`), h('strong', {}, `${w}%`),
      h('span', { class: 'step-note' }, note));
  }),
  canary.minStepDuration ? h('li', { class: 'step-meta muted' }, `at least ${canary.minStepDuration} per step`) : null);
}

// shadowStage is the timeline's first item when the canary has a shadow
// stage: requests copied to the candidate while no user is answered by it.
function shadowStage(canary, st, inShadow, clock) {
  if (!canary.shadow) return null;
  const pct = canary.shadow.percent || 100;
  let since = null; let passedAt = null; let failedAt = null;
  for (const e of st.history || []) {
    if (e.type === 'Started') { passedAt = null; failedAt = null; since = e.time; }
    if (e.type === 'ShadowPassed') passedAt = e.time;
    if (e.type === 'RolledBack' && !passedAt && (e.reason || '').includes('in shadow')) failedAt = e.time;
  }
  let state = 'todo'; let note = 'to do';
  if (inShadow) {
    state = 'current';
    note = st.shadow.startedAt ? `copying ${pct}% to ${st.shadow.subset} since ${age(st.shadow.startedAt)}` : 'waiting for the candidate\'s pods';
  } else if (passedAt) { state = 'done'; note = `passed at ${clock(passedAt)}`; }
  else if (failedAt) { state = 'stopped'; note = `failed at ${clock(failedAt)}: no user was served`; }
  else if (since && st.phase === 'Promoted') state = 'done';
  return h('li', { class: `step ${state}`, 'aria-current': state === 'current' ? 'step' : null },
    h('span', { class: 'step-n' }, 'Shadow'), h('strong', {}, `${pct}% copied`),
    h('span', { class: 'step-note' }, note));
}

function analysis(r) {
  const a = r.status?.analysis;
  const spec = r.spec?.analysis || {};
  if (!a) return h('p', { class: 'muted' }, 'No analysis has run for this rollout yet.');
  if (!a.ran) return h('p', { class: 'muted' }, 'No analysis ran: this rollout has no metrics, so steps advance on time alone.');
  const facts = h('p', { class: 'afacts' },
    `${a.rounds || 0} round${a.rounds === 1 ? '' : 's'} at this step · `,
    `${a.consecutiveFailures || 0}${spec.failureLimit ? ` of ${spec.failureLimit}` : ''} consecutive failures · `,
    `${a.consecutiveInconclusive || 0}${spec.inconclusiveLimit ? ` of ${spec.inconclusiveLimit}` : ''} consecutive inconclusive · last round `,
    timeEl(a.lastRoundAt, { relative: true }));
  const rounds = [...(a.recentRounds || [])].reverse();
  if (!rounds.length) return h('div', {}, facts, h('p', { class: 'muted' }, 'No rounds recorded yet.'));
  const cols = ['Metric', 'Verdict', 'Value', 'Baseline', 'Threshold', 'Samples (cand. / base)', 'p-value', 'Interval', 'Needs', 'Message'];
  return h('div', {}, facts, h('div', { class: 'scroll' }, h('table', { class: 'rounds' },
    h('caption', { class: 'sr-only' }, 'Analysis rounds, newest first'),
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
    rounds.map((rd) => h('tbody', { class: 'round' },
      h('tr', { class: 'round-head' }, h('th', { colspan: cols.length, scope: 'rowgroup' },
        timeEl(rd.time), ` · step ${rd.step + 1} · `, badge('verdict', rd.verdict))),
      (rd.metrics || []).map((m) => h('tr', {},
        h('th', { scope: 'row', 'data-label': 'Metric' }, m.name),
        h('td', { 'data-label': 'Verdict' }, badge('verdict', m.verdict)),
        h('td', { 'data-label': 'Value', class: 'n' }, num(m.value)),
        h('td', { 'data-label': 'Baseline', class: `n${m.baseline === undefined ? ' none' : ''}` }, num(m.baseline)),
        h('td', { 'data-label': 'Threshold' }, m.threshold || '—'),
        h('td', { 'data-label': 'Samples', class: 'n' }, `${m.candidateSamples ?? 0} / ${m.baselineSamples ?? 0}`),
        h('td', { 'data-label': 'p-value', class: `n${m.pValue === undefined ? ' none' : ''}` }, num(m.pValue)),
        h('td', { 'data-label': 'Interval', class: `n${m.lower === undefined && m.upper === undefined ? ' none' : ''}` }, m.lower !== undefined || m.upper !== undefined ? `[${num(m.lower)}, ${num(m.upper)}]` : '—'),
        h('td', { 'data-label': 'Needs', class: `n${m.samplesNeeded ? '' : ' none'}` }, m.samplesNeeded ? `${m.samplesNeeded} more` : '—'),
        h('td', { 'data-label': 'Message', class: 'mmsg' }, m.message || ''))))))));
}

function history(r) {
  // An experiment's entries carry step 0, which means nothing to a reader.
  const stepped = !r.spec?.strategy?.experiment;
  const entries = [...(r.status?.history || [])].reverse();
  if (!entries.length) return h('p', { class: 'muted' }, 'No transitions yet.');
  const dropped = r.status?.historyDropped ? h('p', { class: 'muted' }, `${r.status.historyDropped} older entries were dropped.`) : null;
  return h('div', {}, h('div', { class: 'scroll' }, h('table', { class: 'history' },
    h('caption', { class: 'sr-only' }, 'History, newest first'),
    h('thead', {}, h('tr', {}, ['Time', 'Event', 'Phase', 'Step', 'Weights', 'Actor', 'Reason'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, entries.map((e) => h('tr', {},
      h('td', { 'data-label': 'Time' }, timeEl(e.time)),
      h('td', { 'data-label': 'Event' }, e.type),
      h('td', { 'data-label': 'Phase' }, e.from || e.to ? `${e.from || '—'} → ${e.to || '—'}` : '—'),
      h('td', { 'data-label': 'Step' }, stepped && e.step !== undefined && e.step !== null ? String(e.step + 1) : '—'),
      h('td', { 'data-label': 'Weights' }, weightsText(e.weights)),
      h('td', { 'data-label': 'Actor' }, e.actor || '—'),
      h('td', { 'data-label': 'Reason', class: 'reason' }, e.reason || '')))))), dropped);
}

// scaling lists what Fulcrum changed on the versions' workloads
// (spec.scaling), with the value a rollback puts back, and the pending
// scale-down. Each change's history entry (ScaledUp, ScaledDown,
// ScaleRestored) is in the history table.
function scaling(r) {
  const sc = r.status?.scaling;
  if (!sc) return null;
  const field = (c) => `${c.kind === 'HorizontalPodAutoscaler' ? 'HPA' : c.kind} ${c.name} ${String(c.field).replace(/^spec\./, '')}`;
  const items = (sc.changes || []).map((c) => h('li', { class: 'scale-change' },
    h('strong', {}, `${field(c)} ${c.original}→${c.set}`), ' ', timeEl(c.at),
    c.restoring ? h('span', { class: 'pending' }, ` putting back ${c.original}`) : '',
    c.reason ? h('span', { class: 'muted' }, ` — ${c.reason}`) : ''));
  if (sc.scaleDown) {
    items.push(h('li', { class: 'scale-down' }, h('strong', {}, `${sc.scaleDown.subset} scales down to ${sc.scaleDown.replicas} replicas`), ' at ', timeEl(sc.scaleDown.at)));
  }
  return items.length ? h('ul', { class: 'scaling' }, items) : null;
}

function conditions(r) {
  const cs = r.status?.conditions || [];
  if (!cs.length) return null;
  return h('ul', { class: 'conditions' }, cs.map((c) => h('li', { class: `cond cond-${String(c.status).toLowerCase()}` },
    h('strong', {}, `${c.type}: ${c.status}`), c.reason ? ` (${c.reason})` : '', c.message ? ` — ${c.message}` : '')));
}

export function rolloutView({ ns, name, toast }) {
  let r = null;
  let can = null;
  let error = null;
  let deleted = false;
  let actionSig = '';
  // When the current weights were first seen live, keyed by their text, so
  // the chart has a point for changes the history does not carry yet.
  const seenAt = new Map();

  const title = h('h1', { id: 'r-title' }, h('span', { class: 'ns' }, `${ns}/`), name);
  const notice = h('div', { class: 'notice', role: 'status', 'aria-live': 'polite' });
  const top = h('div', {});
  const actionsBox = h('div', { class: 'actions-box' });
  const chartBox = h('div', { class: 'chart-box' });
  const legend = h('ul', { class: 'legend', 'aria-label': 'Subsets' });
  const rangeSelect = h('select', { id: 'chart-range' },
    h('option', { value: 'rollout' }, 'This rollout'), h('option', { value: '3600000' }, 'Last hour'),
    h('option', { value: '86400000' }, 'Last 24 hours'), h('option', { value: 'all' }, 'All history'));
  rangeSelect.addEventListener('change', () => drawChart());
  const stepsBox = h('div', {});
  const analysisBox = h('div', {});
  const historyBox = h('div', {});
  const conditionsBox = h('div', {});
  const scalingBox = h('div', {});
  const experimentBox = h('div', {});
  const gatesBox = h('div', {});
  const body = h('div', { class: 'rollout-body' },
    top, actionsBox, gatesBox, experimentBox,
    h('section', { class: 'card', 'aria-labelledby': 's-chart' },
      h('div', { class: 'chart-head' }, h('h2', { id: 's-chart' }, 'Traffic weights over time'),
        h('div', { class: 'chart-range' }, h('label', { for: 'chart-range' }, 'Show'), rangeSelect)),
      chartBox, legend),
    section('s-steps', 'Steps', stepsBox),
    section('s-analysis', 'Analysis rounds', analysisBox),
    scalingBox,
    section('s-history', 'History', historyBox),
    conditionsBox);
  const el = h('section', { class: 'view rollout', 'aria-labelledby': 'r-title' },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, '← All rollouts')), title, notice, body);

  // rangeStart is when the chart begins: a minute before the current rollout
  // started by default, so earlier rollouts do not squash it.
  function rangeStart(pts) {
    const v = rangeSelect.value;
    if (v === 'all') return null;
    if (v !== 'rollout') return Date.now() - Number(v);
    let started = r.status?.rolloutStartedAt ? new Date(r.status.rolloutStartedAt).getTime() : null;
    if (!started) {
      const s = [...(r.status?.history || [])].reverse().find((e) => e.type === 'Started');
      started = s ? new Date(s.time).getTime() : null;
    }
    return started && pts.length && started > pts[0].t ? started - 60000 : null;
  }

  function drawChart() {
    if (!r) return;
    const pts = weightPoints(r.status?.history);
    const cur = Object.fromEntries((r.status?.weights || []).map((w) => [w.subset, w.weight]));
    if (Object.keys(cur).length && (!pts.length || !sameWeights(pts[pts.length - 1].weights, cur))) {
      const k = JSON.stringify(cur);
      if (!seenAt.has(k)) seenAt.set(k, Date.now());
      pts.push({ t: seenAt.get(k), weights: cur, label: 'observed live' });
    }
    const shown = clip(pts, rangeStart(pts));
    const subsets = subsetOrder(r, pts);
    const width = chartBox.clientWidth || 800;
    // The experiment's chart is drawn for the same width, so it is redrawn
    // with this one.
    const exp = experimentCard(r, subsets, width);
    experimentBox.replaceChildren(...(exp ? [section('s-experiment', 'Experiment', exp)] : []));
    chartBox.replaceChildren(renderChart({ points: shown, subsets, width, height: width < 500 ? 200 : 260, title: `Traffic weights of ${ns}/${name} over time` }));
    legend.replaceChildren(...subsets.map((s, i) => {
      const { color, dash } = subsetStyle(i);
      const sw = h('span', { class: `swatch${dash ? ' dashed' : ''}`, 'aria-hidden': 'true' });
      sw.style.background = color;
      return h('li', {}, sw, `${s} ${cur[s] ?? 0}%`);
    }));
  }

  function render() {
    if (error && !r) {
      body.hidden = true;
      notice.replaceChildren(h('div', { class: 'problem', role: 'alert' }, h('strong', {}, error.title || 'Error'), ' ', error.detail || error.message));
      return;
    }
    if (!r) { body.hidden = true; notice.textContent = 'Loading…'; return; }
    body.hidden = false;
    notice.replaceChildren(deleted ? h('div', { class: 'problem', role: 'alert' }, 'This rollout was deleted.') : '');
    top.replaceChildren(summary(r));
    // Rebuild the buttons only when the set changes, so keyboard focus on a
    // button survives live updates.
    const acts = deleted ? [] : availableActions(r, can);
    const sig = acts.map((a) => a.verb).join(',') + r.metadata.resourceVersion;
    if (sig !== actionSig) {
      const hadFocus = actionsBox.contains(document.activeElement) ? document.activeElement.dataset.action : null;
      actionSig = sig;
      actionsBox.replaceChildren(...[actionBar(r, deleted ? null : can, (res, a) => {
        if (res?.metadata && isNewer(r, res)) { r = res; render(); }
        toast(`${a.label.replace('…', '')} requested for ${ns}/${name}.`);
      })].filter(Boolean));
      if (hadFocus) actionsBox.querySelector(`[data-action="${hadFocus}"]`)?.focus();
    }
    renderGates();
    drawChart();
    stepsBox.replaceChildren(steps(r));
    analysisBox.replaceChildren(analysis(r));
    historyBox.replaceChildren(history(r));
    const sc = scaling(r);
    scalingBox.replaceChildren(...(sc ? [section('s-scaling', 'Scaling', sc)] : []));
    const c = conditions(r);
    conditionsBox.replaceChildren(...(c ? [section('s-cond', 'Conditions', c)] : []));
  }

  // renderGates draws the Gates card; the Approve button keeps the focus
  // across live updates.
  function renderGates() {
    const hadFocus = gatesBox.contains(document.activeElement) && document.activeElement.dataset.action === 'approve';
    const approve = async () => {
      const res = await openAction(r, { verb: 'approve', label: 'Approve' });
      if (res?.metadata && isNewer(r, res)) { r = res; render(); }
      if (res) toast(`Approval requested for ${ns}/${name}.`);
    };
    const card = gatesCard(r, deleted ? null : can, approve);
    gatesBox.replaceChildren(...(card ? [section('s-gates', 'Gates', card)] : []));
    if (hadFocus) gatesBox.querySelector('[data-action="approve"]')?.focus();
  }

  async function snapshot() {
    try {
      const [got, who] = await Promise.all([api.get(ns, name), can ? Promise.resolve(null) : api.whoami(ns).catch(() => null)]);
      if (who) can = who.can || {};
      if (!r || isNewer(r, got)) r = got;
      error = null;
      deleted = false;
    } catch (e) {
      if (!e.unreachable) error = e;
    }
    render();
  }

  const sub = subscribe(api.rolloutEventsPath(ns, name), {
    onOpen: snapshot,
    onEvent(type, data) {
      if (type === 'rollout' && data?.metadata?.name === name && data.metadata.namespace === ns) {
        if (!isNewer(r, data)) return;
        r = data;
        deleted = false;
      } else if (type === 'deleted' && data?.name === name) {
        deleted = true;
      } else return;
      render();
    },
  });
  snapshot();
  // Redraw when the chart's box changes width (window resize, rotation).
  let lastWidth = 0;
  let resizeTimer = null;
  const observer = new ResizeObserver(() => {
    if (chartBox.clientWidth === lastWidth) return;
    lastWidth = chartBox.clientWidth;
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawChart, 50);
  });
  observer.observe(chartBox);
  const tick = setInterval(drawChart, 30000);
  render();
  return { el, afterMount: drawChart, destroy() { sub.close(); clearInterval(tick); observer.disconnect(); } };
}
