// Exports the operator can watch: the sessions and bytes received so far, a
// cancel button, and a message that stays when the export ends. One export
// at a time: both format buttons wait while one runs.

import { t, formatNumber, language } from './i18n.js';
import { api, save, pickFile, stream, ApiError } from './api.js';
import { $, $$ } from './dom.js';
import { dayKey } from './format.js';
import { errorMessage } from './errors.js';

const types = { csv: 'text/csv', jsonl: 'application/x-ndjson' };

// Progress counts the sessions of an export as its bytes arrive: a JSONL
// export has one line per session; a CSV export has one row per message,
// and a session's rows are consecutive with its id in the first column.
export class Progress {
  constructor(format) {
    this.format = format;
    this.bytes = 0;
    this.sessions = 0;
    this.decoder = new TextDecoder();
    // CSV scanner state.
    this.quoted = false;
    this.inFirst = true; // reading the first field of a record
    this.first = '';
    this.records = 0;
    this.lastID = '';
  }

  push(chunk) {
    this.bytes += chunk.byteLength;
    if (this.format === 'jsonl') {
      for (const b of chunk) if (b === 10) this.sessions++;
      return;
    }
    for (const c of this.decoder.decode(chunk, { stream: true })) this.csvChar(c);
  }

  csvChar(c) {
    if (this.quoted) {
      if (c === '"') this.quoted = false; // "" re-enters at the next quote
      return;
    }
    if (c === '"') {
      this.quoted = true;
    } else if (c === ',' || c === '\n') {
      if (this.inFirst) this.endFirst();
      if (c === '\n') {
        this.inFirst = true;
        this.first = '';
      }
    } else if (this.inFirst && c !== '\r') {
      this.first += c;
    }
  }

  endFirst() {
    this.inFirst = false;
    // The first record is the header.
    if (this.records++ > 0 && this.first !== this.lastID) {
      this.sessions++;
      this.lastID = this.first;
    }
  }

  // transform passes the body through, counting it; onChange is called at
  // most once per animation frame.
  transform(onChange) {
    let pending = false;
    return new TransformStream({
      transform: (chunk, controller) => {
        this.push(chunk);
        controller.enqueue(chunk);
        if (!pending) {
          pending = true;
          requestAnimationFrame(() => {
            pending = false;
            onChange();
          });
        }
      },
    });
  }
}

export function formatBytes(n) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  const digits = i === 0 || v >= 100 ? 0 : 1;
  return `${new Intl.NumberFormat(language(), { maximumFractionDigits: digits }).format(v)} ${units[i]}`;
}

// Exports runs the list's exports. filter() returns the query of the filter
// on screen.
export class Exports {
  constructor({ filter, announce, onUnauthorized }) {
    this.filter = filter;
    this.announce = announce;
    this.onUnauthorized = onUnauthorized;
    this.controller = null;
    this.last = null; // what the panel shows, to retranslate it
    for (const b of $$('[data-format]')) b.addEventListener('click', () => this.run(b.dataset.format, b));
    $('#export-cancel').addEventListener('click', () => this.cancel());
    $('#export-dismiss').addEventListener('click', () => this.dismiss());
  }

  get running() {
    return this.controller !== null;
  }

  cancel() {
    this.controller?.abort();
  }

  // dismiss hides a finished export's message (and forgets a running one,
  // e.g. at sign-out).
  dismiss() {
    this.cancel();
    this.controller = null;
    this.last = null;
    $('#export-panel').hidden = true;
  }

  show(state, key, params) {
    this.last = { state, key, params };
    const panel = $('#export-panel');
    panel.dataset.state = state;
    $('#export-text').textContent = t(key, params);
    panel.hidden = false;
  }

  retranslate() {
    if (this.last) this.show(this.last.state, this.last.key, this.last.params);
  }

  progressParams(format, p, extra = {}) {
    return { format: format.toUpperCase(), sessions: formatNumber(p.sessions), n: p.sessions, bytes: formatBytes(p.bytes), ...extra };
  }

  async run(format, button) {
    if (this.running) return;
    const name = `chatreport-${dayKey()}.${format}`;
    let handle;
    try {
      // The save dialog must open first in the click handler.
      handle = await pickFile(name, t('export.label'), types[format]);
    } catch {
      return; // the operator cancelled the save dialog
    }
    const ctrl = new AbortController();
    this.controller = ctrl;
    for (const b of $$('[data-format]')) b.disabled = true;
    button.setAttribute('aria-busy', 'true');
    $('#list-alert').hidden = true;
    const progress = new Progress(format);
    const update = () => {
      if (this.controller === ctrl) this.show('running', 'export.progress', this.progressParams(format, progress));
    };
    update();
    this.announce(t('export.running'));
    try {
      const res = await api.export(this.filter(), format, ctrl.signal);
      const counted = progress.transform(update);
      const file = handle ? await stream(res, handle, counted, ctrl.signal) : await save(res, name, counted);
      this.show('done', 'export.finished', this.progressParams(format, progress, { name: file.name }));
      this.announce(t('export.finished', this.progressParams(format, progress, { name: file.name })));
    } catch (err) {
      if (this.controller !== ctrl) return; // dismissed
      // However the abort surfaces (an AbortError, or a body stream
      // that errored), the operator cancelled.
      if (ctrl.signal.aborted) {
        this.show('cancelled', 'export.cancelled', this.progressParams(format, progress));
        this.announce(t('export.cancelled', this.progressParams(format, progress)));
        return;
      }
      if (err instanceof ApiError && err.status === 401) {
        this.dismiss();
        this.onUnauthorized();
        return;
      }
      this.show('failed', 'export.failed', { reason: errorMessage(err) });
      this.announce(t('export.failed', { reason: errorMessage(err) }));
    } finally {
      if (this.controller === ctrl) this.controller = null;
      for (const b of $$('[data-format]')) b.disabled = false;
      button.removeAttribute('aria-busy');
    }
  }
}
