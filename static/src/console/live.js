// #/live: the product's sessions as they happen, from the server-sent events
// of /admin/api/live/events (a `live` event carries the whole Live JSON; it
// comes at connect and whenever something changed).
import { h, replace, duration, emptyState, formatTime } from './dom.js';
import { query } from './api.js';

const PHASES = {
  thinking: { label: 'Thinking', kind: 'warn', title: 'The copilot is deciding whether to offer help' },
  proactive: { label: 'Proactive', kind: 'accent', title: 'An offer was pushed to this user' },
  reactive: { label: 'Reactive', kind: 'muted', title: 'Answering what the user asks' },
};

export function renderLive(view, { product, products }) {
  const liveProduct = product || products[0] || '';
  const status = h('span', { id: 'live-status', className: 'live-status', role: 'status', 'data-state': 'connecting' }, 'Connecting…');
  const list = h('div', { id: 'live-sessions', className: 'live-sessions', 'aria-live': 'off' });
  replace(
    view,
    h(
      'div',
      { className: 'page-head' },
      h(
        'div',
        null,
        h('h1', null, 'Live'),
        h(
          'p',
          { className: 'subtle' },
          'Sessions of ',
          h('strong', { id: 'live-product' }, liveProduct || '—'),
          ' right now, newest first; updates as events arrive.',
          !product && products.length > 1 ? ' Pick another product at the top.' : '',
        ),
      ),
      status,
    ),
    list,
  );
  if (!liveProduct) {
    replace(list, emptyState('No product yet', 'Register a product to see its live sessions.'));
    setStatus(status, 'idle', 'No product');
    return () => {};
  }

  let last = null;
  let receivedAt = 0;
  let closed = false;
  const source = new EventSource(`/admin/api/live/events${query({ product: liveProduct })}`);
  source.addEventListener('open', () => setStatus(status, 'open', 'Live'));
  source.addEventListener('live', (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (_) {
      return;
    }
    last = data;
    receivedAt = Date.now();
    setStatus(status, 'open', `Live · updated ${formatTime(new Date().toISOString())}`);
    draw(list, data, 0);
  });
  source.addEventListener('error', () => {
    if (closed) return;
    // CLOSED: the server refused the stream (e.g. the session ended); the app
    // checks the session. CONNECTING: the browser retries by itself.
    if (source.readyState === EventSource.CLOSED) {
      setStatus(status, 'closed', 'Disconnected');
      view.dispatchEvent(new CustomEvent('console:check-session', { bubbles: true }));
    } else {
      setStatus(status, 'connecting', 'Reconnecting…');
    }
  });
  // Idle times move on between events.
  const ticker = setInterval(() => {
    if (last) tickIdle(list, last, Math.floor((Date.now() - receivedAt) / 1000));
  }, 1000);

  return () => {
    closed = true;
    source.close();
    clearInterval(ticker);
  };
}

function setStatus(node, state, text) {
  node.setAttribute('data-state', state);
  node.textContent = text;
}

function draw(list, live, extraSeconds) {
  const sessions = Array.isArray(live.sessions) ? live.sessions : [];
  if (!sessions.length) {
    replace(list, emptyState('No active sessions', 'A session shows up here as soon as its product sends events.'));
    return;
  }
  replace(list, sessions.map((s) => sessionCard(s, extraSeconds)));
  // Newest action in view: timelines scroll inside their card.
  for (const ol of list.querySelectorAll('.timeline')) ol.scrollTop = ol.scrollHeight;
}

function tickIdle(list, live, extraSeconds) {
  for (const s of live.sessions || []) {
    const card = list.querySelector(`[data-session-id="${CSS.escape(String(s.session_id))}"] .idle`);
    if (card) card.textContent = idleText(s.idle_seconds, extraSeconds);
  }
}

const idleText = (seconds, extra) => `idle ${duration((Number(seconds) || 0) + extra)}`;

function sessionCard(s, extraSeconds) {
  const phase = s.proactive && PHASES[s.proactive];
  const actions = Array.isArray(s.actions) ? s.actions : [];
  const who = h(
    'div',
    { className: 'who' },
    h('span', { className: 'user', title: 'User id' }, s.user_id || 'anonymous'),
    s.email ? h('span', { className: 'email' }, s.email) : null,
  );
  const meta = h(
    'div',
    { className: 'card-meta' },
    s.proactive
      ? h(
          'span',
          {
            className: `badge badge-${phase ? phase.kind : 'muted'} phase phase-${String(s.proactive).replace(/[^a-z0-9_-]/gi, '')}`,
            title: phase ? phase.title : null,
          },
          phase ? phase.label : String(s.proactive),
        )
      : null,
    h('span', { className: 'idle' }, idleText(s.idle_seconds, extraSeconds)),
  );
  const timeline = h(
    'ol',
    { className: 'timeline' },
    actions.map((a) =>
      h(
        'li',
        { 'data-index': a.index, 'data-kind': a.kind },
        h('time', { datetime: a.at, title: a.at }, formatTime(a.at)),
        h('span', { className: `kind kind-${String(a.kind || 'event').replace(/[^a-z0-9_-]/gi, '')}` }, a.kind || 'event'),
        h('span', { className: 'action-text' }, a.text || ''),
        a.url ? h('span', { className: 'action-url' }, a.url) : null,
      ),
    ),
  );
  return h(
    'article',
    { className: 'card session-card', 'data-session-id': s.session_id, 'data-user-id': s.user_id || '' },
    h('header', { className: 'card-head' }, who, meta),
    h('p', { className: 'session-id' }, 'Session ', h('code', null, s.session_id)),
    s.summary
      ? h('div', { className: 'summary' }, h('span', { className: 'summary-label' }, 'Summary of earlier activity'), h('p', null, s.summary))
      : null,
    actions.length ? timeline : h('p', { className: 'subtle' }, 'No actions in the window.'),
  );
}
