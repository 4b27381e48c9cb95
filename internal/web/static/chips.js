// The chips above the list: each active criterion of the filter, removable
// in one click, and the count on the Filtrar button.

import { t, language } from './i18n.js';
import { h, $, icon } from './dom.js';
import * as F from './filter.js';
import { formatDayString, channelName } from './format.js';

// renderFilterChips shows f's criteria in el; apply(filter) runs a filter.
export function renderFilterChips(el, f, apply) {
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
    const label = c.value ? `${c.key} ${op} “${c.value}”` : `${c.key} ${op}`;
    add(label, drop({ info: f.info.filter((_, j) => j !== i) }));
  });
  if (f.channels.length) add(t('chip.channels', { v: f.channels.map(channelName).join(', ') }), drop({ channels: [] }));
  if (f.contact) add(t('chip.contact', { v: f.contact }), drop({ contact: '' }));
  if (f.q) add(t('chip.q', { v: f.q }), drop({ q: '' }));
  if (f.handedOff) add(t(f.handedOff === 'true' ? 'chip.handedYes' : 'chip.handedNo'), drop({ handedOff: '' }));
  if (f.outcomes.length) add(t('chip.outcomes', { v: f.outcomes.map((o) => t(`outcome.${o}`)).join(', ') }), drop({ outcomes: [] }));
  if (f.agent) add(t('chip.agent', { v: f.agent }), drop({ agent: '' }));
  if (f.queue) add(t('chip.queue', { v: f.queue }), drop({ queue: '' }));

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
          onclick: () => apply(without()),
        },
        icon('close'),
      ),
    ),
  );
  if (!f.from && !f.to) list.unshift(h('span', { class: 'chip chip-default' }, t('chip.last31')));
  if (chips.length > 1) {
    list.push(h('button', { type: 'button', class: 'btn btn-ghost btn-sm', onclick: () => apply(F.emptyFilter()) }, t('filter.clearAll')));
  }
  el.replaceChildren(...list);
  const n = F.activeCount(f);
  const badge = $('#filter-count');
  badge.hidden = n === 0;
  badge.textContent = String(n);
  badge.setAttribute('aria-label', t('filter.active', { n }));
}
