// api.js: the admin API client. Every request carries the signed-in bearer
// token in the Authorization header, including the event stream, which is
// read with fetch() streaming rather than EventSource so that the token
// never appears in a URL.

const TOKEN_KEY = 'fulcrum.token';

export const auth = {
  get token() { return sessionStorage.getItem(TOKEN_KEY) || ''; },
  set token(t) {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

// ApiError carries an RFC 7807 problem (title, status, detail) or, when the
// server could not be reached at all, status 0 and unreachable = true.
export class ApiError extends Error {
  constructor({ title, status, detail, unreachable = false }) {
    super(detail || title || `HTTP ${status}`);
    this.title = title || '';
    this.status = status || 0;
    this.detail = detail || '';
    this.unreachable = unreachable;
  }
}

// connection tracks whether the server answers, for the offline banner.
// Listeners get (online: boolean, error: ApiError|null).
export const connection = {
  online: true,
  error: null,
  listeners: new Set(),
  retryHooks: new Set(),
  set(online, error = null) {
    if (this.online === online && (online || this.error?.message === error?.message)) return;
    this.online = online;
    this.error = error;
    for (const l of this.listeners) l(online, error);
  },
  // retryNow wakes every waiting reconnect loop at once.
  retryNow() { for (const h of [...this.retryHooks]) h(); },
};

// onUnauthorized is set by the app: a 401 anywhere sends the user to sign in.
export const hooks = { onUnauthorized: () => {} };

async function problemFrom(resp) {
  let body = null;
  try { body = await resp.json(); } catch { /* not JSON */ }
  return new ApiError({
    title: body?.title || resp.statusText,
    status: resp.status,
    detail: body?.detail || body?.message || '',
  });
}

function headers(extra = {}) {
  const h = { Accept: 'application/json', ...extra };
  if (auth.token) h.Authorization = `Bearer ${auth.token}`;
  return h;
}

// request sends one JSON request and returns the decoded body.
export async function request(method, path, body, { signal } = {}) {
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    const err = new ApiError({ title: 'Server unreachable', detail: String(e.message || e), unreachable: true });
    connection.set(false, err);
    throw err;
  }
  if (resp.status >= 500 && resp.status !== 501) {
    const err = await problemFrom(resp);
    connection.set(false, err);
    throw err;
  }
  connection.set(true);
  if (resp.status === 401) {
    const err = await problemFrom(resp);
    hooks.onUnauthorized(err);
    throw err;
  }
  if (!resp.ok) throw await problemFrom(resp);
  if (resp.status === 204) return null;
  return resp.json();
}

const enc = encodeURIComponent;
const rolloutPath = (ns, name) => `/api/v1/namespaces/${enc(ns)}/rollouts/${enc(name)}`;
const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
};

export const api = {
  whoami: (namespace) => request('GET', `/api/v1/whoami${query({ namespace })}`),
  list: (namespace) => request('GET', `/api/v1/rollouts${query({ namespace })}`),
  get: (ns, name) => request('GET', rolloutPath(ns, name)),
  // action posts one of promote, rollback, pause, resume, split, start.
  action: (ns, name, verb, body) => request('POST', `${rolloutPath(ns, name)}/${verb}`, body),
  eventsPath: (namespace) => `/api/v1/events${query({ namespace })}`,
  rolloutEventsPath: (ns, name) => `${rolloutPath(ns, name)}/events`,
};

// parseSSE feeds text chunks and calls emit(type, data) for each complete
// event. It follows the server-sent events format: "event:" and "data:"
// fields, multi-line data joined by "\n", comments ignored, a blank line ends
// an event. It returns the function to feed chunks with.
export function sseParser(emit) {
  let buf = '';
  let type = '';
  let data = [];
  return (chunk) => {
    buf += chunk;
    const lines = buf.split(/\r\n|\r|\n/);
    buf = lines.pop();
    for (const line of lines) {
      if (line === '') {
        if (data.length) emit(type || 'message', data.join('\n'));
        type = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
  };
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const wake = () => { clearTimeout(t); connection.retryHooks.delete(wake); resolve(); };
  const t = setTimeout(wake, ms);
  connection.retryHooks.add(wake);
  signal.addEventListener('abort', wake, { once: true });
});

// Silence longer than this on an open stream is treated as a dead
// connection (the server sends keep-alive comments more often).
const STALL_MS = 60000;

// subscribe keeps an event stream open until close() is called, reconnecting
// with capped exponential backoff. onOpen runs on every (re)connection, so the
// caller can refetch a snapshot and miss nothing; onEvent(type, data) gets
// every event with its JSON data decoded.
export function subscribe(path, { onOpen, onEvent }) {
  const ctl = new AbortController();
  const { signal } = ctl;
  (async () => {
    let backoff = 1000;
    while (!signal.aborted) {
      const attempt = new AbortController();
      const abortAttempt = () => attempt.abort();
      signal.addEventListener('abort', abortAttempt, { once: true });
      let stall = null;
      try {
        const resp = await fetch(path, { headers: headers({ Accept: 'text/event-stream' }), cache: 'no-store', signal: attempt.signal });
        if (resp.status === 401) { hooks.onUnauthorized(await problemFrom(resp)); return; }
        if (!resp.ok) throw await problemFrom(resp);
        connection.set(true);
        backoff = 1000;
        const feed = sseParser((type, data) => {
          let value = data;
          try { value = JSON.parse(data); } catch { /* keep text */ }
          onEvent(type, value);
        });
        if (onOpen) onOpen();
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        const arm = () => { clearTimeout(stall); stall = setTimeout(abortAttempt, STALL_MS); };
        arm();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          arm();
          feed(value);
        }
        if (signal.aborted) return;
        throw new ApiError({ title: 'Event stream closed', detail: 'the server closed the live update stream', unreachable: true });
      } catch (e) {
        if (signal.aborted) return;
        const err = e instanceof ApiError ? e
          : new ApiError({ title: 'Server unreachable', detail: String(e.message || e), unreachable: true });
        if (err.unreachable || err.status >= 500) connection.set(false, err);
        else connection.set(true);
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 30000);
      } finally {
        clearTimeout(stall);
        signal.removeEventListener('abort', abortAttempt);
      }
    }
  })();
  return { close: () => ctl.abort() };
}
