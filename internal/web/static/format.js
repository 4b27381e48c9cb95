// Dates and times in the report's time zone: an operator in Manaus and one in
// Lisbon see the same Brasília times the platform and the API use.

import { language } from './i18n.js';

export const timeZone =
  document.querySelector('meta[name="report-time-zone"]')?.content || 'America/Sao_Paulo';

const cache = new Map();
function formatter(kind) {
  const lang = language();
  const id = `${lang}|${kind}`;
  if (!cache.has(id)) {
    const options = {
      date: { day: '2-digit', month: '2-digit', year: 'numeric' },
      time: { hour: '2-digit', minute: '2-digit' },
      seconds: { hour: '2-digit', minute: '2-digit', second: '2-digit' },
      dateTime: { day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit' },
      full: { dateStyle: 'full', timeStyle: 'long' },
      day: { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' },
    }[kind];
    cache.set(id, new Intl.DateTimeFormat(lang, { ...options, timeZone }));
  }
  return cache.get(id);
}

const valid = (iso) => iso && !Number.isNaN(Date.parse(iso));

export const formatDate = (iso) => (valid(iso) ? formatter('date').format(new Date(iso)) : '');
export const formatTime = (iso) => (valid(iso) ? formatter('time').format(new Date(iso)) : '');
export const formatTimeSeconds = (iso) => (valid(iso) ? formatter('seconds').format(new Date(iso)) : '');
export const formatDateTime = (iso) => (valid(iso) ? formatter('dateTime').format(new Date(iso)) : '');
export const formatFull = (iso) => (valid(iso) ? formatter('full').format(new Date(iso)) : '');
export const formatDay = (iso) => (valid(iso) ? formatter('day').format(new Date(iso)) : '');

// dayKey is the calendar day of an instant in the report time zone,
// YYYY-MM-DD (the en-CA format is ISO-like).
const dayKeyFormat = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
export const dayKey = (iso) => dayKeyFormat.format(iso ? new Date(iso) : new Date());

// formatDayString shows a YYYY-MM-DD filter date in the current language,
// without moving it through any time zone.
export function formatDayString(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return s;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], 12));
  return new Intl.DateTimeFormat(language(), { day: '2-digit', month: '2-digit', year: 'numeric', timeZone: 'UTC' }).format(d);
}

const channelNames = { whatsapp: 'WhatsApp', webchat: 'Webchat', telegram: 'Telegram', instagram: 'Instagram', messenger: 'Messenger', sms: 'SMS', email: 'E-mail' };
export const channelName = (c) => channelNames[c] || c;

// formatPhone groups a Brazilian number (+55 DD 9XXXX-XXXX) and leaves others
// as they came.
export function formatPhone(p) {
  if (!p) return '';
  const d = p.replace(/\D/g, '');
  const m = /^55(\d{2})(\d{4,5})(\d{4})$/.exec(d);
  return m ? `+55 ${m[1]} ${m[2]}-${m[3]}` : p;
}
