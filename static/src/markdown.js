// A deliberately tiny Markdown subset rendered straight to DOM nodes.
//
// IMPORTANT: nothing here ever assigns innerHTML. Every piece of message text
// becomes a Text node (or the text of an element we created), so bot or user
// text can never inject markup. Links are created only for http(s) URLs.
//
// Supported: paragraphs (blank line), line breaks (single newline), **bold**,
// `code`, numbered lists ("1. item"), bullet lists ("- item"), [text](https://…)
// and bare http(s) URLs.

const ORDERED_ITEM = /^\s*(\d{1,9})[.)]\s+(.*)$/;
const BULLET_ITEM = /^\s*[-*•]\s+(.*)$/;

// One alternation, earliest match wins. Groups:
// 1 code body | 2 bold body | 3 link text, 4 link url | 5 bare url
const INLINE = new RegExp(
  [
    '`([^`\\n]+)`',
    '\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*',
    '\\[([^\\]\\n]+)\\]\\((https?:\\/\\/[^\\s)]+)\\)',
    '(https?:\\/\\/[^\\s<>"]*[^\\s<>".,;:!?\'")\\]])',
  ].join('|'),
  'g',
);

/** Returns the URL string if it is an absolute http(s) URL, else null. */
export function safeHttpUrl(raw, base) {
  if (typeof raw !== 'string' || raw.trim() === '') return null;
  try {
    const url = base ? new URL(raw, base) : new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch (_) {
    return null;
  }
}

function makeLink(doc, href, text) {
  const a = doc.createElement('a');
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer nofollow';
  a.textContent = text;
  return a;
}

/** Appends the inline-formatted form of `text` to `parent`. */
export function appendInline(doc, parent, text, depth = 0) {
  let last = 0;
  // A fresh regex per call keeps recursion (bold containing links) safe.
  const re = new RegExp(INLINE.source, 'g');
  let m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) parent.appendChild(doc.createTextNode(text.slice(last, m.index)));
    if (m[1] !== undefined) {
      const code = doc.createElement('code');
      code.textContent = m[1];
      parent.appendChild(code);
    } else if (m[2] !== undefined) {
      const strong = doc.createElement('strong');
      if (depth < 3) appendInline(doc, strong, m[2], depth + 1);
      else strong.textContent = m[2];
      parent.appendChild(strong);
    } else if (m[3] !== undefined) {
      const href = safeHttpUrl(m[4]);
      parent.appendChild(href ? makeLink(doc, href, m[3]) : doc.createTextNode(m[0]));
    } else if (m[5] !== undefined) {
      const href = safeHttpUrl(m[5]);
      parent.appendChild(href ? makeLink(doc, href, m[5]) : doc.createTextNode(m[5]));
    }
    last = m.index + m[0].length;
  }
  if (last < text.length) parent.appendChild(doc.createTextNode(text.slice(last)));
}

function appendLines(doc, parent, lines) {
  lines.forEach((line, i) => {
    if (i > 0) parent.appendChild(doc.createElement('br'));
    appendInline(doc, parent, line);
  });
}

/** Renders `text` into a DocumentFragment of <p>, <ol>, <ul> blocks. */
export function renderMarkdown(doc, text) {
  const frag = doc.createDocumentFragment();
  const normalised = String(text).replace(/\r\n?/g, '\n');
  const blocks = normalised.split(/\n[ \t]*\n/);
  for (const block of blocks) {
    const lines = block.split('\n');
    let para = [];
    let list = null; // { el, kind }
    const flushPara = () => {
      if (para.some((l) => l.trim() !== '')) {
        const p = doc.createElement('p');
        appendLines(doc, p, para);
        frag.appendChild(p);
      }
      para = [];
    };
    for (const line of lines) {
      const ordered = ORDERED_ITEM.exec(line);
      const bullet = ordered ? null : BULLET_ITEM.exec(line);
      if (ordered || bullet) {
        const kind = ordered ? 'ol' : 'ul';
        if (!list || list.kind !== kind) {
          flushPara();
          list = { el: doc.createElement(kind), kind };
          if (ordered && ordered[1] !== '1') list.el.setAttribute('start', String(Number(ordered[1])));
          frag.appendChild(list.el);
        }
        const li = doc.createElement('li');
        appendInline(doc, li, ordered ? ordered[2] : bullet[1]);
        list.el.appendChild(li);
      } else if (list && /^\s{2,}\S/.test(line) && list.el.lastChild) {
        // An indented continuation line belongs to the previous list item.
        list.el.lastChild.appendChild(doc.createElement('br'));
        appendInline(doc, list.el.lastChild, line.trim());
      } else {
        list = null;
        para.push(line);
      }
    }
    flushPara();
  }
  return frag;
}
