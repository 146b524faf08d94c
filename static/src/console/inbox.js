// #/inbox: user messages the classifier was unsure about (fallback or
// ambiguous), grouped by similar text. Labelling a group adds its messages as
// training examples; the classifier retrains at once.
import { h, replace, badge, emptyState, errorBox, percent, timeEl } from './dom.js';
import { get, post } from './api.js';

const OUT_OF_SCOPE = 'out_of_scope';
const EXAMPLES_SHOWN = 5;

export function renderInbox(view, { product }) {
  let alive = true;
  const status = h('div', { id: 'inbox-status', role: 'status', 'aria-live': 'polite' });
  const list = h('div', { id: 'inbox-groups', className: 'inbox-groups' }, h('p', { className: 'subtle loading' }, 'Loading…'));
  replace(
    view,
    h(
      'div',
      { className: 'page-head' },
      h('div', null, h('h1', null, 'NLU inbox'), h('p', { className: 'subtle' }, 'Messages the classifier could not place. Label a group to teach it; it retrains right away.')),
    ),
    status,
    list,
  );

  get('/admin/api/inbox', { product })
    .then((inbox) => {
      if (!alive) return;
      const groups = Array.isArray(inbox.groups) ? inbox.groups : [];
      if (!groups.length) {
        replace(list, emptyState('Nothing to label', 'Fallback and ambiguous messages show up here.'));
        return;
      }
      const oos = inbox.out_of_scope || null;
      const intents = (Array.isArray(inbox.intents) ? inbox.intents : []).filter((name) => name !== oos);
      replace(list, groups.map((g, i) => groupCard(g, i, intents, { product, status, list })));
    })
    .catch((err) => {
      if (alive) replace(list, errorBox(`Could not load the inbox: ${err.message}`));
    });
  return () => {
    alive = false;
  };
}

function groupCard(group, index, intents, { status, list }) {
  const turns = Array.isArray(group.turns) ? group.turns : [];
  const ids = turns.map((t) => t.id);
  const selectId = `inbox-intent-${index}`;
  // The classifier's own guess, preselected when it is a real intent.
  const guess = turns.map((t) => t.intent).find((name) => name && intents.includes(name));
  const select = h(
    'select',
    { id: selectId, className: 'intent-select', name: 'intent' },
    h('option', { value: '', disabled: true, selected: !guess }, 'Choose an intent…'),
    h('option', { value: OUT_OF_SCOPE }, 'Out of scope'),
    h('optgroup', { label: 'Intents' }, intents.map((name) => h('option', { value: name, selected: name === guess }, name))),
  );
  const button = h('button', { type: 'submit', className: 'btn btn-primary label-button', disabled: !guess }, 'Label');
  const error = h('p', { className: 'form-error', role: 'alert', hidden: true });
  select.addEventListener('change', () => {
    button.disabled = !select.value;
  });
  const form = h(
    'form',
    { className: 'label-form' },
    h('label', { for: selectId, className: 'visually-hidden' }, 'Intent for this group'),
    select,
    button,
  );
  const card = h(
    'article',
    { className: 'card inbox-group', 'data-turn-ids': ids.join(' '), 'data-count': group.count },
    h(
      'header',
      { className: 'card-head' },
      h('h2', { className: 'group-text' }, `“${group.text || ''}”`),
      badge(`${group.count} message${group.count === 1 ? '' : 's'}`, 'muted'),
    ),
    h(
      'ul',
      { className: 'examples' },
      turns.slice(0, EXAMPLES_SHOWN).map((t) =>
        h(
          'li',
          { 'data-turn-id': t.id },
          h('span', { className: 'example-text' }, t.text || ''),
          h('span', { className: 'example-meta' }, `${t.intent || '—'} ${percent(t.confidence)}`, ' · ', timeEl(t.at)),
        ),
      ),
      turns.length > EXAMPLES_SHOWN ? h('li', { className: 'subtle' }, `and ${turns.length - EXAMPLES_SHOWN} more`) : null,
    ),
    form,
    error,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const intent = select.value;
    if (!intent) return;
    button.disabled = true;
    select.disabled = true;
    error.hidden = true;
    button.textContent = 'Labelling…';
    try {
      const res = await post('/admin/api/inbox/label', { turn_ids: ids, intent });
      const shownIntent = intent === OUT_OF_SCOPE ? 'out of scope' : res.intent || intent;
      replace(
        status,
        h(
          'div',
          { className: 'notice notice-ok' },
          `Labelled ${res.labelled} as ${shownIntent}; retrained in ${res.retrained_ms} ms`,
          res.file ? h('span', { className: 'subtle' }, ` (${res.file}: ${res.examples} examples)`) : null,
        ),
      );
      card.remove();
      if (!list.querySelector('.inbox-group')) replace(list, emptyState('All labelled', 'New unsure messages will show up here.'));
    } catch (err) {
      error.textContent = `Could not label: ${err.message}`;
      error.hidden = false;
      button.disabled = false;
      select.disabled = false;
      button.textContent = 'Label';
    }
  });
  return card;
}
