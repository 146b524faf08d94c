// #/conversations: search the turns (filters live in the hash, so Back works)
// and open one conversation's transcript.
import { h, replace, badge, emptyState, errorBox, icon, percent, timeEl } from './dom.js';
import { get, query } from './api.js';

export const RESPONDERS = ['rule', 'response', 'llm', 'offline', 'knowledge', 'custom_action', 'fallback', 'form', 'limited'];
const FILTERS = ['user', 'q', 'intent', 'responder', 'from', 'to'];
const LIMIT = 100;

export const RESPONDER_KIND = {
  llm: 'accent',
  knowledge: 'info',
  offline: 'info',
  fallback: 'danger',
  limited: 'warn',
  custom_action: 'muted',
};

export function responderBadge(responder) {
  return h('span', { className: `badge badge-${RESPONDER_KIND[responder] || 'muted'} responder`, 'data-responder': responder || '' }, responder || '—');
}

export function intentCell(turn) {
  return h(
    'span',
    { className: 'intent-cell' },
    h('span', { className: 'intent' }, turn.intent || '—'),
    typeof turn.confidence === 'number' ? h('span', { className: 'confidence' }, percent(turn.confidence)) : null,
    turn.fallback ? badge('fallback', 'danger') : null,
    turn.ambiguous ? badge('ambiguous', 'warn') : null,
  );
}

export function renderConversations(view, { product, params, navigate }) {
  const filters = {};
  for (const key of FILTERS) filters[key] = params.get(key) || '';
  let alive = true;

  const input = (name, label, attrs = {}) =>
    h('label', { className: 'field' }, h('span', null, label), h('input', { name, value: filters[name], ...attrs }));
  const responder = h(
    'select',
    { name: 'responder' },
    h('option', { value: '' }, 'Any'),
    RESPONDERS.map((r) => h('option', { value: r, selected: r === filters.responder }, r)),
  );
  const intents = h('datalist', { id: 'intent-options' });
  const form = h(
    'form',
    { id: 'conv-filters', className: 'filters card', role: 'search' },
    input('user', 'User', { type: 'search', placeholder: 'user id', autocomplete: 'off' }),
    input('q', 'Text', { type: 'search', placeholder: 'in the message or a reply', autocomplete: 'off' }),
    input('intent', 'Intent', { type: 'search', list: 'intent-options', autocomplete: 'off' }),
    h('label', { className: 'field' }, h('span', null, 'Responder'), responder),
    input('from', 'From', { type: 'date' }),
    input('to', 'To', { type: 'date' }),
    h(
      'div',
      { className: 'filter-actions' },
      h('button', { type: 'submit', className: 'btn btn-primary' }, 'Search'),
      h('button', { type: 'reset', className: 'btn' }, 'Clear'),
    ),
    intents,
  );
  const exportParams = { product, ...filters };
  const exportLink = h(
    'a',
    { id: 'export-jsonl', className: 'btn', href: `/admin/api/export${query(exportParams)}`, download: 'conversations.jsonl' },
    'Export JSONL',
  );
  const results = h('div', { id: 'conv-results', 'aria-live': 'polite' }, h('p', { className: 'subtle loading' }, 'Loading…'));

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = {};
    for (const key of FILTERS) next[key] = String(data.get(key) || '').trim();
    const q = query(next);
    // Same hash: the router would not fire, so search again directly.
    if (`#/conversations${q}` === window.location.hash) load();
    else navigate(`#/conversations${q}`);
  });
  form.addEventListener('reset', (event) => {
    event.preventDefault();
    navigate('#/conversations');
  });

  replace(
    view,
    h(
      'div',
      { className: 'page-head' },
      h('div', null, h('h1', null, 'Conversations'), h('p', { className: 'subtle' }, 'Every chat turn: what the user said, what the classifier made of it and who answered.')),
      exportLink,
    ),
    form,
    results,
  );

  async function load() {
    replace(results, h('p', { className: 'subtle loading' }, 'Loading…'));
    let body;
    try {
      body = await get('/admin/api/conversations', { product, ...filters, limit: LIMIT });
    } catch (err) {
      if (alive) replace(results, errorBox(`Could not load conversations: ${err.message}`));
      return;
    }
    if (!alive) return;
    const turns = Array.isArray(body && body.turns) ? body.turns : [];
    const seen = new Set(turns.map((t) => t.intent).filter(Boolean));
    replace(intents, [...seen].sort().map((name) => h('option', { value: name })));
    if (!turns.length) {
      replace(results, emptyState('No turns match', 'Change the filters, or chat with the widget to make some.'));
      return;
    }
    const rows = turns.map((t) => {
      const href = `#/conversation/${encodeURIComponent(t.conversation_id)}`;
      const row = h(
        'tr',
        { 'data-turn-id': t.id, 'data-conversation-id': t.conversation_id, className: 'clickable' },
        h('td', { className: 'nowrap' }, timeEl(t.at)),
        h('td', { className: 'user-cell' }, t.user || h('span', { className: 'subtle' }, t.sender || 'anonymous'), product ? null : t.product ? h('span', { className: 'product-tag' }, t.product) : null),
        h('td', { className: 'message-cell' }, h('a', { href, className: 'message-link' }, t.text || '(empty)')),
        h('td', null, intentCell(t)),
        h('td', null, responderBadge(t.responder), t.feedback ? h('span', { className: `thumb thumb-${t.feedback === 'down' ? 'down' : 'up'}`, title: `The user gave thumbs ${t.feedback}` }, icon(t.feedback === 'down' ? 'down' : 'up')) : null),
      );
      row.addEventListener('click', (event) => {
        if (event.target.closest('a')) return;
        navigate(href);
      });
      return row;
    });
    replace(
      results,
      h('p', { className: 'subtle result-count' }, turns.length >= LIMIT ? `Newest ${turns.length} turns` : `${turns.length} turn${turns.length === 1 ? '' : 's'}`),
      h(
        'div',
        { className: 'table-wrap card' },
        h(
          'table',
          { id: 'turns-table', className: 'table' },
          h('thead', null, h('tr', null, ['Time', 'User', 'Message', 'Intent', 'Responder'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', null, rows),
        ),
      ),
    );
  }
  load();
  return () => {
    alive = false;
  };
}
