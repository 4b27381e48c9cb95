// The report screen: sign-in, the paginated list of sessions (the source's
// Figure 1), the filter popup, the conversation view and exports. The page's
// query string holds the filter in the API's own parameters, plus open=<id>
// for a conversation, so any view can be bookmarked or shared.

import { t, translatePage, setLanguage, initialLanguage, language, formatNumber } from './i18n.js';
import { api, credentials, save, ApiError } from './api.js';
import { errorMessage, fieldLabel, paramMessage } from './errors.js';
import { Exports } from './export.js';
import { renderFilterChips } from './chips.js';
import { h, $, $$, icon } from './dom.js';
import * as F from './filter.js';
import { FilterDialog } from './dialog.js';
import { renderTimeline, renderDetails, contactLabel, statusLabel } from './conversation.js';
import { formatDate, formatTime, formatFull, timeZone, channelName, formatPhone } from './format.js';

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
  refused: null, // the API's errors for the filter on screen, when it refused it
  total: null, // the total of the list on screen
  totalExact: true, // false: the API counted up to total and no further
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
  $('#list-alert').hidden = true;
  exporter.dismiss();
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
  state.refused = null;
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
    // A refused link: the popup opens with the bad fields marked and the
    // rest kept; behind it, the criteria and what to do about them.
    state.refused = errors;
    state.items = [];
    state.total = null;
    $('#rows').replaceChildren();
    $('#empty').hidden = true;
    $('#total').textContent = '';
    renderPager();
    renderChips();
    showRefused();
    dialog.open(state.filter, errors, $('#filter-button'));
    return;
  }
  showAlert($('#list-alert'), errorMessage(err), () => loadList());
  announce(errorMessage(err));
}

function showRefused() {
  const reasons = state.refused.map((e) => `${fieldLabel(e.param)}: ${paramMessage(e)}`).join(' ');
  showAlert($('#list-alert'), t('filter.refused', { reasons }));
  $('#list-alert').append(
    h('button', { type: 'button', class: 'btn btn-secondary btn-sm', onclick: (e) => dialog.open(state.filter, state.refused, e.currentTarget) }, t('filter.reopen')),
  );
}

function totalText() {
  return t(state.totalExact ? 'list.total' : 'list.totalMore', { n: state.total });
}

function renderList(data) {
  state.refused = null;
  state.total = data.total;
  // Past its bound the API may count no further (total_exact false).
  state.totalExact = data.total_exact !== false;
  $('#total').textContent = totalText();
  $('#total').dataset.total = String(data.total);
  $('#rows').replaceChildren(...data.items.map(sessionRow));
  $('#empty').hidden = data.items.length > 0;
  renderPager();
  renderChips();
}

// sessionRow is one line of the list; a click anywhere on it opens the
// conversation, and its button is the keyboard's way in.
function sessionRow(s) {
  const who = contactLabel(s.contact);
  // The attendance the row names: the first that meets the filter's
  // attendance conditions by itself, else the latest.
  const atts = s.attendances || [];
  const matched = atts.filter((a) => a.matched);
  const shown = matched[0] || atts[atts.length - 1];
  // The filter's tags first: they are why the row is here.
  const wanted = new Set(state.filter.tags);
  const tagsShown = [...s.tags.filter((x) => wanted.has(x)), ...s.tags.filter((x) => !wanted.has(x))].slice(0, 3);
  const open = h(
    'button',
    {
      type: 'button',
      class: 'btn btn-secondary btn-sm open-button',
      'aria-label': t('row.openLabel', { who: who || s.session_id }),
      onclick: () => openConversation(s.session_id),
    },
    t('row.open'),
  );
  const row = h(
    'tr',
    { dataset: { sessionId: s.session_id } },
    h(
      'td',
      { class: 'col-session', title: [s.contact.name, formatPhone(s.contact.phone)].filter(Boolean).join(' · ') },
      h('span', { class: 'who' }, s.contact.name || h('span', { class: 'muted' }, t('row.noName'))),
      h('span', { class: 'phone' }, s.contact.phone ? formatPhone(s.contact.phone) : h('span', { class: 'muted' }, t('row.noPhone'))),
    ),
    h('td', { class: 'col-id' }, h('code', { class: 'session-id mono' }, s.session_id)),
    h(
      'td',
      { class: 'col-date' },
      h(
        'time',
        { datetime: s.started_at, title: formatFull(s.started_at) },
        h('span', { class: 'date' }, formatDate(s.started_at)),
        h('span', { class: 'time' }, formatTime(s.started_at)),
      ),
      h('span', { class: `status session-status status-${s.status}` }, statusLabel(s.status)),
    ),
    h('td', { class: 'col-channel' }, h('span', { class: `channel channel-${s.channel}` }, channelName(s.channel))),
    h(
      'td',
      { class: 'col-attendance' },
      shown
        ? h(
            'span',
            { class: 'attendance-shown', title: matched.length ? t('row.matchedAttendance') : '' },
            matched.length ? h('span', { class: 'matched-mark', 'aria-label': t('row.matchedAttendance') }, '✓') : null,
            h('code', { class: 'mono protocol' }, shown.protocol, atts.length > 1 ? ` +${atts.length - 1}` : ''),
            h('span', { class: `status outcome-${shown.outcome}` }, statusLabel(`outcome.${shown.outcome}`)),
          )
        : h('span', { class: 'muted small' }, t('row.noProtocol')),
      s.handed_off
        ? h(
            'span',
            // Beside an attendance's outcome the mark is its icon alone, named.
            { class: shown ? 'handoff-mark handoff-mark-icon' : 'handoff-mark', dataset: { handedOff: 'true' }, title: t('row.handedOff'), 'aria-label': t('row.handedOff') },
            icon('handoff'),
            shown ? null : t('row.handedOff'),
          )
        : shown
          ? null // the outcome says it stayed with the bot
          : h('span', { class: 'bot-mark' }, t('row.botOnly')),
    ),
    h(
      'td',
      { class: 'col-tags', title: s.tags.join(', ') },
      h(
        'ul',
        { class: 'tag-list' },
        tagsShown.map((x) => h('li', { class: 'tag' }, x)),
        s.tags.length > tagsShown.length ? h('li', { class: 'tag tag-more' }, t('row.moreTags', { n: s.tags.length - 3 })) : null,
      ),
    ),
    h('td', { class: 'col-action' }, open),
  );
  row.addEventListener('click', (e) => {
    // Not when the operator selects text to copy, nor twice for the button.
    if (e.target.closest('button, a') || String(getSelection()) !== '') return;
    openConversation(s.session_id);
  });
  return row;
}

function renderPager() {
  // "21–40 of 505": where this page is in the whole list.
  const range = $('#page-range');
  const first = state.previous.length * state.limit + 1;
  if (state.total === null) {
    range.textContent = '';
  } else if (!state.items.length) {
    range.textContent = t('pager.none');
  } else {
    const last = first + state.items.length - 1;
    const key = state.totalExact ? 'pager.range' : 'pager.rangeMore';
    range.textContent = t(key, { from: formatNumber(first), to: formatNumber(last), total: formatNumber(state.total) });
  }
  $('#prev-page').disabled = state.previous.length === 0;
  $('#next-page').disabled = !state.next;
  $('#page-size').value = String(state.limit);
}

// renderChips lists the active criteria, each removable in one click.
function renderChips() {
  renderFilterChips($('#chips'), state.filter, applyFilter);
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

const exporter = new Exports({ filter: () => F.toQuery(state.filter), announce, onUnauthorized: unauthorized });

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
    if (state.total !== null) $('#total').textContent = totalText();
  }
  if (state.refused) showRefused();
  exporter.retranslate();
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
