// The conversation view: one timeline with the customer on one side, the bot
// and the human agents on the other, and the flow's handoff, tag and
// information events as small lines between them.

import { t } from './i18n.js';
import { h, icon } from './dom.js';
import {
  formatDateTime,
  formatDay,
  formatFull,
  formatTime,
  formatTimeSeconds,
  dayKey,
  channelName,
  formatPhone,
} from './format.js';

// Instants from the API may carry nanoseconds; compare them exactly.
function instant(iso) {
  const frac = /\.(\d+)/.exec(iso)?.[1] || '';
  return { ms: Date.parse(iso), frac: frac.padEnd(9, '0') };
}

function compareItems(a, b) {
  if (a.at.ms !== b.at.ms) return a.at.ms - b.at.ms;
  if (a.at.frac !== b.at.frac) return a.at.frac < b.at.frac ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function contactLabel(contact) {
  return contact?.name || formatPhone(contact?.phone) || contact?.id || '';
}

export function statusLabel(status) {
  const key = status.includes('.') ? status : `status.${status}`;
  const s = t(key);
  return s === key ? status : s;
}

// outcomeTitle names the platform's own closing status where the outcome
// does not (a status of its own, or resolved without one).
function outcomeTitle(a) {
  return a.status && a.status !== 'open' ? `${t('conv.platformStatus')}: ${a.status}` : '';
}

// timeline merges messages and events in the pipeline's order.
function timeline(detail) {
  const items = [
    ...detail.messages.map((m) => ({ kind: 'message', at: instant(m.occurred_at), id: m.event_id, m })),
    ...detail.events.map((e) => ({ kind: 'event', at: instant(e.occurred_at), id: e.event_id, e })),
  ];
  return items.sort(compareItems);
}

function timeEl(iso, withSeconds = false) {
  return h('time', { datetime: iso, title: formatFull(iso) }, withSeconds ? formatTimeSeconds(iso) : formatTime(iso));
}

function authorLabel(m, detail) {
  const role = t(`role.${m.author.role}`);
  let name = m.author.name;
  if (m.author.role === 'customer') name = name || contactLabel(detail.contact);
  return name && name !== role ? `${role} · ${name}` : role;
}

function attachments(list) {
  if (!list?.length) return null;
  return h(
    'ul',
    { class: 'attachments' },
    list.map((a) => {
      let label = a.name || a.url.split('/').pop() || t('conv.attachment');
      if (a.mime_type) label += ` (${a.mime_type})`;
      return h(
        'li',
        {},
        h('a', { href: a.url, target: '_blank', rel: 'noopener noreferrer', class: 'attachment' }, icon('clip'), label),
      );
    }),
  );
}

function messageItem(m, detail) {
  const role = ['customer', 'bot', 'agent'].includes(m.author.role) ? m.author.role : 'bot';
  return h(
    'li',
    { class: `msg msg-${role}` },
    h(
      'article',
      { class: 'bubble', dataset: { role, eventId: m.event_id } },
      h('header', { class: 'bubble-author' }, authorLabel(m, detail)),
      m.text ? h('p', { class: 'bubble-text' }, m.text) : null,
      attachments(m.attachments),
      h('footer', { class: 'bubble-meta' }, timeEl(m.occurred_at)),
    ),
  );
}

function eventText(e) {
  switch (e.type) {
    case 'handoff': {
      const ho = e.handoff || {};
      const queue = ho.queue || t('event.anyQueue');
      const agent = ho.agent?.name || ho.agent?.id || t('event.anyAgent');
      let s;
      switch (ho.action) {
        case 'requested':
          s = t('event.requested', { queue });
          break;
        case 'assigned':
          s = t('event.assigned', { agent, queue });
          break;
        case 'transferred':
          s = t('event.transferred', { agent, queue });
          break;
        case 'closed':
          s = t('event.closed', { status: statusLabel(ho.status || 'closed') });
          break;
        default:
          s = ho.action || 'handoff';
      }
      return ho.reason ? `${s} · ${t('event.reason', { reason: ho.reason })}` : s;
    }
    case 'tag':
      return t('event.tag', { tag: e.tag });
    case 'info':
      return t('event.info', { key: e.info?.key, value: e.info?.value });
    default:
      return e.type;
  }
}

function eventItem(e) {
  return h(
    'li',
    { class: `system-line system-${e.type}`, dataset: { type: e.type, eventId: e.event_id } },
    h('span', { class: 'system-text' }, e.type === 'handoff' ? icon('handoff') : null, eventText(e)),
    timeEl(e.occurred_at, true),
  );
}

// renderTimeline fills list with the conversation, marking the days and the
// start of each attendance (protocol).
export function renderTimeline(list, detail) {
  const out = [];
  let day = '';
  const seenProtocols = new Set();
  const attendance = new Map((detail.attendances || []).map((a) => [a.protocol, a]));
  for (const item of timeline(detail)) {
    const iso = item.kind === 'message' ? item.m.occurred_at : item.e.occurred_at;
    const d = dayKey(iso);
    if (d !== day) {
      day = d;
      const label = formatDay(iso);
      out.push(h('li', { class: 'day-divider', role: 'presentation' }, h('span', {}, label.charAt(0).toUpperCase() + label.slice(1))));
    }
    const protocol = item.kind === 'message' ? item.m.protocol : item.e.protocol;
    if (protocol && !seenProtocols.has(protocol)) {
      seenProtocols.add(protocol);
      const a = attendance.get(protocol);
      out.push(
        h(
          'li',
          { class: 'protocol-divider', dataset: { protocol } },
          h('span', {}, t('conv.protocolStart', { protocol }), a ? ` · ${statusLabel(`outcome.${a.outcome}`)}` : ''),
        ),
      );
    }
    out.push(item.kind === 'message' ? messageItem(item.m, detail) : eventItem(item.e));
  }
  if (!detail.messages.length) out.push(h('li', { class: 'empty' }, t('conv.noMessages')));
  list.replaceChildren(...out);
}

function row(label, ...value) {
  return [h('dt', {}, label), h('dd', {}, ...value)];
}

function tagList(tags) {
  if (!tags?.length) return h('span', { class: 'muted' }, t('conv.none'));
  return h('ul', { class: 'tag-list' }, tags.map((x) => h('li', { class: 'tag' }, x)));
}

// renderDetails fills the side panel: who, when, status, attendances.
export function renderDetails(el, d) {
  const counts = d.message_counts || { customer: 0, bot: 0, agent: 0 };
  const info = Object.entries(d.info || {}).sort(([a], [b]) => (a < b ? -1 : 1));
  const statusClass = d.status === 'active' ? 'status status-active' : 'status';
  el.replaceChildren(
    h(
      'dl',
      { class: 'details' },
      row(t('conv.channel'), h('span', { class: `channel channel-${d.channel}` }, channelName(d.channel))),
      row(t('conv.contact'), d.contact?.name || h('span', { class: 'muted' }, t('row.noName'))),
      row(t('conv.phone'), d.contact?.phone ? formatPhone(d.contact.phone) : h('span', { class: 'muted' }, t('row.noPhone'))),
      row(t('conv.contactId'), h('code', { class: 'mono' }, d.contact?.id || '')),
      row(t('conv.started'), h('time', { datetime: d.started_at, title: formatFull(d.started_at) }, formatDateTime(d.started_at))),
      row(
        t('conv.lastActivity'),
        h('time', { datetime: d.last_activity_at, title: formatFull(d.last_activity_at) }, formatDateTime(d.last_activity_at)),
      ),
      row(
        t('conv.windowEnds'),
        h('time', { datetime: d.window_ends_at, title: formatFull(d.window_ends_at) }, formatDateTime(d.window_ends_at)),
      ),
      row(t('conv.status'), h('span', { class: statusClass }, statusLabel(d.status))),
      row(t('conv.messages'), t('conv.messageCounts', counts)),
      row(
        t('conv.agents'),
        d.agents?.length
          ? d.agents.map((a) => a.name || a.id).join(', ')
          : h('span', { class: 'muted' }, t('conv.none')),
      ),
    ),
    h('h3', { class: 'details-heading' }, t('conv.attendances')),
    d.attendances?.length
      ? h(
          'ul',
          { class: 'attendances' },
          d.attendances.map((a) =>
            h(
              'li',
              { class: 'attendance' },
              h(
                'div',
                { class: 'attendance-top' },
                h('code', { class: 'mono' }, a.protocol),
                h('span', { class: `status outcome-${a.outcome}`, title: outcomeTitle(a) }, statusLabel(`outcome.${a.outcome}`)),
              ),
              h(
                'div',
                { class: 'attendance-meta muted small' },
                `${formatDateTime(a.started_at)} – ${formatTime(a.ended_at)}`,
                a.handed_off ? h('span', { class: 'handoff-mark' }, icon('handoff'), t('row.handedOff')) : null,
              ),
            ),
          ),
        )
      : h('p', { class: 'muted small' }, t('conv.none')),
    h('h3', { class: 'details-heading' }, t('conv.tags')),
    tagList(d.tags),
    h('h3', { class: 'details-heading' }, t('conv.info')),
    info.length
      ? h(
          'dl',
          { class: 'info-list' },
          info.map(([k, v]) => [h('dt', { class: 'mono' }, k), h('dd', {}, v)]),
        )
      : h('p', { class: 'muted small' }, t('conv.none')),
  );
}
