// actions.js: the action buttons a user's role allows and the dialog each one
// opens. Every action asks for a reason (recorded in the rollout's history);
// promote and rollback move all traffic at once and need an explicit
// confirmation. Split offers one control per subset that always sums to 100.

import { api } from './api.js';
import { h, subsetStyle } from './format.js';
import { subsetOrder } from './chart.js';
import { rebalance, remove, even, normalize } from './split.js';
import { pendingApproval } from './gates.js';

// ACTIONS lists each verb with the permission it needs. Whether it applies
// to a rollout now is the server's answer (r.actions, computed from the
// phase/action table the controller applies too), never a rule of our own.
const ACTIONS = [
  { verb: 'promote', label: 'Promote', perm: 'promote', destructive: true },
  { verb: 'rollback', label: 'Roll back', perm: 'rollback', destructive: true },
  { verb: 'pause', label: 'Pause', perm: 'pause' },
  { verb: 'resume', label: 'Resume', perm: 'resume' },
  { verb: 'split', label: 'Split traffic…', perm: 'split' },
  { verb: 'start', label: 'Start rollout…', perm: 'start' },
];

// allowed says whether can (from whoami) grants perm. Resume is guarded by
// the pause verb unless the server reports a resume permission of its own.
function allowed(can, perm) {
  if (!can) return false;
  if (perm === 'resume') return can.resume ?? can.pause ?? false;
  return can[perm] === true;
}

export function availableActions(r, can) {
  return ACTIONS.filter((a) => allowed(can, a.perm) && r.actions?.[a.verb]?.allowed === true);
}

// pendingNote says which pending request a rollback cancels, if any.
function pendingNote(r) {
  const i = r.spec?.intent;
  if (!i || i.id === r.status?.observedIntent) return '';
  return ` It cancels the pending ${String(i.action).toLowerCase()} requested by ${i.actor || 'an unknown actor'}.`;
}

function describe(r, verb) {
  const stable = r.spec?.stable;
  const candidate = r.spec?.candidate || r.status?.candidate;
  switch (verb) {
    case 'promote': return `All traffic moves to ${candidate} now, which becomes the stable version. Remaining steps and analysis are skipped.`;
    case 'rollback': return `All traffic returns to ${stable} now. The rollout of ${candidate} stops.${pendingNote(r)}`;
    case 'pause': return 'Traffic stays where it is; no further steps until someone resumes.';
    case 'resume': return 'Automatic progression continues from the current step.';
    case 'split': return 'Pin these weights. Automatic progression stops until resume or rollback.';
    case 'start': return `Start moving traffic from ${stable} to a candidate version, step by step.`;
    case 'approve': {
      const p = pendingApproval(r);
      if (!p) return 'No approval gate is waiting.';
      const next = p.at === 'PrePromote' ? `${candidate} is promoted and serves 100%` : `${candidate} gets ${p.weight}%`;
      return `Approve gate ${p.name}: the rollout goes on and ${next}. Your name and reason are recorded in the history.`;
    }
    default: return '';
  }
}

function splitControls(r) {
  const subsets = subsetOrder(r);
  const current = new Map((r.status?.weights || []).map((w) => [w.subset, w.weight]));
  const start = normalize(subsets.map((s) => current.get(s) || 0));
  const rows = subsets.map((s, i) => ({ subset: s, weight: start[i] }));
  const box = h('fieldset', { class: 'split' }, h('legend', {}, 'Weights (always total 100%)'));
  const list = h('div', { class: 'split-rows' });
  const total = h('p', { class: 'split-total', 'aria-live': 'polite' });
  const newSubset = h('input', { id: 'split-new', type: 'text', placeholder: 'subset name', pattern: '[a-z0-9]([-a-z0-9]*[a-z0-9])?', maxlength: 63, autocomplete: 'off' });
  // sync writes the weights into the existing inputs, so a slider being
  // dragged is never replaced under the pointer.
  function sync() {
    rows.forEach((row, i) => {
      const range = list.querySelector(`#split-${i}-range`);
      const number = list.querySelector(`#split-${i}`);
      if (range && range.value !== String(row.weight)) range.value = row.weight;
      if (number && number.value !== String(row.weight)) number.value = row.weight;
    });
    total.textContent = `Total: ${rows.reduce((a, b) => a + b.weight, 0)}% across ${rows.length} subset${rows.length === 1 ? '' : 's'}`;
  }
  const set = (weights) => { weights.forEach((w, i) => { rows[i].weight = w; }); sync(); };
  function build() {
    const order = subsetOrder(r, [{ weights: Object.fromEntries(rows.map((x) => [x.subset, x.weight])) }]);
    list.replaceChildren(...rows.map((row, i) => {
      const id = `split-${i}`;
      const range = h('input', { type: 'range', min: 0, max: 100, step: 1, value: row.weight, id: `${id}-range`, 'aria-label': `Weight of ${row.subset} (slider)`, disabled: rows.length === 1 });
      const number = h('input', { type: 'number', min: 0, max: 100, step: 1, value: row.weight, id, 'data-subset': row.subset, inputmode: 'numeric', disabled: rows.length === 1 });
      range.addEventListener('input', () => set(rebalance(rows.map((x) => x.weight), i, range.value)));
      number.addEventListener('change', () => set(rebalance(rows.map((x) => x.weight), i, number.value)));
      const sw = h('span', { class: 'swatch', 'aria-hidden': 'true' });
      sw.style.background = subsetStyle(order.indexOf(row.subset)).color;
      const rm = rows.length > 1 ? h('button', { type: 'button', class: 'btn small ghost', 'aria-label': `Remove ${row.subset} from the split`, onclick: () => {
        const w = remove(rows.map((x) => x.weight), i);
        rows.splice(i, 1);
        build();
        set(w);
      } }, '✕') : null;
      return h('div', { class: 'split-row' }, h('label', { for: id }, sw, row.subset), range, h('span', { class: 'pct' }, number, '%'), rm);
    }));
    sync();
  }
  const add = () => {
    const name = newSubset.value.trim();
    if (rows.some((x) => x.subset === name)) newSubset.setCustomValidity(`${name} is already in the split`);
    else if (rows.length >= 16) newSubset.setCustomValidity('at most 16 subsets');
    else newSubset.setCustomValidity('');
    if (!name || !newSubset.reportValidity()) return;
    rows.push({ subset: name, weight: 0 });
    newSubset.value = '';
    build();
  };
  newSubset.addEventListener('input', () => newSubset.setCustomValidity(''));
  newSubset.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); add(); } });
  box.append(list, total, h('div', { class: 'split-tools' },
    h('label', { for: 'split-new' }, 'Add subset'), newSubset,
    h('button', { type: 'button', class: 'btn small', onclick: add }, 'Add'),
    h('button', { type: 'button', class: 'btn small', onclick: () => set(even(rows.length)) }, 'Split evenly')));
  build();
  return { el: box, value: () => rows.map((x) => ({ subset: x.subset, weight: x.weight })) };
}

// openAction shows the dialog for verb on r and resolves with the updated
// rollout when the server accepted the action, or null when cancelled.
export function openAction(r, action) {
  const { verb, label, destructive } = action;
  const ns = r.metadata.namespace;
  const name = r.metadata.name;
  return new Promise((resolve) => {
    const extra = [];
    let split = null;
    let candidate = null;
    if (verb === 'split') { split = splitControls(r); extra.push(split.el); }
    const gate = verb === 'approve' ? pendingApproval(r) : null;
    const instructions = (r.spec?.gates || []).find((g) => g.name === gate?.name)?.approval?.instructions;
    if (instructions) extra.push(h('p', { class: 'gate-instructions' }, h('strong', {}, 'Before approving: '), instructions));
    if (verb === 'start') {
      candidate = h('input', { id: 'act-candidate', type: 'text', required: true, pattern: '[a-z0-9]([-a-z0-9]*[a-z0-9])?', maxlength: 63, autocomplete: 'off', value: r.spec?.candidate || '' });
      extra.push(h('div', { class: 'field' }, h('label', { for: 'act-candidate' }, 'Candidate subset'), candidate));
    }
    const reason = h('textarea', { id: 'act-reason', required: true, maxlength: 1024, rows: 3, placeholder: 'Why? It is recorded in the history with your name.' });
    const confirmBox = destructive ? h('input', { id: 'act-confirm', type: 'checkbox', required: true }) : null;
    const problem = h('div', { class: 'problem', role: 'alert', hidden: true });
    const submit = h('button', { type: 'submit', class: `btn ${destructive ? 'danger' : 'primary'}`, id: 'act-submit' }, label.replace('…', ''));
    const cancel = h('button', { type: 'button', class: 'btn', value: 'cancel' }, 'Cancel');
    const form = h('form', { class: 'action-form', novalidate: true },
      h('h2', { id: 'act-title' }, `${label.replace('…', '')} ${ns}/${name}`),
      h('p', { class: 'explain' }, describe(r, verb)),
      extra,
      h('div', { class: 'field' }, h('label', { for: 'act-reason' }, 'Reason (required)'), reason),
      confirmBox ? h('div', { class: 'confirm' }, confirmBox, h('label', { for: 'act-confirm' }, `Yes, ${verb === 'promote' ? 'promote' : 'roll back'} ${ns}/${name} now`)) : null,
      problem,
      h('div', { class: 'buttons' }, cancel, submit));
    const dialog = h('dialog', { class: 'action', 'aria-labelledby': 'act-title' }, form);
    document.body.append(dialog);
    let result = null;
    const close = () => dialog.close();
    dialog.addEventListener('close', () => { dialog.remove(); resolve(result); });
    cancel.addEventListener('click', close);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      problem.hidden = true;
      if (!form.reportValidity()) return;
      const body = { reason: reason.value.trim() };
      if (!body.reason) { reason.setCustomValidity('Give a reason'); reason.reportValidity(); reason.setCustomValidity(''); return; }
      if (split) body.weights = split.value();
      if (candidate) body.candidate = candidate.value.trim();
      // Naming the gate: an approval lands on the gate the user saw, or
      // the server refuses it (another gate waits by now).
      if (gate) body.gate = gate.name;
      submit.disabled = true;
      submit.textContent = 'Sending…';
      try {
        result = await api.action(ns, name, verb, body);
        close();
      } catch (err) {
        problem.replaceChildren(h('strong', {}, err.title || 'Refused'), ' ', err.detail || err.message);
        problem.hidden = false;
        submit.disabled = false;
        submit.textContent = label.replace('…', '');
      }
    });
    dialog.showModal();
    (extra.length ? form.querySelector('input:not([disabled])') : reason)?.focus();
  });
}

// actionBar renders the allowed buttons; onDone(rollout, action) runs after
// the server accepted one.
export function actionBar(r, can, onDone) {
  const acts = availableActions(r, can);
  if (!acts.length) return null;
  return h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' }, acts.map((a) => h('button', {
    type: 'button',
    class: `btn ${a.destructive ? 'danger' : ''}`,
    'data-action': a.verb,
    onclick: async () => { const res = await openAction(r, a); if (res) onDone(res, a); },
  }, a.label)));
}
