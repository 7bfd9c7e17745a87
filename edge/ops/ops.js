// The ops dashboard: log in (the bearer token is kept in sessionStorage, so it
// ends with the tab), then read GET /api/v1/ops/cluster every 2 s and render it.
// Plain DOM, no framework, no build step; data is inserted as text only.
'use strict';

const POLL_MS = 2000;
const TOKEN_KEY = 'phoneshop.ops.token';
const $ = (id) => document.getElementById(id);

let pollTimer = null;
// generation changes on log in and log out, so that a read still in flight from
// before does not render or schedule another one.
let generation = 0;
// The previous read of each edge, by edge id: rates compare two reads of one edge,
// since a load balancer may send consecutive reads to different edges.
const previous = new Map();

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function show(section) {
  for (const id of ['login', 'forbidden', 'dashboard']) {
    $(id).hidden = id !== section;
  }
  $('session').hidden = section === 'login';
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

function start() {
  generation++;
  previous.clear();
  show('dashboard');
  poll();
}

async function errorMessage(res) {
  try {
    const body = await res.json();
    if (body && body.error && body.error.message) {
      return body.error.message + ' (' + res.status + ' ' + body.error.code + ')';
    }
  } catch (e) {
    // not JSON: fall through
  }
  return 'HTTP ' + res.status;
}

function loginError(message) {
  $('login-error').textContent = message;
  $('login-error').hidden = false;
}

async function login(event) {
  event.preventDefault();
  $('login-error').hidden = true;
  const body = JSON.stringify({ email: $('email').value, password: $('password').value });
  let res;
  try {
    res = await fetch('/api/v1/sessions', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body,
    });
  } catch (e) {
    loginError('The shop did not answer: ' + e.message);
    return;
  }
  if (!res.ok) {
    loginError(res.status === 401 ? 'Wrong e-mail or password.' : await errorMessage(res));
    return;
  }
  const session = await res.json();
  sessionStorage.setItem(TOKEN_KEY, session.token);
  $('password').value = '';
  start();
}

function logout() {
  const t = token();
  generation++;
  stopPolling();
  sessionStorage.removeItem(TOKEN_KEY);
  $('login-form').reset();
  $('login-error').hidden = true;
  show('login');
  if (t) {
    fetch('/api/v1/sessions/current', { method: 'DELETE', headers: { Authorization: 'Bearer ' + t } })
      .catch(() => {});
  }
}

function problem(message) {
  $('problem').textContent = message;
  $('problem').hidden = false;
}

async function poll() {
  stopPolling();
  const gen = generation;
  const t = token();
  if (!t) {
    show('login');
    return;
  }
  let res;
  let view;
  try {
    res = await fetch('/api/v1/ops/cluster', { headers: { Authorization: 'Bearer ' + t }, cache: 'no-store' });
    if (res.ok) {
      view = await res.json();
    }
  } catch (e) {
    res = null;
    if (gen === generation) {
      problem('The shop did not answer (' + e.message + '); retrying.');
    }
  }
  if (gen !== generation) {
    return;
  }
  if (res && res.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    show('login');
    loginError('The session has ended; log in again.');
    return;
  }
  if (res && res.status === 403) {
    show('forbidden');
    return;
  }
  if (res && !res.ok) {
    problem((await errorMessage(res)) + '; retrying.');
  } else if (view) {
    render(view);
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

// el makes an element with text content and attributes.
function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) {
    e.textContent = String(text);
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    e.setAttribute(k, v);
  }
  return e;
}

function sum(obj, skip) {
  return Object.entries(obj || {}).reduce((n, [k, v]) => (skip.includes(k) ? n : n + v), 0);
}

function since(iso) {
  if (!iso) {
    return '–';
  }
  let s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  const d = Math.floor(s / 86400); s %= 86400;
  const h = Math.floor(s / 3600); s %= 3600;
  const m = Math.floor(s / 60); s %= 60;
  if (d > 0) return d + 'd ' + h + 'h';
  if (h > 0) return h + 'h ' + m + 'm';
  if (m > 0) return m + 'm ' + s + 's';
  return s + 's';
}

function renderRates(edge, observedAt) {
  const now = { at: Date.parse(observedAt), edge };
  const before = previous.get(edge.id);
  previous.set(edge.id, now);
  $('edge-id').textContent = 'edge ' + edge.id;
  const rate = (pick) => {
    if (!before) return '–';
    const seconds = (now.at - before.at) / 1000;
    const delta = pick(now.edge) - pick(before.edge);
    // A counter that went back means the edge restarted: no rate until the next read.
    if (!(seconds > 0) || delta < 0) return '–';
    return (delta / seconds).toFixed(1);
  };
  $('rate-requests').textContent = rate((e) => e.requests_total);
  $('rate-orders').textContent = rate((e) => (e.checkouts || {}).confirmed || 0);
  $('rate-refused').textContent = rate((e) => sum(e.checkouts, ['confirmed', 'replayed']));
  $('rate-errors').textContent = rate((e) => e.server_errors_total);
  $('rate-grain-calls').textContent = rate((e) => e.grain_calls_total);
}

function renderHealth(health) {
  const list = $('health');
  list.replaceChildren();
  for (const part of Object.keys(health || {}).sort()) {
    const li = el('li', null, { 'data-part': part });
    li.append(el('span', part), el('span', health[part], { class: 'status status-' + health[part] }));
    list.append(li);
  }
}

function renderMembers(members, kinds) {
  const head = $('members-head');
  head.replaceChildren(el('th', 'Member'), el('th', 'Address'), el('th', 'Kinds'));
  for (const kind of kinds) {
    head.append(el('th', kind, { class: 'num' }));
  }
  head.append(el('th', 'Up for'), el('th', 'Status'));

  const body = document.querySelector('#members tbody');
  body.replaceChildren();
  for (const m of members) {
    const tr = el('tr', null, { 'data-member-id': m.id, class: m.status });
    tr.append(el('td', m.id, { class: 'id' }), el('td', m.address, { class: 'address' }),
      el('td', (m.kinds || []).join(', '), { class: 'kinds' }));
    for (const kind of kinds) {
      const n = m.activations ? m.activations[kind] : undefined;
      tr.append(el('td', n === undefined ? '–' : n, { class: 'num activations', 'data-kind': kind }));
    }
    tr.append(el('td', since(m.started_at), { class: 'started' }),
      el('td', m.status, { class: 'status status-' + m.status }));
    body.append(tr);
  }
  const up = members.filter((m) => m.status === 'up').length;
  $('member-count').textContent = members.length + ' listed, ' + up + ' up';
}

function render(view) {
  $('problem').hidden = true;
  const kinds = Object.keys(view.totals || {}).sort();
  const totals = $('totals');
  totals.replaceChildren();
  for (const kind of kinds) {
    totals.append(el('dt', kind), el('dd', view.totals[kind], { id: 'total-' + kind }));
  }
  renderHealth(view.health);
  renderRates(view.edge || {}, view.observed_at);
  renderMembers(view.members || [], kinds);
  $('updated').textContent = 'updated ' + new Date(view.observed_at).toLocaleTimeString();
}

$('login-form').addEventListener('submit', login);
$('logout').addEventListener('click', logout);
if (token()) {
  start();
} else {
  show('login');
}
