// app.js: sign-in, routing by URL fragment, the connection banner and the
// shell around the views.
//   #/                          the list (?namespace=ns&phase=Phase)
//   #/rollouts/{ns}/{name}      one rollout

import { api, auth, connection, hooks } from './api.js';
import { h } from './format.js';
import { listView } from './list.js';
import { rolloutView } from './rollout.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const userBox = document.getElementById('user');
const toastBox = document.getElementById('toast');
let view = null;

function toast(text) {
  const t = h('div', { class: 'toast-item' }, text);
  toastBox.append(t);
  setTimeout(() => t.remove(), 5000);
}

function parseRoute() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, q = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(q) };
}

function setParams(values, { replace = false } = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v) q.set(k, v);
  const s = q.toString();
  const hash = `#/${s ? `?${s}` : ''}`;
  if (replace) history.replaceState(null, '', hash);
  else location.hash = hash;
}

function mount(next) {
  view?.destroy();
  view = next;
  main.replaceChildren(next.el);
  next.afterMount?.();
}

function route() {
  if (!auth.token) { signIn(); return; }
  const { parts, params } = parseRoute();
  if (parts[0] === 'rollouts' && parts.length === 3) {
    document.title = `${parts[1]}/${parts[2]} · Fulcrum`;
    mount(rolloutView({ ns: parts[1], name: parts[2], toast }));
  } else {
    document.title = 'Rollouts · Fulcrum';
    mount(listView({ params, setParams }));
  }
  main.focus({ preventScroll: true });
}

function showUser(who) {
  userBox.replaceChildren(
    who?.user ? h('span', { class: 'who', title: (who.groups || []).join(', ') }, who.user) : '',
    h('button', { type: 'button', class: 'btn small', id: 'sign-out', onclick: () => { auth.token = ''; view?.destroy(); view = null; signIn(); } }, 'Sign out'));
}

function signIn(message = '') {
  view?.destroy();
  view = null;
  userBox.replaceChildren();
  document.title = 'Sign in · Fulcrum';
  const input = h('input', { id: 'token', type: 'password', required: true, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'token-help' });
  const problem = h('p', { class: 'problem', role: 'alert', hidden: !message }, message);
  const button = h('button', { type: 'submit', class: 'btn primary' }, 'Sign in');
  const form = h('form', { class: 'signin card', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to Fulcrum'),
    h('div', { class: 'field' }, h('label', { for: 'token' }, 'Bearer token'), input),
    h('p', { id: 'token-help', class: 'muted' }, 'A Kubernetes token (for example from “kubectl create token”) or a static token. It is kept only in this browser tab.'),
    problem, button);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) { input.reportValidity(); return; }
    button.disabled = true;
    auth.token = token;
    try {
      const who = await api.whoami();
      showUser(who);
      route();
    } catch (err) {
      if (err.status === 401) {
        auth.token = '';
        problem.textContent = 'The server rejected this token. Check it and try again.';
      } else if (err.unreachable) {
        problem.textContent = 'The server cannot be reached; try again in a moment.';
        auth.token = '';
      } else {
        // Signed in, though whoami itself was refused: go on.
        showUser(null);
        route();
        return;
      }
      problem.hidden = false;
      button.disabled = false;
      input.focus();
    }
  });
  main.replaceChildren(form);
  input.focus();
}

hooks.onUnauthorized = () => {
  auth.token = '';
  signIn('Your session ended or the token was rejected. Sign in again.');
};

connection.listeners.add((online, err) => {
  banner.hidden = online;
  document.body.classList.toggle('offline', !online);
  if (online) return;
  banner.replaceChildren(
    h('strong', {}, 'Server unreachable.'), ' ',
    h('span', {}, `Showing the last data received; live updates resume on their own when it is back. (${err?.detail || err?.title || 'no answer'})`), ' ',
    h('button', { type: 'button', class: 'btn small', id: 'retry', onclick: () => { connection.retryNow(); if (!view) route(); } }, 'Retry now'));
});

window.addEventListener('hashchange', route);
// The skip link must not change the fragment, which is the route.
document.querySelector('.skip')?.addEventListener('click', (e) => { e.preventDefault(); main.focus(); });

(async () => {
  if (!auth.token) { signIn(); return; }
  route();
  try { showUser(await api.whoami()); } catch { showUser(null); }
})();
