// The report screen: sign-in, the paginated list of sessions (the source's
// Figure 1), the filter popup, the conversation view and exports. The page's
// query string holds the filter in the API's own parameters, plus open=<id>
// for a conversation, so any view can be bookmarked or shared.

import { t, translatePage, setLanguage, initialLanguage, language } from './i18n.js';
import { api, credentials, save, pickFile, stream, ApiError, NetworkError } from './api.js';
import { h, $, $$, icon } from './dom.js';
import * as F from './filter.js';
import { FilterDialog } from './dialog.js';
import { renderTimeline, renderDetails, contactLabel } from './conversation.js';
import { formatDate, formatTime, formatFull, formatDayString, timeZone, dayKey, channelName, formatPhone } from './format.js';

const state = {
  filter: F.emptyFilter(),
  limit: F.defaultPageSize,
  cursor: null, // the cursor of the page on screen; null for the first
  previous: [], // the cursors of the pages before it
  next: null,
  items: [],
  loadedKey: null, // what the rows on screen answer
  seq: 0,
  controller: null,
  conversation: null, // the session on screen
  convController: null,
  lastOpened: '', // the row to give focus back to after a conversation
};

const views = ['login-view', 'list-view', 'conversation-view'];
function show(view) {
  for (const v of views) $(`#${v}`).hidden = v !== view;
  $('#signout').hidden = view === 'login-view';
}

function announce(message) {
  const status = $('#status');
  // Re-setting the same text would not be read again.
  status.textContent = '';
  requestAnimationFrame(() => {
    status.textContent = message;
  });
}

// ---- URL ----

function readURL() {
  const q = new URLSearchParams(location.search);
  const limit = Number(q.get('limit'));
  return {
    filter: F.fromQuery(q),
    limit: F.pageSizes.includes(limit) ? limit : F.defaultPageSize,
    open: q.get('open') || '',
  };
}

function urlFor({ filter = state.filter, limit = state.limit, open = '' } = {}) {
  const q = F.toQuery(filter);
  if (limit !== F.defaultPageSize) q.set('limit', String(limit));
  if (open) q.set('open', open);
  const s = q.toString();
  return s ? `/?${s}` : '/';
}

// The list's page position lives in the history entry, not the URL: cursors
// are only meaningful next to the pages that issued them.
function pagingState() {
  return { cursor: state.cursor, previous: state.previous };
}

// ---- sign-in ----

function showLogin(message = '') {
  abortAll();
  show('login-view');
  const input = $('#login-key');
  input.value = '';
  $('#login-error').textContent = message;
  if (message) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
  input.focus();
}

function unauthorized() {
  credentials.clear();
  forgetData();
  showLogin(t('login.rejected'));
}

function abortAll() {
  state.controller?.abort();
  state.convController?.abort();
  dialog.close();
}

// forgetData removes every session from the page, so a signed-out screen
// shows nothing of the tenant.
function forgetData() {
  state.items = [];
  state.loadedKey = null;
  state.conversation = null;
  $('#rows').replaceChildren();
  $('#timeline').replaceChildren();
  $('#details').replaceChildren();
  $('#total').textContent = '';
}

$('#login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const key = $('#login-key').value.trim();
  if (!key) {
    $('#login-error').textContent = t('login.required');
    $('#login-key').setAttribute('aria-invalid', 'true');
    $('#login-key').focus();
    return;
  }
  credentials.set(key);
  $('#login-key').value = '';
  route(history.state);
});

$('#signout').addEventListener('click', () => {
  credentials.clear();
  forgetData();
  showLogin();
});

// ---- errors ----

function errorMessage(err) {
  if (err instanceof NetworkError) return t('err.network');
  if (err instanceof ApiError) {
    if (err.status === 404) return t('err.notFound');
    if (err.status >= 500) return t('err.server', { status: err.status });
    return err.problem.detail || err.problem.title || err.message;
  }
  return String(err.message || err);
}

function showAlert(el, message, retry) {
  el.replaceChildren(h('span', {}, message));
  if (retry) el.append(h('button', { type: 'button', class: 'btn btn-secondary btn-sm', onclick: retry }, t('retry')));
  el.hidden = false;
}

// ---- the list ----

const dialog = new FilterDialog({
  onApply: (f) => applyFilter(f),
  seen: () => {
    const tags = new Set();
    const channels = new Set();
    const infoKeys = new Set();
    for (const s of state.items) {
      s.tags.forEach((x) => tags.add(x));
      channels.add(s.channel);
      Object.keys(s.info || {}).forEach((k) => infoKeys.add(k));
    }
    return { tags, channels, infoKeys };
  },
  onUnauthorized: unauthorized,
});

function listKey() {
  return `${urlFor()}#${state.cursor || ''}`;
}

// loadList fetches the page state describes; it resolves to true when the
// rows on screen answer it.
async function loadList() {
  state.controller?.abort();
  const ctrl = new AbortController();
  state.controller = ctrl;
  const seq = ++state.seq;
  const results = $('#results');
  const params = F.toQuery(state.filter);
  params.set('limit', String(state.limit));
  if (state.cursor) params.set('cursor', state.cursor);

  results.setAttribute('aria-busy', 'true');
  $('#list-alert').hidden = true;
  announce(t('list.loading'));
  try {
    const data = await api.sessions(params, ctrl.signal);
    if (seq !== state.seq) return false;
    state.items = data.items;
    state.next = data.next_cursor;
    state.loadedKey = listKey();
    results.dataset.query = params.toString();
    renderList(data);
    announce(t('list.loaded', { n: data.total }));
    return true;
  } catch (err) {
    if (err.name === 'AbortError' || seq !== state.seq) return false;
    listFailed(err);
    return false;
  } finally {
    if (seq === state.seq) {
      results.setAttribute('aria-busy', 'false');
      results.dataset.seq = String(seq);
    }
  }
}

function listFailed(err) {
  if (err instanceof ApiError && err.status === 401) {
    unauthorized();
    return;
  }
  if (err instanceof ApiError && err.status === 400) {
    const errors = err.paramErrors;
    if (errors.some((e) => e.param === 'cursor')) {
      // A cursor from an older deployment: start from the first page.
      state.cursor = null;
      state.previous = [];
      loadList();
      return;
    }
    showAlert($('#list-alert'), t('filter.fix'));
    dialog.open(state.filter, errors, $('#filter-button'));
    return;
  }
  showAlert($('#list-alert'), errorMessage(err), () => loadList());
  announce(errorMessage(err));
}

function renderList(data) {
  $('#total').textContent = t('list.total', { n: data.total });
  $('#total').dataset.total = String(data.total);
  $('#rows').replaceChildren(...data.items.map(sessionRow));
  $('#empty').hidden = data.items.length > 0;
  renderPager();
  renderChips();
}

function sessionRow(s) {
  const who = contactLabel(s.contact);
  const firstProtocol = s.protocols[0];
  const tagsShown = s.tags.slice(0, 3);
  const open = h(
    'button',
    {
      type: 'button',
      class: 'btn btn-primary btn-sm open-button',
      'aria-label': t('row.openLabel', { who: who || s.session_id }),
      onclick: () => openConversation(s.session_id),
    },
    t('row.open'),
  );
  return h(
    'tr',
    { dataset: { sessionId: s.session_id } },
    h(
      'td',
      { class: 'col-session' },
      h('div', { class: 'who' }, s.contact.name || h('span', { class: 'muted' }, t('row.noName'))),
      h('div', { class: 'phone' }, s.contact.phone ? formatPhone(s.contact.phone) : h('span', { class: 'muted' }, t('row.noPhone'))),
      h('code', { class: 'session-id mono' }, s.session_id),
    ),
    h(
      'td',
      { class: 'col-date' },
      h(
        'time',
        { datetime: s.started_at, title: formatFull(s.started_at) },
        h('span', { class: 'date' }, formatDate(s.started_at)),
        h('span', { class: 'time' }, formatTime(s.started_at)),
      ),
    ),
    h('td', { class: 'col-channel' }, h('span', { class: `channel channel-${s.channel}` }, channelName(s.channel))),
    h(
      'td',
      { class: 'col-attendance' },
      firstProtocol
        ? h('code', { class: 'mono protocol' }, firstProtocol, s.protocols.length > 1 ? ` +${s.protocols.length - 1}` : '')
        : h('span', { class: 'muted small' }, t('row.noProtocol')),
      h(
        'div',
        {},
        s.handed_off
          ? h('span', { class: 'handoff-mark', dataset: { handedOff: 'true' } }, icon('handoff'), t('row.handedOff'))
          : h('span', { class: 'bot-mark' }, t('row.botOnly')),
      ),
    ),
    h(
      'td',
      { class: 'col-tags' },
      h(
        'ul',
        { class: 'tag-list' },
        tagsShown.map((x) => h('li', { class: 'tag' }, x)),
        s.tags.length > tagsShown.length
          ? h('li', { class: 'tag tag-more', title: s.tags.slice(3).join(', ') }, t('row.moreTags', { n: s.tags.length - 3 }))
          : null,
      ),
    ),
    h('td', { class: 'col-action' }, open),
  );
}

function renderPager() {
  const page = state.previous.length + 1;
  $('#page-number').textContent = t('pager.page', { n: page });
  $('#prev-page').disabled = state.previous.length === 0;
  $('#next-page').disabled = !state.next;
  $('#page-size').value = String(state.limit);
}

// renderChips lists the active criteria, each removable in one click.
function renderChips() {
  const f = state.filter;
  const chips = [];
  const add = (label, without) => chips.push({ label, without });
  const drop = (patch) => () => ({ ...f, ...patch });
  if (f.from || f.to) {
    add(t('chip.interval', { from: formatDayString(f.from), to: formatDayString(f.to) }), drop({ from: '', to: '' }));
  }
  if (f.session) add(t('chip.session', { v: f.session }), drop({ session: '' }));
  if (f.protocol) add(t('chip.protocol', { v: f.protocol }), drop({ protocol: '' }));
  if (f.tags.length) {
    add(t(f.tagMode === 'all' ? 'chip.tagsAll' : 'chip.tagsAny', { v: f.tags.join(', ') }), drop({ tags: [], tagMode: 'any' }));
  }
  f.info.forEach((c, i) => {
    const op = t(`op.${c.op}`).toLocaleLowerCase(language());
    const label = F.takesValue(c.op) ? `${c.key} ${op} “${c.value}”` : `${c.key} ${op}`;
    add(label, drop({ info: f.info.filter((_, j) => j !== i) }));
  });
  if (f.channels.length) add(t('chip.channels', { v: f.channels.map(channelName).join(', ') }), drop({ channels: [] }));
  if (f.contact) add(t('chip.contact', { v: f.contact }), drop({ contact: '' }));
  if (f.q) add(t('chip.q', { v: f.q }), drop({ q: '' }));
  if (f.handedOff) add(t(f.handedOff === 'true' ? 'chip.handedYes' : 'chip.handedNo'), drop({ handedOff: '' }));

  const el = $('#chips');
  const list = chips.map(({ label, without }) =>
    h(
      'span',
      { class: 'chip' },
      h('span', {}, label),
      h(
        'button',
        {
          type: 'button',
          class: 'chip-remove',
          'aria-label': t('filter.removeChip', { label }),
          onclick: () => applyFilter(without()),
        },
        icon('close'),
      ),
    ),
  );
  if (!f.from && !f.to) list.unshift(h('span', { class: 'chip chip-default' }, t('chip.last31')));
  if (chips.length > 1) {
    list.push(
      h('button', { type: 'button', class: 'btn btn-ghost btn-sm', onclick: () => applyFilter(F.emptyFilter()) }, t('filter.clearAll')),
    );
  }
  el.replaceChildren(...list);
  const n = F.activeCount(f);
  const badge = $('#filter-count');
  badge.hidden = n === 0;
  badge.textContent = String(n);
  badge.setAttribute('aria-label', t('filter.active', { n }));
}

// applyFilter shows the first page of f and records it in the URL; the popup
// closes once the API accepted the filter.
async function applyFilter(f) {
  state.filter = f;
  state.cursor = null;
  state.previous = [];
  history.pushState(pagingState(), '', urlFor());
  const ok = await loadList();
  if (ok) {
    dialog.close();
    $('#filter-button').focus();
  }
  return ok;
}

$('#filter-button').addEventListener('click', (e) => dialog.open(state.filter, [], e.currentTarget));

$('#next-page').addEventListener('click', () => {
  if (!state.next) return;
  state.previous = [...state.previous, state.cursor];
  state.cursor = state.next;
  history.replaceState(pagingState(), '', urlFor());
  loadList().then(() => $('#list-title').scrollIntoView({ block: 'nearest' }));
});

$('#prev-page').addEventListener('click', () => {
  if (!state.previous.length) return;
  state.cursor = state.previous[state.previous.length - 1];
  state.previous = state.previous.slice(0, -1);
  history.replaceState(pagingState(), '', urlFor());
  loadList();
});

$('#page-size').addEventListener('change', (e) => {
  state.limit = Number(e.target.value);
  state.cursor = null;
  state.previous = [];
  history.pushState(pagingState(), '', urlFor());
  loadList();
});

for (const b of $$('[data-format]')) {
  b.addEventListener('click', () => exportAs(b.dataset.format, b));
}

const exportTypes = { csv: 'text/csv', jsonl: 'application/x-ndjson' };

// exportAs saves every conversation of the filter. Where the browser can
// write a file as it arrives, the export streams to disk, whatever its size;
// elsewhere it is downloaded from memory.
async function exportAs(format, button) {
  const name = `chatreport-${dayKey()}.${format}`;
  let handle;
  try {
    handle = await pickFile(name, t('export.label'), exportTypes[format]);
  } catch {
    return; // the operator cancelled the save dialog
  }
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  $('#list-alert').hidden = true;
  announce(t('export.running'));
  try {
    const res = await api.export(F.toQuery(state.filter), format);
    const file = handle ? await stream(res, handle) : await save(res, name);
    announce(t('export.done', { name: file.name }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      unauthorized();
      return;
    }
    showAlert($('#list-alert'), t('export.failed', { reason: errorMessage(err) }));
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

// ---- the conversation ----

function openConversation(id) {
  state.lastOpened = id;
  history.replaceState(pagingState(), '', urlFor());
  history.pushState({ fromList: true }, '', urlFor({ open: id }));
  showConversation(id);
}

async function showConversation(id) {
  state.convController?.abort();
  const ctrl = new AbortController();
  state.convController = ctrl;
  show('conversation-view');
  const body = $('#conv-body');
  body.setAttribute('aria-busy', 'true');
  $('#conv-alert').hidden = true;
  $('#conv-title').textContent = t('conv.loading');
  $('#conv-session-id').textContent = id;
  $('#timeline').replaceChildren();
  $('#details').replaceChildren();
  announce(t('conv.loading'));
  $('#conv-title').focus();
  try {
    const detail = await api.session(id, ctrl.signal);
    state.conversation = detail;
    renderConversation();
    announce(t('conv.loaded', { n: detail.messages.length }));
  } catch (err) {
    if (err.name === 'AbortError') return;
    if (err instanceof ApiError && err.status === 401) {
      unauthorized();
      return;
    }
    $('#conv-title').textContent = t('conv.details');
    showAlert($('#conv-alert'), errorMessage(err), err instanceof ApiError && err.status === 404 ? null : () => showConversation(id));
  } finally {
    if (state.convController === ctrl) body.setAttribute('aria-busy', 'false');
  }
}

function renderConversation() {
  const d = state.conversation;
  if (!d) return;
  $('#conv-title').textContent = contactLabel(d.contact) || d.session_id;
  $('#conv-session-id').textContent = d.session_id;
  renderTimeline($('#timeline'), d);
  renderDetails($('#details'), d);
}

$('#conv-back').addEventListener('click', () => {
  if (history.state?.fromList) {
    history.back();
    return;
  }
  history.pushState(pagingState(), '', urlFor());
  route(history.state);
});

$('#conv-copy').addEventListener('click', async () => {
  const id = $('#conv-session-id').textContent;
  try {
    await navigator.clipboard.writeText(id);
    announce(t('conv.copied'));
  } catch {
    // Outside a secure context there is no clipboard API: select the id so
    // the operator can copy it.
    const range = document.createRange();
    range.selectNodeContents($('#conv-session-id'));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    announce(t('conv.copyFailed'));
  }
});

$('#conv-transcript').addEventListener('click', async (e) => {
  const button = e.currentTarget;
  const id = $('#conv-session-id').textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  $('#conv-alert').hidden = true;
  try {
    const file = await save(await api.transcript(id), `chatreport-${id}.txt`);
    announce(t('export.done', { name: file.name }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      unauthorized();
      return;
    }
    showAlert($('#conv-alert'), t('export.failed', { reason: errorMessage(err) }));
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
});

// ---- routing ----

function route(historyState) {
  const { filter, limit, open } = readURL();
  if (!credentials.get()) {
    showLogin();
    return;
  }
  const sameFilter = urlFor({ filter, limit }) === urlFor();
  state.filter = filter;
  state.limit = limit;
  if (historyState && 'cursor' in historyState) {
    state.cursor = historyState.cursor;
    state.previous = historyState.previous || [];
  } else if (!sameFilter) {
    state.cursor = null;
    state.previous = [];
  }
  if (open) {
    showConversation(open);
    return;
  }
  dialog.close();
  state.convController?.abort();
  const wasHidden = $('#list-view').hidden;
  show('list-view');
  if (state.loadedKey !== listKey()) {
    loadList();
  } else if (wasHidden && state.lastOpened) {
    // Back from a conversation: keyboard users continue where they were.
    $(`#rows tr[data-session-id="${CSS.escape(state.lastOpened)}"] .open-button`)?.focus();
  }
}

window.addEventListener('popstate', (e) => route(e.state));

// ---- language ----

function renderLanguage() {
  translatePage();
  for (const icons of $$('.btn-icon[data-icon]')) {
    if (!icons.firstChild) icons.append(icon(icons.dataset.icon));
  }
  for (const b of $$('.lang-button')) b.setAttribute('aria-pressed', String(b.dataset.lang === language()));
  $('#list-caption').textContent = t('list.caption', { tz: timeZone });
  if (state.loadedKey && state.items) {
    $('#rows').replaceChildren(...state.items.map(sessionRow));
    renderPager();
    renderChips();
    const total = Number($('#total').dataset.total);
    if (!Number.isNaN(total)) $('#total').textContent = t('list.total', { n: total });
  }
  renderConversation();
  dialog.retranslate();
}

for (const b of $$('.lang-button')) {
  b.addEventListener('click', () => {
    setLanguage(b.dataset.lang);
    renderLanguage();
  });
}

setLanguage(initialLanguage());
renderLanguage();
route(history.state);
