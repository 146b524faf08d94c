// The team console at /admin: a small single-page app over the JSON API in
// docs/console-api.md. Hash routes: #/live, #/conversations,
// #/conversation/<id>, #/inbox, #/numbers; a login form while there is no
// session.
//
// Security notes: the session is an HttpOnly cookie the server sets; the CSRF
// token from the session JSON stays in memory (api.js) and goes out as
// X-CSRF-Token on every POST. Nothing secret is put in a URL or in storage.
// All data is shown with textContent (console/dom.js), never as HTML.
import { h, replace, errorBox } from './console/dom.js';
import { request, post, setCsrf, setUnauthorizedHandler } from './console/api.js';
import { renderLive } from './console/live.js';
import { renderConversations } from './console/conversations.js';
import { renderTranscript } from './console/transcript.js';
import { renderInbox } from './console/inbox.js';
import { renderNumbers } from './console/numbers.js';

const NAV = [
  { route: 'live', label: 'Live' },
  { route: 'conversations', label: 'Conversations' },
  { route: 'inbox', label: 'Inbox' },
  { route: 'numbers', label: 'Numbers' },
];
const TITLES = { live: 'Live', conversations: 'Conversations', conversation: 'Conversation', inbox: 'Inbox', numbers: 'Numbers' };
const DEFAULT_ROUTE = '#/live';
const PRODUCT_KEY = 'copilot_console_product';

const app = document.getElementById('app') || document.body.appendChild(h('div', { id: 'app' }));

const state = {
  session: null,
  // The product picked by an admin; '' = all products.
  product: '',
  cleanup: null,
  view: null,
  nav: null,
};

// ---------------------------------------------------------------- routing

function parseHash() {
  const raw = window.location.hash.replace(/^#/, '');
  const [path, qs = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean);
  let arg = null;
  if (parts.length > 1) {
    try {
      arg = decodeURIComponent(parts.slice(1).join('/'));
    } catch (_) {
      arg = parts.slice(1).join('/');
    }
  }
  return { name: parts[0] || '', arg, params: new URLSearchParams(qs) };
}

function navigate(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function stopView() {
  if (state.cleanup) {
    try {
      state.cleanup();
    } catch (_) {
      /* a view's cleanup must not break navigation */
    }
  }
  state.cleanup = null;
}

function route() {
  if (!state.session || !state.view) return;
  const { name, arg, params } = parseHash();
  const known = name === 'conversation' ? Boolean(arg) : NAV.some((n) => n.route === name);
  if (!known) {
    window.location.replace(DEFAULT_ROUTE);
    return;
  }
  stopView();
  markNav(name === 'conversation' ? 'conversations' : name);
  document.title = `${TITLES[name]} · Copilot console`;
  const ctx = {
    product: effectiveProduct(),
    products: state.session.products || [],
    params,
    navigate,
  };
  const view = state.view;
  view.setAttribute('data-route', name);
  if (name === 'live') state.cleanup = renderLive(view, ctx);
  else if (name === 'conversations') state.cleanup = renderConversations(view, ctx);
  else if (name === 'conversation') state.cleanup = renderTranscript(view, { ...ctx, id: arg });
  else if (name === 'inbox') state.cleanup = renderInbox(view, ctx);
  else if (name === 'numbers') state.cleanup = renderNumbers(view, ctx);
  window.scrollTo(0, 0);
}

/** What to send as `product`: a product login's own, else the admin's pick ('' = all). */
function effectiveProduct() {
  const s = state.session;
  if (s.role === 'product') return s.product || (s.products || [])[0] || '';
  return state.product;
}

function markNav(current) {
  if (!state.nav) return;
  for (const a of state.nav.querySelectorAll('a[data-route]')) {
    if (a.getAttribute('data-route') === current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------- shell

function storedProduct(products) {
  try {
    const p = window.sessionStorage.getItem(PRODUCT_KEY);
    return p && products.includes(p) ? p : '';
  } catch (_) {
    return '';
  }
}

function start(session) {
  state.session = session;
  setCsrf(session.csrf);
  const products = Array.isArray(session.products) ? session.products : [];
  state.product = session.role === 'admin' && products.length > 1 ? storedProduct(products) : '';

  const nav = h(
    'nav',
    { className: 'main-nav', 'aria-label': 'Console' },
    h('ul', null, NAV.map((n) => h('li', null, h('a', { href: `#/${n.route}`, 'data-route': n.route, id: `nav-${n.route}` }, n.label)))),
  );
  state.nav = nav;

  let picker = null;
  if (session.role === 'admin' && products.length > 1) {
    picker = h(
      'select',
      { id: 'product-picker', 'aria-label': 'Product' },
      h('option', { value: '', selected: state.product === '' }, 'All products'),
      products.map((p) => h('option', { value: p, selected: p === state.product }, p)),
    );
    picker.addEventListener('change', () => {
      state.product = picker.value;
      try {
        window.sessionStorage.setItem(PRODUCT_KEY, picker.value);
      } catch (_) {
        /* memory only */
      }
      route();
    });
  }
  const who =
    session.role === 'admin'
      ? h('span', { id: 'whoami', className: 'whoami', 'data-role': 'admin' }, 'Admin')
      : h('span', { id: 'whoami', className: 'whoami', 'data-role': 'product' }, session.product || products[0] || 'product');
  const logout = h('button', { type: 'button', id: 'logout', className: 'btn btn-ghost' }, 'Log out');
  logout.addEventListener('click', doLogout);

  const view = h('main', { id: 'view', className: 'view', tabindex: '-1' });
  state.view = view;
  replace(
    app,
    h(
      'header',
      { className: 'topbar' },
      h('a', { className: 'brand', href: DEFAULT_ROUTE }, h('span', { className: 'brand-mark', 'aria-hidden': 'true' }, 'C'), 'Copilot console'),
      nav,
      h('div', { className: 'topbar-end' }, picker ? h('label', { className: 'picker' }, h('span', { className: 'visually-hidden' }, 'Product'), picker) : null, who, logout),
    ),
    view,
  );
  app.setAttribute('data-state', 'ready');
  if (!parseHash().name) window.location.replace(DEFAULT_ROUTE);
  route();
}

async function doLogout() {
  try {
    await post('/admin/api/logout');
  } catch (err) {
    if (err.status !== 401) {
      window.alert(`Could not log out: ${err.message}`);
      return;
    }
  }
  endSession('You are logged out.');
}

function endSession(message) {
  stopView();
  setCsrf(null);
  state.session = null;
  state.view = null;
  state.nav = null;
  showLogin(message);
}

// ---------------------------------------------------------------- login

function showLogin(message) {
  document.title = 'Log in · Copilot console';
  const kind = (value, label) =>
    h('label', { className: 'segment' }, h('input', { type: 'radio', name: 'login-kind', value, checked: value === 'admin' }), h('span', null, label));
  const token = h('input', { id: 'login-token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true });
  const productId = h('input', { id: 'login-product', name: 'product', type: 'text', autocomplete: 'username', spellcheck: 'false', placeholder: 'demo' });
  const apiKey = h('input', { id: 'login-api-key', name: 'api_key', type: 'password', autocomplete: 'off', spellcheck: 'false' });
  const adminFields = h('div', { className: 'login-fields', 'data-kind': 'admin' }, h('label', { className: 'field' }, h('span', null, 'Admin token'), token));
  const productFields = h(
    'div',
    { className: 'login-fields', 'data-kind': 'product', hidden: true },
    h('label', { className: 'field' }, h('span', null, 'Product id'), productId),
    h('label', { className: 'field' }, h('span', null, 'API key'), apiKey),
  );
  const error = h('p', { id: 'login-error', className: 'form-error', role: 'alert', hidden: !message || message.startsWith('You are logged out') });
  if (message) error.textContent = message;
  const info = message && message.startsWith('You are logged out') ? h('p', { className: 'notice notice-ok', role: 'status' }, message) : null;
  const submit = h('button', { type: 'submit', id: 'login-submit', className: 'btn btn-primary btn-block' }, 'Log in');
  const form = h(
    'form',
    // method=post: were the script's submit handler ever skipped, the token
    // would go in a request body, never in the URL.
    { id: 'login-form', className: 'card login-card', method: 'post', novalidate: true },
    h('div', { className: 'login-brand' }, h('span', { className: 'brand-mark', 'aria-hidden': 'true' }, 'C'), h('h1', null, 'Copilot console')),
    h('p', { className: 'subtle' }, 'See what your users do, what the copilot answered and why.'),
    info,
    h('fieldset', { className: 'segments' }, h('legend', { className: 'visually-hidden' }, 'Log in with'), kind('admin', 'Admin token'), kind('product', 'Product key')),
    adminFields,
    productFields,
    error,
    submit,
  );
  const selectedKind = () => (form.querySelector('input[name=login-kind]:checked') || {}).value || 'admin';
  form.addEventListener('change', (event) => {
    if (event.target.name !== 'login-kind') return;
    const k = selectedKind();
    adminFields.hidden = k !== 'admin';
    productFields.hidden = k !== 'product';
    token.required = k === 'admin';
    productId.required = k === 'product';
    apiKey.required = k === 'product';
    (k === 'admin' ? token : productId).focus();
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const k = selectedKind();
    const body =
      k === 'admin' ? { token: token.value.trim() } : { product: productId.value.trim(), api_key: apiKey.value.trim() };
    if ((k === 'admin' && !body.token) || (k === 'product' && (!body.product || !body.api_key))) {
      error.textContent = k === 'admin' ? 'Enter the admin token.' : 'Enter the product id and its API key.';
      error.hidden = false;
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Logging in…';
    error.hidden = true;
    try {
      const session = await request('POST', '/admin/api/login', body, { auth: false });
      token.value = '';
      apiKey.value = '';
      start(session);
    } catch (err) {
      error.textContent = err.status === 401 ? 'Wrong credentials.' : `Could not log in: ${err.message}`;
      error.hidden = false;
      submit.disabled = false;
      submit.textContent = 'Log in';
      (k === 'admin' ? token : apiKey).select();
    }
  });
  app.setAttribute('data-state', 'login');
  replace(app, h('main', { className: 'login-page' }, form));
  token.focus();
}

// ---------------------------------------------------------------- boot

async function checkSession() {
  try {
    const session = await request('GET', '/admin/api/session', undefined, { auth: false });
    return session;
  } catch (err) {
    if (err.status === 401) return null;
    throw err;
  }
}

async function boot() {
  setUnauthorizedHandler(() => {
    if (state.session) endSession('Your session has ended. Log in again.');
  });
  window.addEventListener('hashchange', route);
  // A view (Live) lost its stream: still logged in?
  app.addEventListener('console:check-session', async () => {
    try {
      if (state.session && !(await checkSession())) endSession('Your session has ended. Log in again.');
    } catch (_) {
      /* the server is away; the view says so */
    }
  });
  let session;
  try {
    session = await checkSession();
  } catch (err) {
    const retry = h('button', { type: 'button', className: 'btn' }, 'Try again');
    retry.addEventListener('click', () => window.location.reload());
    replace(app, h('main', { className: 'login-page' }, h('div', { className: 'card login-card' }, errorBox(`The console could not reach the server: ${err.message}`), retry)));
    return;
  }
  if (session) start(session);
  else showLogin();
}

boot();
