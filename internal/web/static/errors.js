// The API's errors in the operator's language. The API writes English
// messages beside stable codes (docs/api.md, Errors); the screen says the
// codes it knows in its own words and falls back to the API's text only for
// a code added after this screen was written.

import { t, formatNumber } from './i18n.js';
import { ApiError, NetworkError } from './api.js';

// The filter field each parameter belongs to, to name it in general alerts.
const fieldKeys = {
  from: 'filter.from',
  to: 'filter.to',
  session: 'filter.session',
  protocol: 'filter.protocol',
  tag: 'filter.tags',
  tag_mode: 'filter.tagMode',
  info: 'filter.info',
  channel: 'filter.channels',
  contact: 'filter.contact',
  handed_off: 'filter.handedOff',
  outcome: 'filter.outcomes',
  agent: 'filter.agent',
  queue: 'filter.queue',
  q: 'filter.q',
  limit: 'pager.size',
};

// paramMessage is one invalid parameter {param, code, message, index, limit}.
export function paramMessage(e) {
  const key = `perr.${e.code}`;
  const s = t(key, { limit: e.limit === undefined ? '' : formatNumber(e.limit) });
  return s === key ? e.message : s;
}

// fieldLabel names the field of a parameter ("Protocolo").
export function fieldLabel(param) {
  const base = String(param || '').split(/[[.]/)[0];
  return fieldKeys[base] ? t(fieldKeys[base]) : base;
}

// errorMessage says what went wrong with a request, in a sentence.
export function errorMessage(err) {
  if (err instanceof NetworkError) return t('err.network');
  if (err instanceof ApiError) {
    const errors = err.paramErrors;
    if (err.status === 400 && errors.length) {
      return errors.map((e) => `${fieldLabel(e.param)}: ${paramMessage(e)}`).join(' ');
    }
    if (err.status === 404) return t('err.notFound');
    const key = `problem.${err.problem.code}`;
    const s = t(key, { status: err.status });
    if (s !== key) return s;
    return t('err.server', { status: err.status });
  }
  return String(err.message || err);
}
