// Embeddable copilot chat widget: plain DOM, no framework, CSS injected here.
//
// It speaks Rasa's Socket.IO protocol (the README's "Chat" and "Identity"
// sections) through socket.io-client v4 from npm:
//   connect (auth {userId, userHash?, productId?}) → emit session_request {session_id: <stored id or null>, customData: {same, stream, feedback}}
//   session_confirm    ← bare string or {session_id}; stored per userId
//   user_uttered       → {message, session_id, customData: {userId, userHash?, productId?, stream, feedback}}
//   bot_stream         ← {message_id, status: 'thinking'|'replying'|'complete', text}, only
//                        when customData.stream is true; `replying` carries the whole
//                        text so far (not a delta)
//   bot_uttered        ← {text}, {text, quick_replies}, {text, buttons},
//                        {attachment: {type: 'image', payload: {src}}}, + metadata
//                        (forceOpen, forceClose, domHighlight, message_id when the
//                        payload is the final form of a streamed draft, and turn_id
//                        when customData.feedback is true)
//   feedback           → {turn_id, value: 'up'|'down'}: the 👍/👎 under a bot message
//                        of that turn (a second click with the other value replaces it)
//
// Two ways to use it:
//   <script>window.CopilotWidgetConfig = {serverUrl, userId};</script>
//   <script src="/dist/widget.js"></script>                 (auto-mounts)
// or CopilotWidget.mount({serverUrl, userId, userHash, productId, title, colors, open, stream, feedback}).
//
// IMPORTANT: message text is never assigned with innerHTML; markdown.js builds
// DOM nodes, so bot and user text cannot inject markup.
import { io } from 'socket.io-client';
import { renderMarkdown, safeHttpUrl } from './markdown.js';
import { WIDGET_CSS } from './widget-css.js';

const EVT_SESSION_REQUEST = 'session_request';
const EVT_SESSION_CONFIRM = 'session_confirm';
const EVT_USER_UTTERED = 'user_uttered';
const EVT_BOT_UTTERED = 'bot_uttered';
const EVT_BOT_STREAM = 'bot_stream';
const EVT_FEEDBACK = 'feedback';

const STORAGE_PREFIX = 'copilot_session_id:';
const TYPING_TIMEOUT_MS = 15000;
const TYPING_LABEL = 'Copilot is typing';
const THINKING_LABEL = 'Copilot is thinking';
/** How many streamed message ids are remembered (to drop late events for them). */
const MAX_STREAMS = 50;
/** How many turns keep their 👍/👎 row movable (later bubbles of a turn move it). */
const MAX_FEEDBACK_TURNS = 100;
const THUMBS = [
  { value: 'up', label: 'Helpful' },
  { value: 'down', label: 'Not helpful' },
];
/** rasa-webchat leaves a highlight until the next bot message; ours also expires. */
const HIGHLIGHT_MS = 20000;
const HIGHLIGHT_CLASS = 'copilot-dom-highlight';
const TOOLTIP_GAP = 10;
const STYLE_ID = 'copilot-widget-style';
const SVG_NS = 'http://www.w3.org/2000/svg';

const ICONS = {
  chat: ['M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.2 3.6c-.5.4-1.3.1-1.3-.6V16A2.5 2.5 0 0 1 4 13.5z'],
  close: ['M6 6l12 12', 'M18 6L6 18'],
  send: ['M4 12l16-8-6 16-2.5-6.5z', 'M11.5 13.5L20 4'],
  spark: ['M12 3l1.8 5.2L19 10l-5.2 1.8L12 17l-1.8-5.2L5 10l5.2-1.8z', 'M19 15l.8 2.2L22 18l-2.2.8L19 21l-.8-2.2L16 18l2.2-.8z'],
  up: ['M3 10h4v11H3z', 'M7 11l4-8c1.7 0 2.8 1.3 2.5 3L13 10h5.5a2 2 0 0 1 2 2.4l-1.4 7A2 2 0 0 1 17.1 21H7'],
  down: ['M3 3h4v11H3z', 'M7 13l4 8c1.7 0 2.8-1.3 2.5-3L13 14h5.5a2 2 0 0 0 2-2.4l-1.4-7A2 2 0 0 0 17.1 3H7'],
};

/** The one mounted instance per page (ids in the DOM must stay unique). */
let current = null;

function svgIcon(doc, name, filled) {
  const svg = doc.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('fill', filled ? 'currentColor' : 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', filled ? '1.2' : '2');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  for (const d of ICONS[name]) {
    const path = doc.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', d);
    svg.appendChild(path);
  }
  return svg;
}

function el(doc, tag, attrs, children) {
  const node = doc.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = value;
      else if (key === 'className') node.className = value;
      else node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  if (children) for (const child of children) if (child) node.appendChild(child);
  return node;
}

// localStorage can throw (privacy modes, sandboxed iframes); the widget then
// keeps the session id in memory only.
function storageGet(key) {
  try {
    return window.localStorage.getItem(key);
  } catch (_) {
    return null;
  }
}
function storageSet(key, value) {
  try {
    window.localStorage.setItem(key, value);
  } catch (_) {
    /* memory only */
  }
}

// ---- colours -------------------------------------------------------------

function parseColor(doc, value) {
  if (typeof value !== 'string' || value.trim() === '') return null;
  if (typeof CSS !== 'undefined' && CSS.supports && !CSS.supports('color', value)) return null;
  const probe = doc.createElement('span');
  probe.style.color = value;
  probe.style.display = 'none';
  doc.body.appendChild(probe);
  const rgb = getComputedStyle(probe).color;
  probe.remove();
  const m = /rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/.exec(rgb);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}
const css = ([r, g, b], a = 1) => `rgba(${Math.round(r)}, ${Math.round(g)}, ${Math.round(b)}, ${a})`;
const mix = (a, b, t) => a.map((v, i) => v * (1 - t) + b[i] * t);
function luminance(rgb) {
  const [r, g, b] = rgb.map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/** Sets the colour custom properties on the root from `colors`. */
function applyColors(doc, root, colors) {
  const given = colors && typeof colors === 'object' ? colors : {};
  const read = (key, fallback) => {
    if (given[key] === undefined) return fallback;
    const rgb = parseColor(doc, given[key]);
    if (!rgb) console.warn(`[copilot] ignoring colors.${key}: not a CSS colour`);
    return rgb || fallback;
  };
  const primary = read('primary', [79, 70, 229]);
  const bg = read('background', [255, 255, 255]);
  const text = read('text', [31, 41, 55]);
  const onPrimary = luminance(primary) > 0.4 ? [17, 24, 39] : [255, 255, 255];
  // Chips and links use the primary colour on the background only when it is
  // readable there (WCAG AA, 4.5:1); otherwise the text colour.
  const accent = contrast(primary, bg) >= 4.5 ? primary : text;
  const vars = {
    '--copilot-primary': css(primary),
    '--copilot-accent': css(accent),
    '--copilot-on-primary': css(onPrimary),
    '--copilot-bg': css(bg),
    '--copilot-text': css(text),
    '--copilot-muted': css(mix(bg, text, 0.6)),
    '--copilot-line': css(mix(bg, text, 0.13)),
    '--copilot-bot-bubble': css(mix(bg, text, 0.065)),
    '--copilot-code-bg': css(text, 0.1),
    '--copilot-on-primary-faint': css(onPrimary, 0.18),
    '--copilot-primary-ring': css(primary, 0.22),
  };
  for (const [name, value] of Object.entries(vars)) root.style.setProperty(name, value);
}

// ---- config --------------------------------------------------------------

function normaliseConfig(config) {
  if (!config || typeof config !== 'object') {
    throw new TypeError('CopilotWidget.mount needs a config object: {serverUrl, userId}');
  }
  const serverUrl = typeof config.serverUrl === 'string' ? config.serverUrl.trim() : '';
  if (!serverUrl) throw new TypeError('CopilotWidget.mount: `serverUrl` is required');
  const userId = config.userId === undefined || config.userId === null ? '' : String(config.userId).trim();
  if (!userId) throw new TypeError('CopilotWidget.mount: `userId` is required');
  const userHash =
    config.userHash === undefined || config.userHash === null || config.userHash === ''
      ? undefined
      : String(config.userHash);
  // Which product's users this is; may be left out when the server has one product.
  const productId =
    typeof config.productId === 'string' && config.productId.trim() ? config.productId.trim() : undefined;
  const title = typeof config.title === 'string' && config.title.trim() ? config.title.trim() : 'Copilot';
  return {
    serverUrl,
    userId,
    userHash,
    productId,
    title,
    colors: config.colors,
    open: config.open === true,
    // Optional: a Socket.IO path other than /socket.io (e.g. behind a proxy).
    socketPath: typeof config.socketPath === 'string' && config.socketPath ? config.socketPath : undefined,
    placeholder: typeof config.placeholder === 'string' ? config.placeholder : 'Ask me anything…',
    // Answers shown as they are written (`bot_stream`); off gives one bubble per answer, late.
    stream: config.stream !== false,
    // 👍/👎 under the bot's answers (the server then sends metadata.turn_id).
    feedback: config.feedback !== false,
  };
}

// ---- the widget ----------------------------------------------------------

function createWidget(cfg) {
  const doc = document;
  const storageKey = STORAGE_PREFIX + cfg.userId;

  const state = {
    open: false,
    socketConnected: false,
    confirmed: false,
    everConnected: false,
    sessionId: storageGet(storageKey),
    queue: [], // messages waiting for session_confirm
    unread: 0,
    typingTimer: null,
    // Streamed answers by message_id: {bubble, text, completed, final}.
    streams: new Map(),
    // The page element a bot message points at (metadata.domHighlight), if any.
    highlight: null,
    // 👍/👎 rows by turn id: {row, buttons}.
    feedback: new Map(),
    destroyed: false,
  };

  // ---- DOM ----
  if (!doc.getElementById(STYLE_ID)) {
    const style = el(doc, 'style', { id: STYLE_ID });
    style.textContent = WIDGET_CSS;
    (doc.head || doc.documentElement).appendChild(style);
  }

  const titleId = 'copilot-title';
  const badge = el(doc, 'span', { className: 'copilot-badge', 'aria-hidden': 'true', hidden: true });
  const unreadDesc = el(doc, 'span', { id: 'copilot-unread', className: 'copilot-sr-only' });
  const launcher = el(
    doc,
    'button',
    {
      id: 'copilot-launcher',
      type: 'button',
      'aria-label': 'Open chat',
      'aria-expanded': 'false',
      'aria-controls': 'copilot-panel',
    },
    [svgIcon(doc, 'chat', true), badge],
  );

  const closeBtn = el(doc, 'button', { type: 'button', className: 'copilot-close', 'aria-label': 'Close chat' }, [
    svgIcon(doc, 'close'),
  ]);
  const header = el(doc, 'div', { className: 'copilot-header' }, [
    el(doc, 'span', { className: 'copilot-avatar', 'aria-hidden': 'true' }, [svgIcon(doc, 'spark', true)]),
    el(doc, 'h2', { id: titleId, className: 'copilot-title', text: cfg.title }),
    closeBtn,
  ]);
  const status = el(doc, 'div', { className: 'copilot-status', role: 'status', text: 'Connecting…' });
  const empty = el(doc, 'p', {
    className: 'copilot-empty',
    text: 'Hi! Ask me about what you are doing in this app, or how to do something.',
  });
  const messages = el(doc, 'div', { id: 'copilot-messages', role: 'log', 'aria-live': 'polite' }, [empty]);
  const typing = el(
    doc,
    'div',
    { className: 'copilot-typing', role: 'status', 'aria-label': TYPING_LABEL, hidden: true },
    [el(doc, 'span'), el(doc, 'span'), el(doc, 'span')],
  );
  const input = el(doc, 'textarea', {
    id: 'copilot-input',
    'aria-label': 'Message',
    rows: '1',
    placeholder: cfg.placeholder,
    autocomplete: 'off',
    enterkeyhint: 'send',
  });
  const sendBtn = el(doc, 'button', { id: 'copilot-send', type: 'submit', 'aria-label': 'Send', disabled: true }, [
    svgIcon(doc, 'send'),
  ]);
  const composer = el(doc, 'form', { className: 'copilot-composer', novalidate: true }, [input, sendBtn]);
  const panel = el(
    doc,
    'div',
    { id: 'copilot-panel', role: 'dialog', 'aria-label': cfg.title, hidden: true },
    [header, status, messages, typing, composer],
  );
  // `ph-no-capture` keeps PostHog autocapture from recording clicks inside the
  // chat as product activity.
  const root = el(doc, 'div', { id: 'copilot-root', className: 'copilot-root ph-no-capture' }, [
    panel,
    launcher,
    unreadDesc,
  ]);

  const attach = () => {
    if (state.destroyed) return;
    doc.body.appendChild(root);
    applyColors(doc, root, cfg.colors);
    if (cfg.open) setOpen(true, { focus: false });
  };

  // ---- view helpers ----
  const scrollToEnd = () => {
    messages.scrollTop = messages.scrollHeight;
  };

  function setUnread(n) {
    state.unread = n;
    badge.textContent = n > 9 ? '9+' : String(n);
    badge.hidden = n === 0;
    unreadDesc.textContent = n === 0 ? '' : `${n} unread message${n === 1 ? '' : 's'}`;
    if (n === 0) launcher.removeAttribute('aria-describedby');
    else launcher.setAttribute('aria-describedby', 'copilot-unread');
  }

  function setOpen(open, { focus = true } = {}) {
    if (state.open === open) return;
    state.open = open;
    panel.hidden = !open;
    root.classList.toggle('copilot-open', open);
    launcher.setAttribute('aria-expanded', String(open));
    if (open) {
      setUnread(0);
      scrollToEnd();
      if (focus) input.focus();
    } else if (focus && root.contains(doc.activeElement || null)) {
      launcher.focus();
    }
  }

  function updateConnectionView() {
    sendBtn.disabled = !state.socketConnected;
    status.hidden = state.socketConnected;
    status.textContent = state.everConnected ? 'Reconnecting…' : 'Connecting…';
  }

  function showTyping(label = TYPING_LABEL) {
    typing.setAttribute('aria-label', label);
    typing.hidden = false;
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(hideTyping, TYPING_TIMEOUT_MS);
    scrollToEnd();
  }
  function hideTyping() {
    clearTimeout(state.typingTimer);
    state.typingTimer = null;
    typing.hidden = true;
  }

  function appendToLog(node) {
    if (empty.parentNode) empty.remove();
    messages.appendChild(node);
    scrollToEnd();
  }

  /** Replaces a bubble's content with `text` rendered as Markdown (never HTML). */
  function fillBubble(bubble, text) {
    bubble.textContent = '';
    bubble.appendChild(renderMarkdown(doc, text));
  }

  function removeQuickReplies() {
    for (const node of messages.querySelectorAll('.copilot-quick-replies')) node.remove();
  }

  function addUserBubble(text) {
    appendToLog(el(doc, 'div', { className: 'copilot-msg copilot-user', text }));
  }

  function renderReplies(replies, kind) {
    const group = el(doc, 'div', {
      className: `copilot-replies copilot-${kind}`,
      role: 'group',
      'aria-label': kind === 'quick-replies' ? 'Suggested replies' : 'Options',
    });
    for (const reply of replies) {
      if (!reply || typeof reply !== 'object') continue;
      const title = reply.title === undefined || reply.title === null ? '' : String(reply.title);
      if (!title) continue;
      // A web_url button (rasa-webchat shape) becomes a link chip, http(s) only.
      if (reply.type === 'web_url' || (reply.url && reply.payload === undefined)) {
        const href = safeHttpUrl(reply.url);
        if (!href) continue;
        group.appendChild(
          el(doc, 'a', {
            className: 'copilot-quick-reply',
            href,
            target: '_blank',
            rel: 'noopener noreferrer nofollow',
            text: title,
          }),
        );
        continue;
      }
      const payload = reply.payload === undefined || reply.payload === null ? title : String(reply.payload);
      const chip = el(doc, 'button', { type: 'button', className: 'copilot-quick-reply', text: title });
      chip.addEventListener('click', () => {
        sendMessage(payload, title);
        // Buttons stay (rasa-webchat behaviour); quick replies are removed by sendMessage.
      });
      group.appendChild(chip);
    }
    return group.childNodes.length ? group : null;
  }

  /**
   * Renders one bot_uttered payload. Returns {rendered, drafted}: whether
   * anything was shown, and whether its text replaced a streamed draft (already
   * counted as unread when the draft appeared).
   */
  function renderBotMessage(raw, metadata) {
    const msg = typeof raw === 'string' ? { text: raw } : raw;
    if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return { rendered: false, drafted: false };
    let rendered = false;
    // The bubble the 👍/👎 row goes under, when the turn has one.
    let anchor = null;
    const hasText = msg.text !== undefined && msg.text !== null && String(msg.text).trim() !== '';
    const draft = finaliseDraft(metadata.message_id, hasText ? String(msg.text) : null);
    const drafted = draft !== null;
    if (drafted) {
      rendered = true;
      anchor = draft;
    } else if (hasText) {
      const bubble = el(doc, 'div', { className: 'copilot-msg copilot-bot' });
      fillBubble(bubble, String(msg.text));
      appendToLog(bubble);
      rendered = true;
      anchor = bubble;
    }
    const attachment = msg.attachment;
    if (attachment && typeof attachment === 'object' && attachment.type === 'image') {
      const payload = attachment.payload && typeof attachment.payload === 'object' ? attachment.payload : {};
      const src = safeHttpUrl(payload.src, window.location.href);
      if (src) {
        const img = el(doc, 'img', { src, alt: '', loading: 'lazy' });
        const bubble = el(doc, 'div', { className: 'copilot-msg copilot-bot copilot-image' }, [img]);
        img.addEventListener('load', scrollToEnd, { once: true });
        img.addEventListener('error', () => bubble.remove(), { once: true });
        appendToLog(bubble);
        rendered = true;
        if (!anchor) anchor = bubble;
      }
    }
    if (Array.isArray(msg.quick_replies) && msg.quick_replies.length) {
      const group = renderReplies(msg.quick_replies, 'quick-replies');
      if (group) {
        appendToLog(group);
        rendered = true;
      }
    }
    if (Array.isArray(msg.buttons) && msg.buttons.length) {
      const group = renderReplies(msg.buttons, 'buttons');
      if (group) {
        appendToLog(group);
        rendered = true;
      }
    }
    return { rendered, drafted, anchor };
  }

  // ---- 👍/👎 (metadata.turn_id) ----
  // One row per turn, under its latest bot bubble; a click sends `feedback` and
  // marks the chosen thumb (aria-pressed). The row is not a .copilot-msg: it is
  // not a message and does not count as unread.

  function showFeedback(rawTurnId, anchor) {
    if (!cfg.feedback || !anchor || !anchor.isConnected) return;
    if (rawTurnId === undefined || rawTurnId === null || rawTurnId === '') return;
    const turnId = String(rawTurnId);
    let entry = state.feedback.get(turnId);
    if (!entry) {
      const buttons = THUMBS.map(({ value, label }) =>
        el(
          doc,
          'button',
          {
            type: 'button',
            className: 'copilot-thumb',
            'data-value': value,
            'aria-label': label,
            'aria-pressed': 'false',
            title: label,
          },
          [svgIcon(doc, value)],
        ),
      );
      const row = el(
        doc,
        'div',
        { className: 'copilot-feedback', role: 'group', 'aria-label': 'Was this answer helpful?', 'data-turn-id': turnId },
        buttons,
      );
      entry = { row, buttons };
      for (const button of buttons) {
        button.addEventListener('click', () => {
          const value = button.getAttribute('data-value');
          if (button.getAttribute('aria-pressed') === 'true' || state.destroyed) return;
          for (const b of buttons) b.setAttribute('aria-pressed', String(b === button));
          row.classList.add('copilot-feedback-given');
          // Socket.IO buffers it while disconnected.
          socket.emit(EVT_FEEDBACK, { turn_id: turnId, value });
        });
      }
      state.feedback.set(turnId, entry);
      while (state.feedback.size > MAX_FEEDBACK_TURNS) state.feedback.delete(state.feedback.keys().next().value);
    }
    anchor.after(entry.row);
    if (entry.row === messages.lastChild) scrollToEnd();
  }

  function onBotUttered(raw) {
    hideTyping();
    const metadata = raw && typeof raw === 'object' && raw.metadata && typeof raw.metadata === 'object' ? raw.metadata : {};
    const { rendered, drafted, anchor } = renderBotMessage(raw, metadata);
    if (rendered) showFeedback(metadata.turn_id, anchor);
    if (metadata.forceOpen === true) {
      // A proactive offer: open, but do not pull focus away from the page.
      setOpen(true, { focus: false });
    } else if (metadata.forceClose === true) {
      setOpen(false, { focus: false });
    } else if (rendered && !drafted && !state.open) {
      setUnread(state.unread + 1);
    }
    if (metadata.domHighlight !== undefined && metadata.domHighlight !== null) {
      const text = raw && typeof raw === 'object' && typeof raw.text === 'string' ? raw.text : '';
      showHighlight(metadata.domHighlight, text);
    }
  }

  // ---- streamed answers (bot_stream) ----
  // A streamed answer lives in one draft bubble: created by the first
  // `replying`, replaced by each later one (its text is the whole answer so
  // far), and made final by the bot_uttered whose metadata.message_id names it.

  function streamEntry(id) {
    let entry = state.streams.get(id);
    if (!entry) {
      entry = { bubble: null, text: '', completed: false, final: false };
      state.streams.set(id, entry);
      // A Map iterates in insertion order: forget the oldest answers first.
      while (state.streams.size > MAX_STREAMS) state.streams.delete(state.streams.keys().next().value);
    }
    return entry;
  }

  function showDraft(id, entry, text) {
    if (!entry.bubble) {
      // aria-busy: screen readers wait for the final text instead of reading
      // every partial one out of the live log.
      entry.bubble = el(doc, 'div', {
        className: 'copilot-msg copilot-bot copilot-draft',
        'data-message-id': id,
        'aria-busy': 'true',
      });
      fillBubble(entry.bubble, text);
      appendToLog(entry.bubble);
      // The answer is counted once, here; its final form replaces this bubble.
      if (!state.open) setUnread(state.unread + 1);
    } else {
      // Follow the growing text only when the reader is at the end already.
      const atEnd = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 48;
      fillBubble(entry.bubble, text);
      if (atEnd) scrollToEnd();
    }
    entry.text = text;
  }

  function onBotStream(raw) {
    if (!raw || typeof raw !== 'object') return;
    const id = raw.message_id === undefined || raw.message_id === null ? '' : String(raw.message_id);
    if (!id) return;
    const text = typeof raw.text === 'string' ? raw.text : '';
    const entry = streamEntry(id);
    // Late or out-of-order steps of an answer that is already complete.
    if (entry.completed || entry.final) return;
    if (raw.status === 'thinking') {
      if (!entry.bubble) showTyping(THINKING_LABEL);
    } else if (raw.status === 'replying') {
      // An older, shorter step arriving after a newer one would shrink the text.
      if (text.trim() === '' || (text.length < entry.text.length && entry.text.startsWith(text))) return;
      hideTyping();
      showDraft(id, entry, text);
    } else if (raw.status === 'complete') {
      entry.completed = true;
      hideTyping();
      if (text.trim() !== '' && text !== entry.text) showDraft(id, entry, text);
    }
    // Other statuses (from a newer server) are ignored.
  }

  /**
   * Puts the final text of the streamed answer `id` into its draft bubble and
   * returns that bubble; null when there is no draft to finalise (the caller
   * renders the payload as a new message).
   */
  function finaliseDraft(rawId, text) {
    if (rawId === undefined || rawId === null || rawId === '') return null;
    const id = String(rawId);
    const entry = streamEntry(id);
    const draft = entry.final ? null : entry.bubble;
    entry.final = true; // whatever comes for it later is stale
    if (!draft) return null;
    if (text !== null) fillBubble(draft, text);
    draft.classList.remove('copilot-draft');
    draft.removeAttribute('aria-busy');
    return draft;
  }

  // ---- "show me": metadata.domHighlight ----
  // rasa-webchat 1.x's shape: {selector, style?: 'custom'|'class', css?,
  // tooltipPlacement?, tooltipClose?}, plus `tooltip` (text shown instead of the
  // message's). The element is outlined, scrolled to, and labelled with a small
  // tooltip until it is clicked, another highlight comes, or HIGHLIGHT_MS pass.

  function clearHighlight() {
    const h = state.highlight;
    if (!h) return;
    state.highlight = null;
    clearTimeout(h.timer);
    cancelAnimationFrame(h.frame);
    for (const undo of h.undo.reverse()) undo();
    if (h.tooltip) h.tooltip.remove();
  }

  /** Marks `target` as rasa-webchat would; returns how to undo it. */
  function markTarget(target, spec) {
    if (spec.style === 'custom' && typeof spec.css === 'string') {
      // Added to the element's own inline style (rasa-webchat replaces it),
      // so clearing the highlight gives the page its style back.
      const before = target.getAttribute('style');
      target.setAttribute('style', `${before ? `${before};` : ''}${spec.css}`);
      return () => (before === null ? target.removeAttribute('style') : target.setAttribute('style', before));
    }
    if (spec.style === 'class' && typeof spec.css === 'string' && spec.css.trim()) {
      const names = spec.css.trim().split(/\s+/).filter((name) => !target.classList.contains(name));
      try {
        target.classList.add(...names);
      } catch (_) {
        console.warn(`[copilot] domHighlight: ${JSON.stringify(spec.css)} is not a list of class names`);
        return () => {};
      }
      return () => target.classList.remove(...names);
    }
    // The page's elements do not inherit the widget's colour properties, so
    // the highlight colour is copied onto the element.
    const computed = getComputedStyle(root);
    const colours = {
      '--copilot-highlight': computed.getPropertyValue('--copilot-primary').trim(),
      '--copilot-highlight-ring': computed.getPropertyValue('--copilot-primary-ring').trim(),
    };
    const before = {};
    for (const [name, value] of Object.entries(colours)) {
      before[name] = target.style.getPropertyValue(name);
      if (value) target.style.setProperty(name, value);
    }
    const added = !target.classList.contains(HIGHLIGHT_CLASS);
    target.classList.add(HIGHLIGHT_CLASS);
    return () => {
      if (added) target.classList.remove(HIGHLIGHT_CLASS);
      for (const [name, value] of Object.entries(before)) {
        if (value) target.style.setProperty(name, value);
        else target.style.removeProperty(name);
      }
      if (target.getAttribute('style') === '') target.removeAttribute('style');
    };
  }

  function placeTooltip(target, tooltip, arrow, placement) {
    const r = target.getBoundingClientRect();
    const vw = doc.documentElement.clientWidth;
    const vh = doc.documentElement.clientHeight;
    const tw = tooltip.offsetWidth;
    const th = tooltip.offsetHeight;
    let side = placement;
    if (side === 'bottom' && r.bottom + TOOLTIP_GAP + th > vh && r.top - TOOLTIP_GAP - th >= 0) side = 'top';
    if (side === 'top' && r.top - TOOLTIP_GAP - th < 0) side = 'bottom';
    if (side === 'left' && r.left - TOOLTIP_GAP - tw < 0) side = 'bottom';
    if (side === 'right' && r.right + TOOLTIP_GAP + tw > vw) side = 'bottom';
    let top;
    let left;
    if (side === 'top' || side === 'bottom') {
      top = side === 'top' ? r.top - TOOLTIP_GAP - th : r.bottom + TOOLTIP_GAP;
      left = r.left + r.width / 2 - tw / 2;
    } else {
      top = r.top + r.height / 2 - th / 2;
      left = side === 'left' ? r.left - TOOLTIP_GAP - tw : r.right + TOOLTIP_GAP;
    }
    const clamp = (v, lo, hi) => Math.max(lo, Math.min(v, Math.max(lo, hi)));
    left = clamp(left, 8, vw - tw - 8);
    top = clamp(top, 8, vh - th - 8);
    tooltip.style.left = `${Math.round(left)}px`;
    tooltip.style.top = `${Math.round(top)}px`;
    tooltip.setAttribute('data-side', side);
    // The arrow points at the element's centre even when the tooltip is clamped.
    if (side === 'top' || side === 'bottom') {
      arrow.style.top = '';
      arrow.style.left = `${Math.round(clamp(r.left + r.width / 2 - left - 5, 10, tw - 20))}px`;
    } else {
      arrow.style.left = '';
      arrow.style.top = `${Math.round(clamp(r.top + r.height / 2 - top - 5, 10, th - 20))}px`;
    }
  }

  function showHighlight(spec, messageText) {
    clearHighlight();
    if (!spec || typeof spec !== 'object' || typeof spec.selector !== 'string' || !spec.selector.trim()) {
      console.warn('[copilot] domHighlight without a selector: ignored');
      return;
    }
    let target = null;
    try {
      target = doc.querySelector(spec.selector);
    } catch (_) {
      console.warn(`[copilot] domHighlight: ${JSON.stringify(spec.selector)} is not a valid selector`);
      return;
    }
    if (!target) {
      console.warn(`[copilot] domHighlight: nothing on this page matches ${JSON.stringify(spec.selector)}`);
      return;
    }
    const h = { target, undo: [], tooltip: null, timer: null, frame: 0 };
    state.highlight = h;
    h.undo.push(markTarget(target, spec));

    const inView = (r) => r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth;
    // Instant, not smooth: the tooltip and the panel check below need the
    // element's final position.
    if (!inView(target.getBoundingClientRect()) && typeof target.scrollIntoView === 'function') {
      target.scrollIntoView({ block: 'center', inline: 'nearest' });
    }
    // Shown is the point: when the open panel covers the element (always on
    // phones, where it is full screen), step aside. The launcher brings it back.
    if (state.open) {
      const p = panel.getBoundingClientRect();
      const r = target.getBoundingClientRect();
      if (r.left < p.right && r.right > p.left && r.top < p.bottom && r.bottom > p.top) setOpen(false);
    }

    const tipText = typeof spec.tooltip === 'string' && spec.tooltip.trim() ? spec.tooltip : messageText;
    if (tipText && tipText.trim()) {
      const body = el(doc, 'div', { className: 'copilot-tooltip-body' });
      body.appendChild(renderMarkdown(doc, tipText));
      const dismiss = el(doc, 'button', { type: 'button', className: 'copilot-tooltip-close', 'aria-label': 'Dismiss' }, [
        svgIcon(doc, 'close'),
      ]);
      const arrow = el(doc, 'span', { className: 'copilot-tooltip-arrow', 'aria-hidden': 'true' });
      const tooltip = el(doc, 'div', { id: 'copilot-tooltip', className: 'copilot-tooltip', role: 'note' }, [
        arrow,
        body,
        dismiss,
      ]);
      root.appendChild(tooltip);
      h.tooltip = tooltip;
      const describedBy = target.getAttribute('aria-describedby');
      target.setAttribute('aria-describedby', describedBy ? `${describedBy} copilot-tooltip` : 'copilot-tooltip');
      h.undo.push(() =>
        describedBy === null ? target.removeAttribute('aria-describedby') : target.setAttribute('aria-describedby', describedBy),
      );
      const placement = ['top', 'bottom', 'left', 'right'].find(
        (side) => typeof spec.tooltipPlacement === 'string' && spec.tooltipPlacement.startsWith(side),
      ) || 'bottom';
      const place = () => {
        h.frame = 0;
        if (!target.isConnected) clearHighlight();
        else placeTooltip(target, tooltip, arrow, placement);
      };
      const schedule = () => {
        if (!h.frame) h.frame = requestAnimationFrame(place);
      };
      place();
      window.addEventListener('scroll', schedule, { capture: true, passive: true });
      window.addEventListener('resize', schedule, { passive: true });
      h.undo.push(() => {
        window.removeEventListener('scroll', schedule, { capture: true });
        window.removeEventListener('resize', schedule);
      });
      dismiss.addEventListener('click', () => {
        clearHighlight();
        // rasa-webchat sends `/<tooltipClose>` (an intent) when its tooltip is closed.
        if (typeof spec.tooltipClose === 'string' && spec.tooltipClose.trim()) sendSilently(`/${spec.tooltipClose.trim()}`);
      });
    }
    const onTargetClick = () => clearHighlight();
    target.addEventListener('click', onTargetClick);
    h.undo.push(() => target.removeEventListener('click', onTargetClick));
    h.timer = setTimeout(() => {
      if (state.highlight === h) clearHighlight();
    }, HIGHLIGHT_MS);
  }

  // ---- protocol ----
  // The user id also goes in the connect auth (and session_request), so the
  // server can push proactive offers before the user has typed anything.
  // `userHash` (HMAC-SHA256 of the id, made by the host app's backend) proves it.
  const identity = { userId: cfg.userId };
  if (cfg.userHash !== undefined) identity.userHash = cfg.userHash;
  if (cfg.productId !== undefined) identity.productId = cfg.productId;
  const ioOptions = { transports: ['websocket', 'polling'], tryAllTransports: true, auth: identity };
  if (cfg.socketPath) ioOptions.path = cfg.socketPath;
  const socket = io(cfg.serverUrl, ioOptions);

  // What the server reads from customData besides the identity: `stream` asks
  // for bot_stream steps, `feedback` for metadata.turn_id on each answer (servers
  // that do not know them ignore them).
  const customData = { ...identity };
  if (cfg.stream) customData.stream = true;
  if (cfg.feedback) customData.feedback = true;

  function emitUtterance(message) {
    // Every message repeats the identity, as rasa-webchat's customData does.
    socket.emit(EVT_USER_UTTERED, { message, session_id: state.sessionId, customData });
  }

  function flushQueue() {
    while (state.confirmed && state.queue.length) emitUtterance(state.queue.shift());
  }

  /** Sends `message` (text or a payload such as "/affirm"); shows `display`. */
  function sendMessage(message, display) {
    const text = typeof message === 'string' ? message.trim() : '';
    if (!text || state.destroyed) return false;
    removeQuickReplies();
    addUserBubble(display === undefined ? text : display);
    showTyping();
    if (state.confirmed && socket.connected) emitUtterance(text);
    else state.queue.push(text);
    return true;
  }

  /** Sends a payload without showing it, as rasa-webchat does for tooltipClose. */
  function sendSilently(payload) {
    if (state.destroyed) return;
    if (state.confirmed && socket.connected) emitUtterance(payload);
    else state.queue.push(payload);
  }

  socket.on('connect', () => {
    state.socketConnected = true;
    state.everConnected = true;
    state.confirmed = false;
    updateConnectionView();
    socket.emit(EVT_SESSION_REQUEST, { session_id: state.sessionId || null, customData });
  });
  socket.on(EVT_SESSION_CONFIRM, (payload) => {
    let id = null;
    if (typeof payload === 'string') id = payload;
    else if (payload && typeof payload === 'object' && typeof payload.session_id === 'string') id = payload.session_id;
    if (id) {
      state.sessionId = id;
      storageSet(storageKey, id);
    }
    state.confirmed = Boolean(state.sessionId);
    flushQueue();
  });
  socket.on(EVT_BOT_UTTERED, onBotUttered);
  socket.on(EVT_BOT_STREAM, onBotStream);
  socket.on('disconnect', (reason) => {
    state.socketConnected = false;
    state.confirmed = false;
    updateConnectionView();
    // After a server-side disconnect socket.io-client does not retry on its own.
    if (reason === 'io server disconnect' && !state.destroyed) socket.connect();
  });
  socket.on('connect_error', () => {
    state.everConnected = true; // show "Reconnecting…" while retries run
    updateConnectionView();
  });
  updateConnectionView();

  // ---- input ----
  launcher.addEventListener('click', () => setOpen(!state.open));
  closeBtn.addEventListener('click', () => setOpen(false));
  root.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && state.open) {
      event.stopPropagation();
      setOpen(false);
      launcher.focus();
    }
  });
  const autosize = () => {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight + 2, 120)}px`;
  };
  input.addEventListener('input', autosize);
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      if (typeof composer.requestSubmit === 'function') composer.requestSubmit();
      else composer.dispatchEvent(new Event('submit', { cancelable: true }));
    }
  });
  // The send button is disabled while disconnected, but Enter still works: the
  // message is queued and goes out after the next session_confirm.
  composer.addEventListener('submit', (event) => {
    event.preventDefault();
    if (sendMessage(input.value)) {
      input.value = '';
      autosize();
    }
    input.focus();
  });

  // Last, so everything attach() (and setOpen) uses is initialised.
  if (doc.body) attach();
  else doc.addEventListener('DOMContentLoaded', attach, { once: true });

  const handle = {
    open: () => setOpen(true),
    close: () => setOpen(false),
    toggle: () => setOpen(!state.open),
    isOpen: () => state.open,
    /** Sends a message as if typed (or a payload with a separate display text). */
    send: (message, display) => sendMessage(message, display),
    get sessionId() {
      return state.sessionId;
    },
    get connected() {
      return state.socketConnected && state.confirmed;
    },
    socket,
    destroy() {
      state.destroyed = true;
      hideTyping();
      clearHighlight();
      socket.close();
      root.remove();
      doc.removeEventListener('DOMContentLoaded', attach);
      if (current === handle) current = null;
    },
  };
  return handle;
}

/**
 * Mounts the widget and returns its handle. One widget per page: a second
 * call returns the existing handle (call `destroy()` first to remount).
 *
 * @param {{serverUrl: string, userId: string, userHash?: string, productId?: string, title?: string,
 *          colors?: {primary?: string, background?: string, text?: string},
 *          open?: boolean, socketPath?: string, placeholder?: string, stream?: boolean,
 *          feedback?: boolean}} config
 */
export function mount(config) {
  const cfg = normaliseConfig(config);
  if (current) {
    console.warn('[copilot] widget already mounted; returning the existing instance');
    return current;
  }
  current = createWidget(cfg);
  return current;
}

// Also reachable as `window.CopilotWidget.mount` when this module is bundled
// into another script (the demo) rather than loaded as widget.js.
if (typeof window !== 'undefined') {
  if (!window.CopilotWidget) window.CopilotWidget = { mount };
  // Auto-mount: one <script> tag plus `window.CopilotWidgetConfig = {...}`.
  const autoConfig = window.CopilotWidgetConfig;
  if (autoConfig && typeof autoConfig === 'object') {
    try {
      mount(autoConfig);
    } catch (err) {
      console.error(`[copilot] could not mount from window.CopilotWidgetConfig: ${err.message}`);
    }
  }
}
