// gates.js: the Gates card of a rollout (spec.gates): the gate holding it
// now, with an Approve button for an approval gate when the user may
// approve (whoami's approve verb and the server's actions.approve, never a
// rule of our own), the gates running after its end, and the latest
// results with who approved.

import { h, badge, timeEl } from './format.js';

const HOOKS = { PreStart: 'before the first weight', EachStep: 'before each step', PrePromote: 'before the promotion', PostPromote: 'after a promotion', OnRollback: 'after a rollback' };

// where says which point of the rollout a run belongs to.
function where(run) {
  if (run.at === 'EachStep' && run.step !== undefined && run.step !== null) {
    return `EachStep, before step ${run.step + 1}${run.weight ? ` at ${run.weight}%` : ''}`;
  }
  if (run.at === 'PrePromote') return 'PrePromote, before 100%';
  return run.at;
}

function kind(t) { return t === 'HTTP' ? 'HTTP' : String(t || '').toLowerCase(); }

function specGate(r, name) { return (r.spec?.gates || []).find((g) => g.name === name); }

// mayApprove: the user holds the approve verb and the server says an
// approval waits.
export function mayApprove(r, can) {
  return !!can?.approve && r.actions?.approve?.allowed === true;
}

// pendingApproval is the approval gate a progressing rollout waits for.
export function pendingApproval(r) {
  const p = r.status?.gates?.pending;
  return r.status?.phase === 'Progressing' && p?.state === 'WaitingForApproval' ? p : null;
}

function pendingBlock(r, can, onApprove) {
  const p = r.status?.gates?.pending;
  if (!p || r.status?.phase !== 'Progressing') return null;
  const g = specGate(r, p.name);
  const approval = p.state === 'WaitingForApproval';
  const approve = approval && mayApprove(r, can)
    ? h('button', { type: 'button', class: 'btn primary', 'data-action': 'approve', onclick: () => onApprove(p) }, 'Approve…')
    : null;
  return h('div', { class: `gate-pending${approval ? ' approval' : ''}`, role: 'status' },
    h('p', { class: 'gate-head' },
      h('strong', {}, p.name), ` (${kind(p.type)} at ${where(p)}) `,
      approval ? h('span', { class: 'badge gate-waiting' }, 'Waiting for approval') : h('span', { class: 'badge gate-running' }, 'Running'),
      ' since ', timeEl(p.startedAt, { relative: true }),
      p.deadline ? h('span', { class: 'muted' }, ' · times out ', timeEl(p.deadline)) : null),
    approval && g?.approval?.instructions ? h('p', { class: 'gate-instructions' }, 'Before approving: ', g.approval.instructions) : null,
    !approval && p.message ? h('p', { class: 'gate-msg' }, p.message) : null,
    approval && !approve ? h('p', { class: 'muted' }, 'A person with the approve verb on this rollout approves it (fulcrumctl approve).') : null,
    approve);
}

function backgroundList(r) {
  const bg = r.status?.gates?.background || [];
  if (!bg.length) return null;
  return h('ul', { class: 'gate-background' }, bg.map((b) => h('li', {},
    h('strong', {}, b.name), ` (${kind(b.type)} ${HOOKS[b.at] || b.at}) runs`, b.message ? h('span', { class: 'muted' }, ` — ${b.message}`) : '')));
}

function results(r) {
  const rs = [...(r.status?.gates?.results || [])].reverse();
  if (!rs.length) return null;
  return h('div', { class: 'scroll' }, h('table', { class: 'gate-results' },
    h('caption', { class: 'sr-only' }, 'Finished gates, newest first'),
    h('thead', {}, h('tr', {}, ['Finished', 'Gate', 'Hook', 'Outcome', 'Attempts', 'By', 'Message'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rs.map((x) => h('tr', { dataset: { gate: x.name } },
      h('td', { 'data-label': 'Finished' }, timeEl(x.finishedAt)),
      h('th', { scope: 'row', 'data-label': 'Gate' }, x.name),
      h('td', { 'data-label': 'Hook' }, `${kind(x.type)} at ${where(x)}`),
      h('td', { 'data-label': 'Outcome' }, badge('gate', x.outcome)),
      h('td', { 'data-label': 'Attempts', class: 'n' }, x.attempts ? String(x.attempts) : '—'),
      h('td', { 'data-label': 'By' }, x.actor || '—'),
      h('td', { 'data-label': 'Message', class: 'reason' }, x.message || ''))))));
}

// gatesCard is the card's content, or null for a rollout without gates.
export function gatesCard(r, can, onApprove) {
  const spec = r.spec?.gates || [];
  if (!spec.length && !r.status?.gates) return null;
  const configured = spec.length ? h('p', { class: 'muted gate-spec' }, spec.map((g) => `${g.name} (${g.http ? 'HTTP' : g.job ? 'job' : 'approval'} ${HOOKS[g.at] || g.at})`).join(' · ')) : null;
  const pending = pendingBlock(r, can, onApprove);
  const bg = backgroundList(r);
  const done = results(r);
  return h('div', { class: 'gates' }, configured, pending, bg, done,
    !pending && !bg && !done ? h('p', { class: 'muted' }, 'No gate has run in this rollout yet.') : null);
}
