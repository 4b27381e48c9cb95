// The report filter: its model, its form in the page's query string (the same
// parameters as the API, so a shared link and an API call read alike), and
// the checks the form makes before asking the API.

export const pageSizes = [20, 50, 100];
export const defaultPageSize = 20;

const datePattern = /^\d{4}-\d{2}-\d{2}$/;

// The filter's rules as the API serves them (GET /api/v1/filter/rules): the
// longest interval, the operations, the outcomes and the values' patterns. The screen
// repeats none of them; until they are loaded it checks nothing itself, and
// the API checks everything in any case.
let rules = null;

export function setRules(r) {
  const patterns = {};
  for (const [name, source] of Object.entries(r.patterns)) patterns[name] = new RegExp(source);
  rules = { ...r, patterns };
}

export const hasRules = () => rules !== null;
export const ops = () => (rules ? rules.operations.map((o) => o.op) : []);
export const takesValue = (op) => rules?.operations.find((o) => o.op === op)?.takes_value ?? true;
export const maxDays = () => rules?.max_interval_days;

export const outcomes = () => rules?.outcomes ?? [];

export function emptyFilter() {
  return {
    from: '',
    to: '',
    session: '',
    protocol: '',
    tags: [],
    tagMode: 'any',
    info: [],
    channels: [],
    contact: '',
    handedOff: '',
    outcomes: [],
    agent: '',
    queue: '',
    q: '',
  };
}

// parseCondition reads KEY:OP:VALUE or KEY:OP; the value may hold colons.
export function parseCondition(s) {
  const i = s.indexOf(':');
  if (i < 0) return { key: s, op: '', value: '' };
  const rest = s.slice(i + 1);
  const j = rest.indexOf(':');
  if (j < 0) return { key: s.slice(0, i), op: rest, value: '' };
  return { key: s.slice(0, i), op: rest.slice(0, j), value: rest.slice(j + 1) };
}

// formatCondition writes KEY:OP:VALUE, or KEY:OP without a value.
export function formatCondition(c) {
  return c.value ? `${c.key}:${c.op}:${c.value}` : `${c.key}:${c.op}`;
}

// fromQuery reads a filter from URL parameters as they are: a hand-edited
// link with a bad value reaches the API, whose message then shows next to the
// field.
export function fromQuery(q) {
  const f = emptyFilter();
  f.from = q.get('from') ?? '';
  f.to = q.get('to') ?? '';
  f.session = q.get('session') ?? '';
  f.protocol = q.get('protocol') ?? '';
  f.tags = q.getAll('tag');
  f.tagMode = q.get('tag_mode') === 'all' ? 'all' : 'any';
  f.info = q.getAll('info').map(parseCondition);
  f.channels = q.getAll('channel');
  f.contact = q.get('contact') ?? '';
  const h = q.get('handed_off');
  f.handedOff = h === 'true' || h === 'false' ? h : '';
  f.outcomes = q.getAll('outcome');
  f.agent = q.get('agent') ?? '';
  f.queue = q.get('queue') ?? '';
  f.q = q.get('q') ?? '';
  return f;
}

// toQuery writes the API parameters of f, leaving out what does not filter.
export function toQuery(f) {
  const q = new URLSearchParams();
  if (f.from || f.to) {
    q.set('from', f.from);
    q.set('to', f.to);
  }
  if (f.session) q.set('session', f.session);
  if (f.protocol) q.set('protocol', f.protocol);
  for (const tag of f.tags) q.append('tag', tag);
  if (f.tags.length && f.tagMode === 'all') q.set('tag_mode', 'all');
  for (const c of f.info) q.append('info', formatCondition(c));
  for (const ch of f.channels) q.append('channel', ch);
  if (f.contact) q.set('contact', f.contact);
  if (f.handedOff) q.set('handed_off', f.handedOff);
  for (const o of f.outcomes) q.append('outcome', o);
  if (f.agent) q.set('agent', f.agent);
  if (f.queue) q.set('queue', f.queue);
  if (f.q) q.set('q', f.q);
  return q;
}

// activeCount is how many of the filter's criteria are set (the interval
// counts when it is not the default).
export function activeCount(f) {
  let n = 0;
  if (f.from || f.to) n++;
  for (const v of [f.session, f.protocol, f.contact, f.handedOff, f.agent, f.queue, f.q]) if (v) n++;
  if (f.outcomes.length) n++;
  if (f.tags.length) n++;
  if (f.channels.length) n++;
  n += f.info.length;
  return n;
}

// Calendar days as numbers, so that intervals are counted in whole days
// whatever the browser's own time zone.
export function dayNumber(s) {
  if (!datePattern.test(s)) return NaN;
  const [y, m, d] = s.split('-').map(Number);
  const ms = Date.UTC(y, m - 1, d);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== m - 1 || back.getUTCDate() !== d) return NaN;
  return ms / 86_400_000;
}

export function dayString(n) {
  return new Date(n * 86_400_000).toISOString().slice(0, 10);
}

// validate returns the problems of f as {param: messageKey}, plus info
// problems per condition index as {info: {i: {field: key}}}, by the served
// rules. The API checks everything again; this saves a round trip and
// explains better.
export function validate(f) {
  const errors = {};
  const p = rules?.patterns;
  if (f.from || f.to) {
    const from = dayNumber(f.from);
    const to = dayNumber(f.to);
    if (!f.from || !f.to) errors[f.from ? 'to' : 'from'] = 'err.bothDates';
    else if (Number.isNaN(from)) errors.from = 'err.date';
    else if (Number.isNaN(to)) errors.to = 'err.date';
    else if (to < from) errors.to = 'err.dateOrder';
    // "to" is a whole day: from 1 to 31 of a month is 31 days.
    else if (to - from + 1 > maxDays()) errors.to = 'err.maxInterval';
  }
  if (f.session && p && !p.session.test(f.session)) errors.session = 'err.session';
  if (f.protocol && p && !p.protocol.test(f.protocol)) errors.protocol = 'err.protocol';
  const info = {};
  f.info.forEach((c, i) => {
    if (!c.key) info[i] = { key: 'err.infoKey' };
    else if (p && !p.info_key.test(c.key)) info[i] = { key: 'err.infoKeyFormat' };
    else if (takesValue(c.op) && !c.value) info[i] = { value: 'err.infoValue' };
  });
  if (Object.keys(info).length) errors.info = info;
  return errors;
}
