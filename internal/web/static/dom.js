// A small element builder: text always goes in as text, never as HTML, so
// whatever a customer typed is shown, not run.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// icon returns an inline SVG from the sprite-free set below (stroke icons,
// 20×20, aria-hidden: the text next to them carries the meaning).
const paths = {
  filter: 'M3 5h14M6 10h8M8.5 15h3',
  download: 'M10 3v10m0 0l-4-4m4 4l4-4M4 16h12',
  copy: 'M7 7h9v9H7zM4 13V4h9',
  back: 'M12 5l-5 5 5 5',
  next: 'M8 5l5 5-5 5',
  close: 'M5 5l10 10M15 5L5 15',
  plus: 'M10 4v12M4 10h12',
  trash: 'M5 6h10M8 6V4h4v2m-6 0l1 10h6l1-10',
  handoff: 'M4 10h9m0 0l-3-3m3 3l-3 3M16 4v12',
  clip: 'M13 7l-5 5a2 2 0 003 3l6-6a3.5 3.5 0 00-5-5l-6 6a5 5 0 007 7l4-4',
  logout: 'M8 4H4v12h4m4-9l3 3-3 3m3-3H8',
};
export function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 20 20');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', paths[name]);
  svg.append(p);
  return svg;
}
