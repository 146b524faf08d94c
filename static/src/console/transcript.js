// #/conversation/<id>: the conversation as the user saw it, and beside each
// answer why it was given (intent, responder, rule, sources, the activity block
// and the LLM prompt), with proactive offers in time order between the turns.
import { h, replace, badge, errorBox, icon, percent, safeHref, timeEl } from './dom.js';
import { get } from './api.js';
import { renderMarkdown } from '../markdown.js';
import { intentCell, responderBadge } from './conversations.js';

export function renderTranscript(view, { id }) {
  let alive = true;
  const body = h('div', { id: 'transcript', className: 'transcript', 'aria-busy': 'true' }, h('p', { className: 'subtle loading' }, 'Loading…'));
  const head = h('div', { className: 'page-head' }, h('div', null, h('a', { href: '#/conversations', className: 'back' }, '← Conversations'), h('h1', null, 'Conversation')));
  replace(view, head, body);

  get(`/admin/api/conversations/${encodeURIComponent(id)}`)
    .then((conv) => {
      if (!alive) return;
      body.removeAttribute('aria-busy');
      replace(
        head,
        h(
          'div',
          null,
          h('a', { href: '#/conversations', className: 'back' }, '← Conversations'),
          h('h1', null, 'Conversation with ', h('span', { className: 'conv-user' }, conv.user || conv.sender || 'anonymous')),
          h(
            'dl',
            { className: 'facts' },
            fact('Conversation', h('code', null, conv.conversation_id)),
            conv.product ? fact('Product', conv.product) : null,
            fact('Sender', h('code', null, conv.sender || '—')),
            fact('Turns', String((conv.turns || []).length)),
          ),
        ),
      );
      replace(body, transcript(conv));
    })
    .catch((err) => {
      if (!alive) return;
      body.removeAttribute('aria-busy');
      replace(body, errorBox(err.status === 404 ? 'No such conversation (or not one this login may see).' : `Could not load the conversation: ${err.message}`));
    });
  return () => {
    alive = false;
  };
}

function fact(label, value) {
  return h('div', null, h('dt', null, label), h('dd', null, value));
}

function transcript(conv) {
  const items = [
    ...(conv.turns || []).map((t) => ({ at: t.at, kind: 'turn', value: t })),
    ...(conv.offers || []).map((o) => ({ at: o.at, kind: 'offer', value: o })),
  ];
  // Stable: turns and offers keep their order when the times are equal.
  items.sort((a, b) => (Date.parse(a.at) || 0) - (Date.parse(b.at) || 0));
  if (!items.length) return h('p', { className: 'subtle' }, 'This conversation has no turns.');
  return h('ol', { className: 'turns' }, items.map((item) => (item.kind === 'turn' ? turnItem(item.value) : offerItem(item.value))));
}

function offerItem(o) {
  const response = o.response ? String(o.response) : null;
  return h(
    'li',
    { className: 'offer', 'data-offer-at': o.at },
    h(
      'div',
      { className: 'offer-card' },
      h('div', { className: 'offer-head' }, badge('Proactive offer', 'accent'), timeEl(o.at), response ? badge(response, response === 'accepted' ? 'ok' : response === 'declined' ? 'danger' : 'muted') : badge('no answer', 'muted')),
      h('p', null, o.text || ''),
    ),
  );
}

function turnItem(t) {
  const replies = Array.isArray(t.replies) ? t.replies : [];
  return h(
    'li',
    { className: 'turn', 'data-turn-id': t.id },
    h(
      'div',
      { className: 'bubbles' },
      h('div', { className: 'msg msg-user' }, h('div', { className: 'msg-meta' }, 'User · ', timeEl(t.at, true)), h('p', { className: 'msg-text' }, t.text || '')),
      replies.length
        ? // As the widget showed it: its Markdown subset, built as DOM nodes (never HTML).
          replies.map((r) => h('div', { className: 'msg msg-bot' }, h('div', { className: 'msg-text md' }, renderMarkdown(document, String(r)))))
        : h('div', { className: 'msg msg-bot msg-none' }, h('p', { className: 'msg-text' }, 'No reply')),
      t.feedback
        ? h(
            'div',
            { className: `feedback feedback-${t.feedback}`, 'data-feedback': t.feedback },
            icon(t.feedback === 'down' ? 'down' : 'up'),
            t.feedback === 'down' ? 'The user found this unhelpful' : 'The user found this helpful',
          )
        : null,
    ),
    details(t),
  );
}

function row(label, ...value) {
  return h('div', { className: 'detail-row' }, h('dt', null, label), h('dd', null, ...value));
}

function details(t) {
  const sources = Array.isArray(t.sources) ? t.sources : [];
  const ranking = Array.isArray(t.ranking) ? t.ranking.slice(0, 5) : [];
  const actions = Array.isArray(t.actions) ? t.actions : [];
  const prompt = t.prompt && typeof t.prompt === 'object' ? t.prompt : null;
  return h(
    'aside',
    { className: 'turn-details', 'aria-label': 'Why this answer' },
    h(
      'dl',
      null,
      row('Intent', intentCell(t)),
      row('Responder', responderBadge(t.responder)),
      t.rule ? row('Rule', h('span', { className: 'rule' }, t.rule)) : null,
      actions.length ? row('Actions', h('span', { className: 'actions' }, actions.map((a) => h('code', null, a)))) : null,
      t.label ? row('Labelled', badge(t.label, 'ok')) : null,
      typeof t.llm_ms === 'number' ? row('LLM time', h('span', { className: 'llm-ms' }, `${t.llm_ms} ms`)) : null,
      sources.length
        ? row(
            'Sources',
            h(
              'ul',
              { className: 'sources' },
              sources.map((s) => {
                const href = safeHref(s.url);
                const title = s.title || s.url || 'source';
                return h('li', null, href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, title) : title);
              }),
            ),
          )
        : null,
    ),
    ranking.length > 1
      ? h(
          'details',
          { className: 'ranking' },
          h('summary', null, 'Intent ranking'),
          h(
            'ol',
            null,
            ranking.map((r) => h('li', null, h('span', null, r.name), h('span', { className: 'confidence' }, percent(r.confidence)))),
          ),
        )
      : null,
    t.activity
      ? h('details', { className: 'activity' }, h('summary', null, 'Activity block the LLM saw'), h('pre', null, t.activity))
      : null,
    prompt
      ? h(
          'details',
          { className: 'prompt' },
          h('summary', null, 'LLM prompt', typeof t.llm_ms === 'number' ? ` · ${t.llm_ms} ms` : ''),
          h('h4', null, 'System'),
          h('pre', { className: 'prompt-system' }, prompt.system || ''),
          h('h4', null, 'User'),
          h('pre', { className: 'prompt-user' }, prompt.user || ''),
        )
      : null,
  );
}
