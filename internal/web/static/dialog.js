// The filter popup (the source's Figure 2): a modal <dialog> whose form reads
// and writes a filter, offers the interval's tags, keys and channels, checks
// what it can before the API does, and shows the API's messages next to the
// fields they concern.

import { t } from './i18n.js';
import { api } from './api.js';
import { h, $, $$, icon } from './dom.js';
import * as F from './filter.js';
import { dayKey, channelName } from './format.js';
import { paramMessage } from './errors.js';

// Where each API parameter's message goes.
const errorSlots = {
  from: 'f-from-error',
  to: 'f-to-error',
  session: 'f-session-error',
  protocol: 'f-protocol-error',
  tag: 'f-tags-error',
  tag_mode: 'f-tags-error',
  info: 'f-info-error',
  channel: 'f-channel-error',
  contact: 'f-contact-error',
  handed_off: 'f-handed_off-error',
  outcome: 'f-outcome-error',
  agent: 'f-agent-error',
  queue: 'f-queue-error',
  q: 'f-q-error',
};
// The input to mark invalid and focus for each slot.
const slotInputs = {
  'f-from-error': 'f-from',
  'f-to-error': 'f-to',
  'f-session-error': 'f-session',
  'f-protocol-error': 'f-protocol',
  'f-contact-error': 'f-contact',
  'f-agent-error': 'f-agent',
  'f-queue-error': 'f-queue',
  'f-q-error': 'f-q',
};

export class FilterDialog {
  // onApply(filter) runs the query and resolves to true when it succeeded;
  // seen() returns the tags, channels and keys of the rows on screen, offered
  // when the facets cannot be loaded.
  constructor({ onApply, seen, onUnauthorized }) {
    this.onApply = onApply;
    this.seen = seen;
    this.onUnauthorized = onUnauthorized;
    this.dialog = $('#filter-dialog');
    this.form = $('#filter-form');
    this.facets = null;
    this.facetsFor = null;
    this.facetsAt = 0;
    this.facetsController = null;
    this.rowSeq = 0;
    this.opener = null;
    this.apiErrors = []; // the API's errors on screen, to retranslate them

    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    $('#filter-close').addEventListener('click', () => this.close());
    $('#filter-cancel').addEventListener('click', () => this.close());
    $('#filter-clear').addEventListener('click', () => {
      this.fill(F.emptyFilter());
      this.clearErrors();
      this.loadFacets();
      $('#f-from').focus();
    });
    this.dialog.addEventListener('close', () => {
      this.facetsController?.abort();
      this.opener?.focus();
    });
    for (const b of $$('[data-preset]', this.form)) {
      b.addEventListener('click', () => this.preset(Number(b.dataset.preset)));
    }
    for (const id of ['f-from', 'f-to']) {
      $(`#${id}`).addEventListener('change', () => this.intervalChanged());
    }
    $('#f-tags-search').addEventListener('input', () => this.filterTags());
    // Enter in the tag search narrows the list; it does not apply the filter.
    $('#f-tags-search').addEventListener('keydown', (e) => {
      if (e.key === 'Enter') e.preventDefault();
    });
    $('#f-info-add').addEventListener('click', () => {
      const row = this.addInfoRow({ key: '', op: 'equals', value: '' });
      $('.info-key', row).focus();
    });
  }

  get isOpen() {
    return this.dialog.open;
  }

  // open shows the popup filled with filter; errors are the API's
  // [{param, message}] for that filter, if it was refused.
  async open(filter, errors = [], opener = document.activeElement) {
    if (!(await this.loadRules())) return;
    this.opener = opener;
    this.fill(filter);
    this.clearErrors();
    this.shown = filter; // the filter the API's errors are about
    if (!this.dialog.open) this.dialog.showModal();
    this.showApiErrors(errors);
    this.loadFacets();
    if (!errors.length) $('#f-from').focus();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  // loadRules fetches the filter's rules once; it resolves to false when
  // the key was refused. Without rules (the API did not answer) the popup
  // still opens, and the API checks the filter alone.
  async loadRules() {
    if (F.hasRules()) return true;
    try {
      F.setRules(await api.rules());
    } catch (err) {
      if (err.status === 401) {
        this.onUnauthorized();
        return false;
      }
    }
    return true;
  }

  // retranslate refreshes the parts built by script after a language switch.
  retranslate() {
    if (!this.dialog.open) return;
    const f = this.read();
    this.renderChoices(f);
    for (const row of $$('.info-row', this.form)) this.labelInfoRow(row);
    const errors = this.apiErrors;
    if (errors.length) {
      this.clearErrors();
      this.showApiErrors(errors, false);
    }
  }

  // ---- form ⇄ filter ----

  fill(f) {
    $('#f-from').value = f.from;
    $('#f-to').value = f.to;
    this.updateDateBounds();
    $('#f-session').value = f.session;
    $('#f-protocol').value = f.protocol;
    $(`#f-tag-${f.tagMode === 'all' ? 'all' : 'any'}`).checked = true;
    $('#f-tags-search').value = '';
    $('#f-info-rows').replaceChildren();
    for (const c of f.info) this.addInfoRow(c);
    $('#f-contact').value = f.contact;
    $('#f-q').value = f.q;
    const handed = { true: 'yes', false: 'no' }[f.handedOff] || 'any';
    $(`#f-handed-${handed}`).checked = true;
    $('#f-agent').value = f.agent;
    $('#f-queue').value = f.queue;
    this.renderChoices(f);
  }

  read() {
    const f = F.emptyFilter();
    f.from = $('#f-from').value;
    f.to = $('#f-to').value;
    f.session = $('#f-session').value.trim();
    f.protocol = $('#f-protocol').value.trim();
    f.tags = $$('#f-tags-list input:checked').map((i) => i.value);
    f.tagMode = $('#f-tag-all').checked ? 'all' : 'any';
    for (const row of $$('.info-row', this.form)) {
      const c = {
        key: $('.info-key', row).value.trim(),
        op: $('.info-op', row).value,
        value: $('.info-value', row).value.trim(),
      };
      if (!F.takesValue(c.op)) c.value = '';
      // A row left blank is no condition.
      if (!c.key && !c.value && F.takesValue(c.op)) continue;
      f.info.push(c);
    }
    f.channels = $$('#f-channels input:checked').map((i) => i.value);
    f.contact = $('#f-contact').value.trim();
    f.q = $('#f-q').value.trim();
    f.handedOff = this.form.elements.handed_off.value;
    f.outcomes = $$('#f-outcomes input:checked').map((i) => i.value);
    f.agent = $('#f-agent').value.trim();
    f.queue = $('#f-queue').value.trim();
    return f;
  }

  // ---- interval ----

  preset(days) {
    const today = F.dayNumber(dayKey());
    $('#f-from').value = F.dayString(today - days + 1);
    $('#f-to').value = F.dayString(today);
    this.intervalChanged();
  }

  // The date pickers only offer intervals of at most 31 days; typed dates
  // are checked at once.
  updateDateBounds() {
    const from = F.dayNumber($('#f-from').value);
    const to = F.dayNumber($('#f-to').value);
    const days = F.maxDays();
    const fromInput = $('#f-from');
    const toInput = $('#f-to');
    toInput.min = Number.isNaN(from) ? '' : F.dayString(from);
    toInput.max = Number.isNaN(from) || !days ? '' : F.dayString(from + days - 1);
    fromInput.min = Number.isNaN(to) || !days ? '' : F.dayString(to - days + 1);
    fromInput.max = Number.isNaN(to) ? '' : F.dayString(to);
  }

  intervalChanged() {
    this.updateDateBounds();
    const f = this.read();
    const errors = F.validate(f);
    for (const p of ['from', 'to']) this.setError(errorSlots[p], errors[p] ? t(errors[p]) : '');
    if (!errors.from && !errors.to) this.loadFacets();
  }

  // ---- facets: tags, keys and channels to choose from ----

  async loadFacets() {
    const from = $('#f-from').value;
    const to = $('#f-to').value;
    const errors = F.validate({ ...F.emptyFilter(), from, to });
    const interval = errors.from || errors.to ? ['', ''] : [from, to];
    const key = interval.join('/');
    // Counts change as sessions arrive: reuse them for a minute only.
    if (this.facetsFor === key && this.facets && Date.now() - this.facetsAt < 60_000) return;
    this.facetsController?.abort();
    const ctrl = new AbortController();
    this.facetsController = ctrl;
    const status = $('#facets-status');
    status.textContent = t('filter.facetsLoading');
    this.dialog.dataset.facets = 'loading';
    try {
      const facets = await api.facets(interval[0], interval[1], ctrl.signal);
      this.facets = facets;
      this.facetsFor = key;
      this.facetsAt = Date.now();
      status.textContent = '';
      this.dialog.dataset.facets = 'ready';
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (err.status === 401) {
        this.close();
        this.onUnauthorized();
        return;
      }
      this.facets = null;
      this.facetsFor = null;
      status.textContent = t('filter.facetsFailed');
      this.dialog.dataset.facets = 'failed';
    }
    if (this.dialog.open) this.renderChoices(this.read());
  }

  // choices merges the facet values with the selected ones (a bookmarked
  // filter may name a tag this interval lacks) and, without facets, with the
  // values of the rows on screen.
  choices(facetList, selected, seenValues) {
    const out = new Map();
    if (this.facets) {
      for (const v of facetList || []) out.set(v.value, v.count);
    } else {
      for (const v of seenValues) out.set(v, undefined);
    }
    for (const v of selected) if (!out.has(v)) out.set(v, undefined);
    return [...out];
  }

  renderChoices(f) {
    // The outcomes the API serves, in the operator's words (again when the
    // language changes).
    $('#f-outcomes').replaceChildren(
      ...F.outcomes().map((o) =>
        h(
          'label',
          { class: 'check' },
          h('input', { type: 'checkbox', value: o, checked: f.outcomes.includes(o) }),
          h('span', { class: `status outcome-${o}` }, t(`outcome.${o}`)),
        ),
      ),
    );
    const seen = this.seen();
    const tags = this.choices(this.facets?.tags, f.tags, [...seen.tags].sort());
    const list = $('#f-tags-list');
    list.replaceChildren(
      ...tags.map(([value, count], i) => this.checkbox('tag', `f-tag-${i}`, value, value, count, f.tags.includes(value))),
    );
    if (!tags.length) list.append(h('p', { class: 'hint' }, t('filter.tagsNone')));
    this.filterTags();

    const channels = this.choices(this.facets?.channels, f.channels, [...seen.channels].sort());
    const chList = $('#f-channels');
    chList.replaceChildren(
      ...channels.map(([value, count], i) =>
        this.checkbox('channel', `f-channel-${i}`, value, channelName(value), count, f.channels.includes(value)),
      ),
    );
    if (!channels.length) chList.append(h('p', { class: 'hint' }, t('filter.channelsNone')));

    const keys = this.choices(this.facets?.info_keys, f.info.map((c) => c.key).filter(Boolean), [...seen.infoKeys].sort());
    $('#info-keys').replaceChildren(...keys.map(([value, count]) => h('option', { value }, count === undefined ? '' : `${count}`)));
  }

  checkbox(name, id, value, label, count, checked) {
    return h(
      'label',
      { class: 'check', for: id },
      h('input', { type: 'checkbox', name, id, value, checked }),
      h('span', { class: 'check-label' }, label),
      count === undefined ? null : h('span', { class: 'check-count' }, String(count)),
    );
  }

  filterTags() {
    const q = $('#f-tags-search').value.trim().toLocaleLowerCase();
    for (const label of $$('#f-tags-list .check')) {
      const value = $('input', label).value.toLocaleLowerCase();
      label.hidden = q !== '' && !value.includes(q) && !$('input', label).checked;
    }
  }

  // ---- additional-information conditions ----

  addInfoRow(c) {
    const n = ++this.rowSeq;
    const op = h(
      'select',
      { id: `info-op-${n}`, class: 'info-op' },
      F.ops().map((o) => h('option', { value: o, selected: o === c.op }, t(`op.${o}`))),
    );
    const value = h('input', {
      id: `info-value-${n}`,
      class: 'info-value',
      type: 'text',
      autocomplete: 'off',
      value: c.value,
      'aria-describedby': `info-error-${n}`,
    });
    const key = h('input', {
      id: `info-key-${n}`,
      class: 'info-key mono',
      type: 'text',
      list: 'info-keys',
      autocomplete: 'off',
      spellcheck: 'false',
      value: c.key,
      placeholder: 'NAO_TRANSBORDADA',
      'aria-describedby': `info-error-${n}`,
    });
    const remove = h(
      'button',
      { type: 'button', class: 'btn btn-ghost btn-icon-only info-remove' },
      icon('trash'),
    );
    const row = h(
      'div',
      { class: 'info-row' },
      h('div', { class: 'field' }, h('label', { for: key.id, class: 'info-key-label' }), key),
      h('div', { class: 'field' }, h('label', { for: op.id, class: 'info-op-label' }), op),
      h('div', { class: 'field grow' }, h('label', { for: value.id, class: 'info-value-label' }), value),
      remove,
      h('p', { class: 'field-error info-error', id: `info-error-${n}` }),
    );
    if (c.op && !F.ops().includes(c.op)) {
      // A hand-edited link's unknown operation: keep it so the API explains.
      op.prepend(h('option', { value: c.op, selected: true }, c.op));
    }
    const sync = () => {
      value.disabled = !F.takesValue(op.value);
      if (value.disabled) value.value = '';
    };
    op.addEventListener('change', sync);
    sync();
    remove.addEventListener('click', () => {
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      this.labelInfoRows();
      (next ? $('.info-key', next) : $('#f-info-add')).focus();
    });
    $('#f-info-rows').append(row);
    this.labelInfoRows();
    return row;
  }

  labelInfoRows() {
    $$('.info-row', this.form).forEach((row) => this.labelInfoRow(row));
  }

  labelInfoRow(row) {
    const n = $$('.info-row', this.form).indexOf(row) + 1;
    $('.info-key-label', row).textContent = t('filter.infoKey');
    $('.info-op-label', row).textContent = t('filter.infoOp');
    $('.info-value-label', row).textContent = t('filter.infoValue');
    $('.info-remove', row).setAttribute('aria-label', t('filter.infoRemove', { n }));
    for (const o of $$('option', $('.info-op', row))) {
      if (F.ops().includes(o.value)) o.textContent = t(`op.${o.value}`);
    }
  }

  // ---- errors ----

  clearErrors() {
    this.apiErrors = [];
    for (const el of $$('.field-error', this.form)) el.textContent = '';
    for (const el of $$('[aria-invalid]', this.form)) el.removeAttribute('aria-invalid');
    $('#filter-alert').hidden = true;
  }

  setError(slot, message) {
    const el = document.getElementById(slot);
    el.textContent = message;
    const input = slotInputs[slot] && document.getElementById(slotInputs[slot]);
    if (input) {
      if (message) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    }
  }

  // showApiErrors puts each of the API's errors next to its field, in the
  // operator's language (from its code): an info condition's error on its
  // row (index is the condition's place, the row's), a tag's or channel's
  // with the value it concerns. Errors of parameters without a field go to
  // the top of the form.
  showApiErrors(errors, focus = true) {
    if (!errors.length) return;
    this.apiErrors = errors;
    const bySlot = new Map();
    const general = [];
    const rows = $$('.info-row', this.form);
    const values = { tag: this.shown?.tags, channel: this.shown?.channels };
    for (const e of errors) {
      const message = paramMessage(e);
      const row = e.param === 'info' && e.index !== undefined ? rows[e.index] : null;
      if (row) {
        const field = { unknown_operation: '.info-op', value_required: '.info-value', value_not_allowed: '.info-value', too_long: '.info-value' }[e.code] || '.info-key';
        $(field, row).setAttribute('aria-invalid', 'true');
        const slot = $('.info-error', row);
        slot.textContent = [slot.textContent, message].filter(Boolean).join(' ');
        continue;
      }
      const slot = errorSlots[e.param];
      if (!slot) {
        general.push(e.param ? `${e.param}: ${message}` : message);
        continue;
      }
      const value = e.index !== undefined ? values[e.param]?.[e.index] : undefined;
      bySlot.set(slot, [...(bySlot.get(slot) || []), value !== undefined ? `“${value}”: ${message}` : message]);
    }
    for (const [slot, messages] of bySlot) this.setError(slot, messages.join(' '));
    const alert = $('#filter-alert');
    alert.textContent = [t('filter.fix'), ...general].join(' ');
    alert.hidden = false;
    if (focus) this.focusFirstError();
  }

  showLocalErrors(errors) {
    for (const p of ['from', 'to', 'session', 'protocol']) {
      if (errors[p]) this.setError(errorSlots[p], t(errors[p]));
    }
    const rows = $$('.info-row', this.form).filter((row) => {
      const key = $('.info-key', row).value.trim();
      const value = $('.info-value', row).value.trim();
      return key || value || !F.takesValue($('.info-op', row).value);
    });
    for (const [i, problem] of Object.entries(errors.info || {})) {
      const row = rows[Number(i)];
      if (!row) continue;
      const field = problem.key ? '.info-key' : '.info-value';
      $(field, row).setAttribute('aria-invalid', 'true');
      $('.info-error', row).textContent = t(problem.key || problem.value);
    }
    const alert = $('#filter-alert');
    alert.textContent = t('filter.fix');
    alert.hidden = false;
    this.focusFirstError();
  }

  focusFirstError() {
    const invalid = $('[aria-invalid="true"]', this.form);
    if (invalid) {
      invalid.focus();
      return;
    }
    const slot = $$('.field-error', this.form).find((el) => el.textContent);
    const group = slot?.closest('fieldset');
    ($('input, select', group || this.form) || $('#filter-alert')).focus();
  }

  async submit() {
    this.clearErrors();
    const f = this.read();
    const errors = F.validate(f);
    if (Object.keys(errors).length) {
      this.showLocalErrors(errors);
      return;
    }
    const apply = $('#filter-apply');
    apply.disabled = true;
    try {
      await this.onApply(f);
    } finally {
      apply.disabled = false;
    }
  }
}
