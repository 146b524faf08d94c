// Tiny DOM helpers for the console. Text always goes in as text nodes
// (textContent), never as HTML: everything shown comes from end users.

/**
 * h('div', {className: 'x', 'data-id': 1, on: {click}}, 'text', child, [more])
 * Attribute values false/null/undefined are skipped; true sets an empty attribute.
 */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key === 'className') node.className = value;
      else if (key === 'on') for (const [name, fn] of Object.entries(value)) node.addEventListener(name, fn);
      else if (key === 'value' && 'value' in node) node.value = String(value);
      else if (key === 'checked' || key === 'selected' || key === 'disabled' || key === 'hidden') node[key] = Boolean(value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces `node`'s children. */
export function replace(node, ...children) {
  node.textContent = '';
  append(node, children);
  return node;
}

/** An http(s) URL to link to, or null (no javascript:, data: …). */
export function safeHref(value) {
  if (typeof value !== 'string' || !value.trim()) return null;
  try {
    const url = new URL(value, window.location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch (_) {
    return null;
  }
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });

/** "Dec 6, 20:00:01" in the viewer's time zone; the raw value when it is no date. */
export function formatDateTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso ?? '') : dateTime.format(d);
}

export function formatTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso ?? '') : timeOnly.format(d);
}

/** A <time> element with the ISO value in `datetime` and a readable text. */
export function timeEl(iso, short = false) {
  return h('time', { datetime: iso, title: iso }, short ? formatTime(iso) : formatDateTime(iso));
}

/** 0.93 → "93%"; null → "—". */
export function percent(value, digits = 0) {
  return typeof value === 'number' && Number.isFinite(value) ? `${(value * 100).toFixed(digits)}%` : '—';
}

/** 75 → "1 min 15 s". */
export function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const hours = Math.floor(m / 60);
  return `${hours} h${m % 60 ? ` ${m % 60} min` : ''}`;
}

const ICONS = {
  up: ['M3 10h4v11H3z', 'M7 11l4-8c1.7 0 2.8 1.3 2.5 3L13 10h5.5a2 2 0 0 1 2 2.4l-1.4 7A2 2 0 0 1 17.1 21H7'],
  down: ['M3 3h4v11H3z', 'M7 13l4 8c1.7 0 2.8-1.3 2.5-3L13 14h5.5a2 2 0 0 0 2-2.4l-1.4-7A2 2 0 0 0 17.1 3H7'],
};

/** A small stroked SVG icon (aria-hidden: its text says what it means). */
export function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  for (const [k, v] of Object.entries({ viewBox: '0 0 24 24', width: '16', height: '16', fill: 'none', stroke: 'currentColor', 'stroke-width': '2', 'stroke-linejoin': 'round', 'stroke-linecap': 'round', 'aria-hidden': 'true', focusable: 'false', class: `icon icon-${name}` })) {
    svg.setAttribute(k, v);
  }
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', d);
    svg.appendChild(path);
  }
  return svg;
}

/** A small status pill. */
export function badge(text, kind) {
  return h('span', { className: `badge${kind ? ` badge-${kind}` : ''}` }, text);
}

/** A centered message for empty lists and errors. */
export function emptyState(title, detail) {
  return h('div', { className: 'empty' }, h('p', { className: 'empty-title' }, title), detail ? h('p', null, detail) : null);
}

export function errorBox(message) {
  return h('div', { className: 'notice notice-error', role: 'alert' }, message);
}
