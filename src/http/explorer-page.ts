/**
 * The explorer page: one HTML document with its style and script inline (nothing fetched from
 * elsewhere; the content security policy lets only this nonce run). Vanilla JavaScript that
 * reads the JSON routes under /explorer/ and the event stream, and writes every value it shows
 * as text (never as HTML), so nothing in the log can run in the page.
 *
 * Credentials: the page sends what the browser sends (cookies, an injected header) and, when the
 * server answers 401, asks for a bearer token, kept in sessionStorage and sent as
 * `Authorization: Bearer ...` (the event stream is read with fetch, which can send it).
 */

const STYLE = `
  :root { color-scheme: light; --line: #d8dde3; --muted: #5b6570; --accent: #1f5fbf; --warn: #a4451b; font: 14px/1.4 system-ui, sans-serif; }
  body { margin: 0; color: #17202a; background: #f6f7f9; }
  header { display: flex; gap: 1rem; align-items: baseline; padding: .6rem 1rem; background: #17202a; color: #fff; }
  header h1 { font-size: 1.1rem; margin: 0; }
  header .muted { color: #b9c2cc; }
  main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1rem; padding: 1rem; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem; min-width: 0; }
  section h2 { font-size: 1rem; margin: .2rem 0 .6rem; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; vertical-align: top; padding: .25rem .4rem; border-bottom: 1px solid var(--line); }
  th { font-weight: 600; color: var(--muted); }
  pre { margin: 0; white-space: pre-wrap; word-break: break-word; font: 12px/1.35 ui-monospace, monospace; }
  form { display: flex; flex-wrap: wrap; gap: .4rem; margin-bottom: .6rem; }
  input { font: inherit; padding: .2rem .4rem; border: 1px solid var(--line); border-radius: 4px; }
  button { font: inherit; padding: .2rem .7rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; cursor: pointer; }
  button.link { background: none; border: none; color: var(--accent); padding: 0; text-decoration: underline; }
  .badge { display: inline-block; padding: 0 .35rem; margin: 0 .15rem; border-radius: 3px; font-size: 12px; background: #e8eef8; color: #1f3f73; }
  .badge.conflict { background: #fdecd8; color: var(--warn); }
  .badge.erasure { background: #f9dede; color: #8a1c1c; }
  .badge.encrypted { background: #ece6f7; color: #4b2c85; }
  .muted { color: var(--muted); }
  .wide { grid-column: 1 / -1; }
  #login { display: none; }
  #login.shown { display: block; }
`;

const SCRIPT = `
'use strict';
const $ = (selector) => document.querySelector(selector);
const state = { filters: {}, before: null, head: 0, live: false, lastSeq: 0 };

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (name === 'onclick') node.addEventListener('click', value); else node.setAttribute(name, value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  return node;
}
const idText = (identity) => identity[0] + ':' + (typeof identity[1] === 'string' && /^-?(0|[1-9][0-9]*)$/.test(identity[1]) ? JSON.stringify(identity[1]) : identity[1]);
const json = (value) => el('pre', {}, JSON.stringify(value, null, 1));
const time = (value) => value ? new Date(value).toISOString().replace('T', ' ').slice(0, 19) : '';

function headers() {
  const token = sessionStorage.getItem('coherence-token');
  return token ? { authorization: 'Bearer ' + token } : {};
}
async function api(path) {
  const response = await fetch(path, { headers: headers() });
  if (response.status === 401) { $('#login').classList.add('shown'); throw new Error('not signed in'); }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(response.status + ' ' + (body.message || response.statusText));
  }
  $('#login').classList.remove('shown');
  return response.json();
}
function failed(where, error) { where.replaceChildren(el('p', { class: 'muted' }, String(error.message || error))); }

function badges(event) {
  const list = [];
  if (event.action) {
    for (const seq of event.resolved || []) list.push(el('span', { class: 'badge conflict', 'data-resolved': seq }, 'resolved conflict with #' + seq));
    for (const seq of event.merged || []) list.push(el('span', { class: 'badge conflict', 'data-merged': seq }, 'merged past #' + seq));
    for (const path of event.encrypted || []) list.push(el('span', { class: 'badge encrypted' }, 'encrypted ' + path));
  } else {
    list.push(el('span', { class: 'badge erasure' }, 'effect on ' + idText(event.effect.trigger)));
  }
  return list;
}
function aggregateButton(identity) {
  return el('button', { class: 'link', type: 'button', onclick: () => { $('#aggregate-input').value = idText(identity); showAggregate(idText(identity)); } }, idText(identity));
}
function logRow(event) {
  const what = event.action
    ? [aggregateButton(event.action.aggregate), ' ', el('span', { class: 'muted' }, event.action.reason)]
    : [el('span', {}, event.effect.reason)];
  return el('tr', { 'data-seq': event.seq },
    el('td', {}, '#' + event.seq), el('td', { class: 'muted' }, time(event.timestamp)),
    el('td', {}, what), el('td', {}, event.action ? idText(event.action.actor) : event.source),
    el('td', {}, badges(event)));
}

function matches(event) {
  const { kind, aggregate, actor } = state.filters;
  if (actor && !(event.action && idText(event.action.actor) === actor)) return false;
  if (event.action) {
    if (kind && event.action.aggregate[0] !== kind) return false;
    if (aggregate && idText(event.action.aggregate) !== aggregate) return false;
    return true;
  }
  return !kind && !aggregate; // effects: the server's filters say which aggregates they affect; a reload shows them
}

async function loadLog(more) {
  const body = $('#log-rows');
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(state.filters)) if (value) query.set(name, value);
  if (more && state.before) query.set('before', state.before);
  try {
    const page = await api('/explorer/events?' + query);
    state.head = Math.max(state.head, page.head);
    if (!more) body.replaceChildren();
    for (const event of page.events) body.append(logRow(event));
    state.before = page.next;
    $('#log-more').hidden = page.next === null;
    $('#log-count').textContent = body.children.length + ' shown, head #' + state.head;
  } catch (error) { failed(body, error); }
}

async function loadSummary() {
  try {
    const s = await api('/explorer/summary');
    $('#stats').textContent = s.events + ' events, ' + s.aggregates + ' aggregates, keys ' + s.keys.live + ' live / ' + s.keys.destroyed + ' destroyed, ' + s.bytes + ' bytes (' + s.engine + ')';
    const rows = [];
    for (const p of s.projections || []) rows.push(el('tr', { 'data-projection': p.name }, el('td', {}, 'projection'), el('td', {}, p.name), el('td', {}, '#' + p.position), el('td', {}, p.lag), el('td', {}, '')));
    for (const p of s.processManagers || []) rows.push(el('tr', { 'data-process-manager': p.name }, el('td', {}, 'process manager'), el('td', {}, p.name), el('td', {}, '#' + p.position), el('td', {}, p.lag), el('td', {}, p.rejections + ' rejections')));
    for (const n of s.notifiers || []) rows.push(el('tr', { 'data-notifier': n.name }, el('td', {}, 'notifier'), el('td', {}, n.name), el('td', {}, '#' + n.position), el('td', {}, n.lag), el('td', {}, n.deadLetters + ' dead letters')));
    $('#consumers').replaceChildren(...rows);
    if (s.live && !state.live) startLive(s.events + 1);
  } catch (error) { failed($('#consumers'), error); }
}

async function showAggregate(text) {
  const where = $('#aggregate-history');
  if (!text) return;
  try {
    const found = await api('/explorer/aggregate?' + new URLSearchParams({ aggregate: text }));
    const rows = found.history.map(({ event, state: after }) => el('tr', { 'data-seq': event.seq },
      el('td', {}, '#' + event.seq),
      el('td', {}, event.action ? [idText(event.action.actor), el('br'), el('span', { class: 'muted' }, event.action.reason)] : [event.effect.reason]),
      el('td', {}, event.action ? json(event.action.patch) : 'erasure: key ' + idText(event.effect.trigger), badges(event)),
      el('td', {}, json(after))));
    const views = found.views.map((v) => el('div', { 'data-view': v.view }, el('h3', {}, 'view ' + v.view), json(v.state)));
    const table = el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'seq'), el('th', {}, 'by'), el('th', {}, 'patch'), el('th', {}, 'state after'))), el('tbody', {}, rows));
    where.replaceChildren(rows.length === 0 ? el('p', { class: 'muted' }, 'no events on ' + text) : table, ...views);
  } catch (error) { failed(where, error); }
}

async function loadKeys() {
  const where = $('#keys-rows');
  try {
    const { keys } = await api('/explorer/keys');
    where.replaceChildren(...keys.map((k) => el('tr', { 'data-key': idText(k.key), 'data-destroyed': k.destroyedAt ? 'yes' : 'no' },
      el('td', {}, idText(k.key)), el('td', {}, k.destroyedAt ? 'destroyed' : 'live'),
      el('td', { class: 'muted' }, time(k.createdAt)), el('td', { class: 'muted' }, time(k.expiresAt)),
      el('td', {}, k.erasure ? ['#' + k.erasure.seq + ' ' + k.erasure.reason + ' ', el('span', { class: 'muted' }, k.erasure.affected.map(idText).join(', '))] : ''))));
  } catch (error) { failed(where, error); }
}

let refresh = null;
function later() {
  clearTimeout(refresh);
  refresh = setTimeout(() => { loadSummary(); loadKeys(); const open = $('#aggregate-input').value; if (open) showAggregate(open); }, 300);
}

async function startLive(from) {
  state.live = true;
  let next = from;
  for (;;) {
    try {
      const response = await fetch('/events?from=' + next, { headers: { ...headers(), accept: 'text/event-stream' } });
      if (!response.ok) { $('#live-status').textContent = 'not live (' + response.status + ')'; state.live = false; return; }
      $('#live-status').textContent = 'live';
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\\n\\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\\n');
          if (!data) continue;
          const event = JSON.parse(data);
          next = event.seq + 1;
          state.head = Math.max(state.head, event.seq);
          if (matches(event) && !document.querySelector('#log-rows tr[data-seq="' + event.seq + '"]')) $('#log-rows').prepend(logRow(event));
          later();
        }
      }
    } catch (error) { /* reconnect below */ }
    $('#live-status').textContent = 'reconnecting';
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

$('#filters').addEventListener('submit', (e) => {
  e.preventDefault();
  state.filters = { kind: $('#filter-kind').value.trim(), aggregate: $('#filter-aggregate').value.trim(), actor: $('#filter-actor').value.trim() };
  state.before = null;
  loadLog(false);
});
$('#log-more').addEventListener('click', () => loadLog(true));
$('#aggregate-form').addEventListener('submit', (e) => { e.preventDefault(); showAggregate($('#aggregate-input').value.trim()); });
$('#login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem('coherence-token', $('#token').value.trim());
  start();
});
function start() { loadSummary(); loadLog(false); loadKeys(); }
start();
`;

const BODY = `
<header><h1>coherence explorer</h1><span id="stats" class="muted"></span><span id="live-status" class="muted">not live</span></header>
<main>
  <section id="login" class="wide"><h2>Sign in</h2>
    <form id="login-form"><input id="token" type="password" placeholder="bearer token" autocomplete="off" size="60"><button>Sign in</button></form></section>
  <section id="log"><h2>Log <span id="log-count" class="muted"></span></h2>
    <form id="filters">
      <input id="filter-kind" placeholder="kind" size="10"><input id="filter-aggregate" placeholder="aggregate kind:id" size="22"><input id="filter-actor" placeholder="actor kind:id" size="18"><button>Filter</button>
    </form>
    <table><thead><tr><th>seq</th><th>when</th><th>what</th><th>actor / source</th><th></th></tr></thead><tbody id="log-rows"></tbody></table>
    <p><button id="log-more" type="button" hidden>Older</button></p></section>
  <section id="aggregate"><h2>Aggregate</h2>
    <form id="aggregate-form"><input id="aggregate-input" placeholder="kind:id" size="30"><button>Show history</button></form>
    <div id="aggregate-history"><p class="muted">Pick an aggregate in the log, or type one.</p></div></section>
  <section id="keys"><h2>Keys and erasures</h2>
    <table><thead><tr><th>key</th><th></th><th>created</th><th>expires</th><th>erasure</th></tr></thead><tbody id="keys-rows"></tbody></table></section>
  <section id="consumers-section"><h2>Projections, process managers, notifiers</h2>
    <table><thead><tr><th></th><th>name</th><th>position</th><th>lag</th><th></th></tr></thead><tbody id="consumers"></tbody></table></section>
</main>`;

/** The page, its inline style and script carrying `nonce`. */
export function page(nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>coherence explorer</title><link rel="icon" href="data:,"><style nonce="${nonce}">${STYLE}</style></head>
<body>${BODY}
<script nonce="${nonce}">${SCRIPT}</script></body></html>
`;
}
