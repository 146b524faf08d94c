#!/usr/bin/env node
// End-to-end browser tests for copilot-server, driven by playwright-core and a
// system Chromium (never `npx playwright install`).
//
//   node tests/browser/e2e.mjs --server http://127.0.0.1:PORT --out <dir> [--only <scenario>] [--expect-text <text>]
//                              [--admin-token <token>] [--other-product <id>:<api key>]
//
// Scenarios:
//   webchat  rasa-webchat 1.0.1, unchanged, served from this script's own
//            static server (a different origin than the copilot server, so this
//            also proves CORS), talks Socket.IO to the server and gets an answer
//            built from a PostHog webhook delivered first.
//   demo     the server's own demo app at `${server}/`: real posthog-js capture
//            of a click on "Save changes" reaches the server, then the copilot
//            widget answers "what did I just do?" from it. Console errors fail it.
//   proactive the demo app again, widget left closed: three single edits (Edit,
//            change the priority, "Save changes" on rows 1-3) make the server push
//            a bulk-edit offer over the socket (metadata.forceOpen), so the panel
//            opens by itself; its "Show me bulk edit" chip gets an answer naming
//            "Apply to selected" whose metadata.domHighlight outlines the toolbar's
//            #bulk-edit-button, uncovered, with a tooltip beside it; clicking the
//            button (after ticking a row) removes both. Console errors fail it.
//   citations the demo app against a server without an LLM: "how do I archive a
//            project?" is answered from knowledge/demo/ and cites its page as a
//            link that opens in a new tab (target=_blank, rel=noopener).
//   stream   (needs a server whose LLM streams `--expect-text` in several chunks)
//            the demo's widget asks a question no intent covers: the thinking
//            indicator shows, one draft bubble grows through at least two partial
//            texts, and ends as exactly one bot bubble with the whole text; asked
//            again with the panel closed, the badge counts one unread per bubble.
//   webchat-stream (same server) rasa-webchat with customData.stream = true gets
//            bot_stream events it does not know, and renders the answer once,
//            whole: no partial or duplicate messages.
//
// The team console at /admin (docs/console-api.md); each needs --admin-token (the
// server's [admin] token) and --only:
//   console-login      the login form; a wrong token is refused; the admin sees
//            every product (picker) and another product's conversations; POST
//            without X-CSRF-Token is 403; log out; a product login (demo's API
//            key, --other-product names the other one) sees no picker and none
//            of the other product's turns, and asking for it answers 404.
//   console-live       the Live page is open while PostHog webhook events for a
//            new session arrive: its card and timeline grow without a reload.
//   console-transcript the demo's widget answers "hello" and an archive question;
//            its thumbs up is sent; the console finds the turns, exports them as
//            JSONL and opens the transcript: intent, responder, sources, thumbs.
//   console-inbox      "ahoy there" falls back; labelled "greet" in the inbox, the
//            classifier retrains and POST /model/parse answers greet. Run it on a
//            server whose intents dir is a copy: labelling writes an overrides file.
//   console-numbers    a few chat turns, and a widget answer given thumbs up then
//            down (the second replaces the first); then the Numbers page: six
//            Chart.js charts with today's counts in them, and the headline rates.
//
// Env: COPILOT_CHROMIUM (default /usr/bin/chromium).
// Prints one `PASS <scenario>` / `FAIL <scenario>: <reason>` line per scenario and
// exits 0 only if every selected scenario passed. The whole run is capped at 90 s.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const WEBCHAT_LIB = path.join(ROOT, 'node_modules', 'rasa-webchat', 'lib');
const FIXTURE = path.join(ROOT, 'tests', 'fixtures', 'posthog-webhook-autocapture.json');
const WEBHOOK_SECRET = 'demo-secret-change-me';
// Scenarios for a server without an LLM; the default set.
const PLAIN_SCENARIOS = ['demo', 'webchat', 'proactive', 'citations'];
// Scenarios for a server whose fake LLM streams `--expect-text`; --only picks one.
const STREAM_SCENARIOS = ['stream', 'webchat-stream'];
// Scenarios for a server with an admin token (`--admin-token`); --only picks one.
const CONSOLE_SCENARIOS = ['console-login', 'console-live', 'console-transcript', 'console-inbox', 'console-numbers'];
const SCENARIOS = [...PLAIN_SCENARIOS, ...STREAM_SCENARIOS, ...CONSOLE_SCENARIOS];
const OVERALL_MS = 90_000;
const STARTED = Date.now();

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const args = { server: null, out: null, only: null, expectText: null, adminToken: null, otherProduct: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) usage(`missing value for ${a}`);
      return v;
    };
    if (a === '--server') args.server = value();
    else if (a === '--out') args.out = value();
    else if (a === '--only') args.only = value();
    else if (a === '--expect-text') args.expectText = value();
    else if (a === '--admin-token') args.adminToken = value();
    else if (a === '--other-product') {
      const v = value();
      const at = v.indexOf(':');
      if (at <= 0 || at === v.length - 1) usage(`--other-product wants <id>:<api key>, got ${v}`);
      args.otherProduct = { id: v.slice(0, at), apiKey: v.slice(at + 1) };
    }
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!args.server) usage('--server is required');
  if (!args.out) usage('--out is required');
  if (args.only && !SCENARIOS.includes(args.only)) usage(`--only must be one of ${SCENARIOS.join(', ')}, got ${args.only}`);
  if (STREAM_SCENARIOS.includes(args.only) && !args.expectText) usage(`--only ${args.only} needs --expect-text (the streamed answer)`);
  if (CONSOLE_SCENARIOS.includes(args.only) && !args.adminToken) usage(`--only ${args.only} needs --admin-token (the server's [admin] token)`);
  if (args.only === 'console-login' && !args.otherProduct) usage('--only console-login needs --other-product <id>:<api key>');
  args.server = args.server.replace(/\/+$/, '');
  return args;
}

function usage(problem) {
  if (problem) console.error(`e2e.mjs: ${problem}`);
  console.error(
    `usage: node tests/browser/e2e.mjs --server http://127.0.0.1:PORT --out <dir> [--only ${SCENARIOS.join('|')}] [--expect-text <text>] ` +
      '[--admin-token <token>] [--other-product <id>:<api key>]'
  );
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));
// A desktop Chrome user agent without "HeadlessChrome" (see the launch flags).
const USER_AGENT =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';
const CHROMIUM = process.env.COPILOT_CHROMIUM || '/usr/bin/chromium';

// ---------------------------------------------------------------- helpers

const elapsed = () => `${((Date.now() - STARTED) / 1000).toFixed(1)}s`;
const log = (scenario, msg) => console.log(`[${elapsed()}] [${scenario}] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class StepError extends Error {}
const fail = (msg) => {
  throw new StepError(msg);
};

/** Runs `fn`, turning a timeout or any error into a StepError naming the step. */
async function step(scenario, what, fn) {
  log(scenario, what);
  try {
    return await fn();
  } catch (e) {
    if (e instanceof StepError) throw e;
    const first = String(e && e.message ? e.message : e).split('\n')[0];
    throw new StepError(`${what}: ${first}`);
  }
}

/** Polls `probe` (async, returns a truthy value when done) every `interval` ms. */
async function pollUntil(what, probe, { timeout, interval = 250 }) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await probe();
      if (v && v.done) return v.value;
      last = v && v.detail;
    } catch (e) {
      last = String(e && e.message ? e.message : e);
    }
    if (Date.now() >= deadline) {
      fail(`timed out after ${timeout} ms waiting for ${what}${last ? ` (last seen: ${last})` : ''}`);
    }
    await sleep(interval);
  }
}

async function fetchWithTimeout(url, init = {}, timeout = 5_000) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeout);
  try {
    return await fetch(url, { ...init, signal: ctl.signal });
  } finally {
    clearTimeout(timer);
  }
}

// The demo product's public API key (config/default.toml): /context needs it.
const DEMO_API_KEY = 'demo-api-key-change-me';

async function getJson(url) {
  const res = await fetchWithTimeout(url, { headers: { Authorization: `Bearer ${DEMO_API_KEY}` } });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url} -> ${res.status}: ${text.slice(0, 200)}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`GET ${url} returned non-JSON: ${text.slice(0, 200)}`);
  }
}

const isLocalHost = (host) => ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host);

/** Aborts every request that is not to a loopback host (no CDN, no internet), recording it. */
async function blockExternal(context, blocked) {
  await context.route('**/*', (route) => {
    const url = route.request().url();
    let u;
    try {
      u = new URL(url);
    } catch {
      return route.continue();
    }
    if (u.protocol === 'data:' || u.protocol === 'blob:' || isLocalHost(u.hostname)) return route.continue();
    blocked.push(url);
    return route.abort('blockedbyclient');
  });
}

// ---------------------------------------------------------------- static server

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** Serves tests/browser/ at / and node_modules/rasa-webchat/lib/ at /rasa-webchat/ on 127.0.0.1:0. */
function startStaticServer() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let pathname = decodeURIComponent(url.pathname);
    let base = HERE;
    if (pathname.startsWith('/rasa-webchat/')) {
      base = WEBCHAT_LIB;
      pathname = pathname.slice('/rasa-webchat'.length);
    }
    if (pathname === '/') pathname = '/webchat.html';
    const file = path.resolve(base, '.' + pathname);
    if (file !== base && !file.startsWith(base + path.sep)) {
      res.writeHead(403).end('forbidden');
      return;
    }
    fs.readFile(file, (err, body) => {
      if (err) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(body);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// ---------------------------------------------------------------- scenario (a): rasa-webchat

// Selectors read from rasa-webchat 1.0.1's bundle (lib/index.js).
const RW = {
  launcher: 'button.rw-launcher',
  conversation: '.rw-conversation-container',
  input: 'textarea.rw-new-message',
  botText: '.rw-group-message.rw-from-response .rw-response .rw-message-text',
  clientText: '.rw-group-message.rw-from-client .rw-client .rw-message-text',
};

async function scenarioWebchat(browser, staticOrigin) {
  const S = 'webchat';
  const screenshot = path.join(args.out, 'rasa-webchat.png');
  const consoleLines = [];
  const blocked = [];
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await blockExternal(context, blocked);
  const page = await context.newPage();
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  // Socket.IO long-polling responses from the copilot server, to show CORS was exercised.
  const polls = [];
  page.on('response', (r) => {
    if (r.url().startsWith(`${args.server}/socket.io/`) && r.url().includes('transport=polling')) {
      polls.push({ status: r.status(), acao: r.headers()['access-control-allow-origin'] || null });
    }
  });
  try {
    await step(S, 'POST the autocapture fixture to /webhook/demo', async () => {
      const res = await fetchWithTimeout(`${args.server}/webhook/demo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'X-PostHog-Secret': WEBHOOK_SECRET },
        body: fs.readFileSync(FIXTURE),
      });
      if (!res.ok) fail(`webhook delivery returned ${res.status}: ${(await res.text()).slice(0, 200)}`);
    });

    const pageUrl = `${staticOrigin}/webchat.html?server=${encodeURIComponent(args.server)}&user=user_42`;
    await step(S, `open ${pageUrl} (cross-origin to ${args.server})`, async () => {
      const res = await page.goto(pageUrl, { waitUntil: 'domcontentloaded', timeout: 10_000 });
      if (!res || !res.ok()) fail(`webchat.html returned ${res && res.status()}`);
    });

    // With hideWhenNotConnected (the default) the launcher only renders after
    // `session_confirm`, so a visible launcher means "connected".
    await step(S, 'wait for the launcher (rendered only once session_confirm arrived)', async () => {
      try {
        await page.locator(RW.launcher).waitFor({ state: 'visible', timeout: 15_000 });
      } catch (e) {
        const diag = await page.evaluate(() => JSON.stringify(window.__rw || null)).catch(() => '?');
        fail(`launcher never appeared: the widget did not connect (socket events: ${diag})`);
      }
    });

    await step(S, 'check the cross-origin Socket.IO polling carried CORS headers', async () => {
      const ok = polls.filter((p) => p.status === 200 && (p.acao === staticOrigin || p.acao === '*'));
      if (polls.length && !ok.length) fail(`polling responses lacked CORS for ${staticOrigin}: ${JSON.stringify(polls)}`);
      log(S, `${polls.length} polling response(s), Access-Control-Allow-Origin: ${JSON.stringify([...new Set(polls.map((p) => p.acao))])}`);
    });

    await step(S, 'open the chat and wait for an enabled input', async () => {
      await page.locator(RW.launcher).click({ timeout: 5_000 });
      await page.locator(RW.conversation).waitFor({ state: 'visible', timeout: 5_000 });
      await page.waitForFunction(
        (sel) => {
          const el = document.querySelector(sel);
          return el && !el.disabled;
        },
        RW.input,
        { timeout: 10_000, polling: 100 }
      );
    });

    const send = async (text) => {
      const before = await page.locator(RW.botText).count();
      const input = page.locator(RW.input);
      await input.fill(text, { timeout: 5_000 });
      await input.press('Enter', { timeout: 5_000 });
      await page.waitForFunction(
        ({ sel, text }) => [...document.querySelectorAll(sel)].some((e) => e.textContent.trim() === text),
        { sel: RW.clientText, text },
        { timeout: 5_000, polling: 100 }
      );
      return before;
    };

    await step(S, 'send "hello" and wait for any bot message', async () => {
      const before = await send('hello');
      try {
        await page.waitForFunction(
          ({ sel, before }) => document.querySelectorAll(sel).length > before,
          { sel: RW.botText, before },
          { timeout: 15_000, polling: 100 }
        );
      } catch {
        const diag = await page.evaluate(() => JSON.stringify(window.__rw || null)).catch(() => '?');
        fail(`no bot message after "hello" within 15 s (socket events: ${diag})`);
      }
      const texts = await page.locator(RW.botText).allTextContents();
      log(S, `bot said: ${JSON.stringify(texts.slice(before))}`);
    });

    await step(S, 'send "what did I just do?" and wait for a bot message containing "Save changes"', async () => {
      const before = await send('what did I just do?');
      try {
        await page.waitForFunction(
          ({ sel, before }) =>
            [...document.querySelectorAll(sel)].slice(before).some((e) => e.textContent.includes('Save changes')),
          { sel: RW.botText, before },
          { timeout: 20_000, polling: 100 }
        );
      } catch {
        const texts = await page.locator(RW.botText).allTextContents();
        fail(`no bot message containing "Save changes" within 20 s; bot messages: ${JSON.stringify(texts)}`);
      }
      const texts = await page.locator(RW.botText).allTextContents();
      log(S, `bot said: ${JSON.stringify(texts.slice(before))}`);
    });

    await step(S, `screenshot ${screenshot}`, () => page.screenshot({ path: screenshot, timeout: 10_000 }));
    return { ok: true, detail: 'rasa-webchat 1.0.1 connected cross-origin and answered from the PostHog event' };
  } catch (e) {
    await page.screenshot({ path: path.join(args.out, 'rasa-webchat-failure.png'), timeout: 5_000 }).catch(() => {});
    if (consoleLines.length) console.log(`[${S}] browser console:\n  ${consoleLines.join('\n  ')}`);
    if (blocked.length) console.log(`[${S}] blocked external requests:\n  ${blocked.join('\n  ')}`);
    throw e;
  } finally {
    await context.close().catch(() => {});
  }
}

// ---------------------------------------------------------------- scenario (b): the demo app

const DEMO = {
  editButton: 'tr button',
  save: 'form#edit-project button, button[form="edit-project"]',
  form: 'form#edit-project',
  priority: 'form#edit-project select[name=priority]',
  launcher: '#copilot-launcher',
  panel: '#copilot-panel',
  input: '#copilot-input',
  send: '#copilot-send',
  botMsg: '.copilot-msg.copilot-bot',
  quickReply: '.copilot-quick-reply',
};
const DEMO_USER = 'demo_user';

function isIgnorableConsole(msg) {
  // Favicon 404s are not the app's business.
  const text = msg.text();
  const url = (msg.location() && msg.location().url) || '';
  return /favicon/i.test(url) || (/favicon/i.test(text) && /404/.test(text));
}

async function scenarioDemo(browser) {
  const S = 'demo';
  const shot = path.join(args.out, 'demo-widget.png');
  const phoneShot = path.join(args.out, 'demo-widget-phone.png');
  const { context, page, checkErrors, report } = await newDemoPage(browser, S);

  try {
    await step(S, `open ${args.server}/`, async () => {
      const res = await page.goto(`${args.server}/`, { waitUntil: 'load', timeout: 10_000 });
      if (!res) fail('no response for /');
      if (!res.ok()) fail(`GET ${args.server}/ returned ${res.status()}: the demo app is not served`);
      const type = res.headers()['content-type'] || '';
      if (!type.includes('text/html')) fail(`GET ${args.server}/ returned content-type ${JSON.stringify(type)}, not HTML`);
    });

    const edit = page.locator(DEMO.editButton, { hasText: /\bEdit\b/ }).first();
    await step(S, "click the first table row's Edit button", async () => {
      try {
        await edit.waitFor({ state: 'visible', timeout: 10_000 });
      } catch {
        fail('no visible table row button with text "Edit" (DOM contract: each <tr> has an Edit button)');
      }
      await edit.click({ timeout: 5_000 });
    });

    await step(S, 'change the priority in form#edit-project', async () => {
      try {
        await page.locator(DEMO.form).waitFor({ state: 'visible', timeout: 5_000 });
      } catch {
        fail('form#edit-project did not become visible after clicking Edit');
      }
      const select = page.locator(DEMO.priority);
      if ((await select.count()) === 0) fail('form#edit-project has no select[name=priority]');
      const { current, options } = await select.evaluate((el) => ({
        current: el.value,
        options: [...el.options].filter((o) => !o.disabled).map((o) => o.value),
      }));
      const next = options.find((v) => v !== current);
      if (next === undefined) fail(`select[name=priority] offers no other value than ${JSON.stringify(current)}`);
      await select.selectOption(next, { timeout: 5_000 });
      log(S, `priority ${JSON.stringify(current)} -> ${JSON.stringify(next)}`);
    });

    await step(S, 'click "Save changes"', async () => {
      const save = page.locator(DEMO.save, { hasText: 'Save changes' }).first();
      if ((await save.count()) === 0) fail('form#edit-project has no button with text "Save changes"');
      await save.click({ timeout: 5_000 });
    });

    await step(S, `poll ${args.server}/context/${DEMO_USER} until posthog-js capture of "Save changes" arrives`, () =>
      pollUntil(
        `/context/${DEMO_USER} to mention "Save changes" (posthog-js -> server capture)`,
        async () => {
          const body = await getJson(`${args.server}/context/${encodeURIComponent(DEMO_USER)}`);
          const ctx = typeof body.context === 'string' ? body.context : JSON.stringify(body.context);
          if (ctx && ctx.includes('Save changes')) return { done: true, value: body };
          return { done: false, detail: `has_activity=${body.has_activity}, context=${JSON.stringify(ctx).slice(0, 160)}` };
        },
        { timeout: 20_000, interval: 250 }
      )
    );

    await step(S, `check ${args.server}/healthz sessions_tracked >= 1`, async () => {
      const health = await getJson(`${args.server}/healthz`);
      if (!(typeof health.sessions_tracked === 'number' && health.sessions_tracked >= 1)) {
        fail(`healthz sessions_tracked is ${JSON.stringify(health.sessions_tracked)}, want >= 1 (${JSON.stringify(health)})`);
      }
      log(S, `healthz: ${JSON.stringify(health)}`);
    });

    await step(S, 'open the copilot widget', async () => {
      try {
        await page.locator(DEMO.launcher).waitFor({ state: 'visible', timeout: 10_000 });
      } catch {
        fail('#copilot-launcher is not visible');
      }
      await page.locator(DEMO.launcher).click({ timeout: 5_000 });
      try {
        await page.locator(DEMO.panel).waitFor({ state: 'visible', timeout: 5_000 });
      } catch {
        fail('#copilot-panel did not become visible after clicking #copilot-launcher');
      }
      await page.waitForFunction(
        (sel) => {
          const el = document.querySelector(sel);
          return el && !el.disabled && el.offsetParent !== null;
        },
        DEMO.input,
        { timeout: 10_000, polling: 100 }
      );
      if ((await page.locator(DEMO.send).count()) === 0) fail('#copilot-send is missing');
    });

    await step(S, 'type "what did I just do?", press Enter, wait for a bot answer containing "Save changes"', async () => {
      const before = await page.locator(DEMO.botMsg).count();
      const input = page.locator(DEMO.input);
      await input.fill('what did I just do?', { timeout: 5_000 });
      await input.press('Enter', { timeout: 5_000 });
      try {
        await page.waitForFunction(
          ({ sel, before }) =>
            [...document.querySelectorAll(sel)].slice(before).some((e) => e.textContent.includes('Save changes')),
          { sel: DEMO.botMsg, before },
          { timeout: 20_000, polling: 100 }
        );
      } catch {
        const texts = await page.locator(DEMO.botMsg).allTextContents();
        fail(`no .copilot-msg.copilot-bot containing "Save changes" within 20 s; bot messages: ${JSON.stringify(texts)}`);
      }
      const texts = await page.locator(DEMO.botMsg).allTextContents();
      const replies = await page.locator(DEMO.quickReply).allTextContents();
      log(S, `bot said: ${JSON.stringify(texts.slice(before))}; quick replies: ${JSON.stringify(replies)}`);
    });

    await step(S, `screenshot ${shot}`, () => page.screenshot({ path: shot, timeout: 10_000 }));

    await step(S, `phone-sized (390x844) screenshot ${phoneShot}`, async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      // Let layout settle: two animation frames, no fixed sleep.
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      const box = await page.locator(DEMO.panel).boundingBox();
      if (!box) log(S, 'WARN: #copilot-panel is not visible at 390x844');
      else if (box.x < -1 || box.x + box.width > 391) {
        log(S, `WARN: #copilot-panel overflows the 390 px viewport (x=${box.x}, width=${box.width})`);
      }
      await page.screenshot({ path: phoneShot, timeout: 10_000 });
    });

    checkErrors();
    return { ok: true, detail: 'posthog-js capture reached the server and the widget answered from it' };
  } catch (e) {
    await report(e);
    throw e;
  } finally {
    await context.close().catch(() => {});
  }
}

// ---------------------------------------------------------------- scenario (c): a proactive offer

const OFFER_TEXT = 'Bulk edit can change many at once';
const OFFER_CHIPS = ['Show me bulk edit', 'No thanks'];
const ANSWER_TEXT = 'Apply to selected';
const PROACTIVE_EDITS = 3;
// What the "Show me bulk edit" answer points at (its metadata.domHighlight).
const HIGHLIGHT = {
  target: '#bulk-edit-button',
  cls: 'copilot-dom-highlight',
  tooltip: '#copilot-root .copilot-tooltip',
};

/** The highlight's state as the page shows it, for assertions and failure messages. */
function readHighlight(page) {
  return page.evaluate(({ target, cls, tooltip }) => {
    const rect = (el) => {
      const r = el.getBoundingClientRect();
      return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height };
    };
    // What a user would see at the centre of `el`: itself, or what covers it.
    const uncovered = (el) => {
      const r = el.getBoundingClientRect();
      const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      return Boolean(hit && (hit === el || el.contains(hit)));
    };
    const button = document.querySelector(target);
    const tip = document.querySelector(tooltip);
    const out = { button: null, tooltip: null, viewport: { width: innerWidth, height: innerHeight } };
    if (button) {
      const style = getComputedStyle(button);
      out.button = {
        highlighted: button.classList.contains(cls),
        hidden: button.hidden,
        disabled: button.disabled,
        outline: `${style.outlineStyle} ${style.outlineWidth}`,
        outlineWidth: parseFloat(style.outlineWidth) || 0,
        rect: rect(button),
        uncovered: uncovered(button),
      };
    }
    if (tip) {
      const style = getComputedStyle(tip);
      out.tooltip = {
        text: tip.textContent.trim(),
        shown: style.display !== 'none' && style.visibility !== 'hidden' && Number(style.opacity) > 0,
        rect: rect(tip),
        uncovered: uncovered(tip),
      };
    }
    return out;
  }, HIGHLIGHT);
}

/** Gap in px between two rects (0 when they touch or overlap). */
function rectGap(a, b) {
  const dx = Math.max(0, b.left - a.right, a.left - b.right);
  const dy = Math.max(0, b.top - a.bottom, a.top - b.bottom);
  return Math.hypot(dx, dy);
}

/**
 * How many clicks on "Save changes" a user's context text shows: one per raw
 * line (`3. [7] click: Clicked 'Save changes' button on / — …`) plus the counts in
 * the offline rolling summary (`Clicked 'Edit' 3 times, 'Save changes' once.`),
 * which replaces the raw lines it covers once enough of them piled up.
 */
function countSaveClicks(ctx) {
  let n = 0;
  for (const line of ctx.split('\n')) if (/^(?:\d+\.\s+)?\[\d+\] click: Clicked 'Save changes'/.test(line.trim())) n++;
  for (const m of ctx.matchAll(/'Save changes' (?:once|(\d+) times)/g)) n += m[1] ? Number(m[1]) : 1;
  return n;
}

async function demoUserContext() {
  const body = await getJson(`${args.server}/context/${encodeURIComponent(DEMO_USER)}`);
  const ctx = typeof body.context === 'string' ? body.context : JSON.stringify(body.context ?? '');
  return { body, ctx };
}

async function scenarioProactive(browser) {
  const S = 'proactive';
  const offerShot = path.join(args.out, 'proactive-offer.png');
  const answerShot = path.join(args.out, 'proactive-answer.png');
  const highlightShot = path.join(args.out, 'proactive-highlight.png');
  const { context, page, checkErrors, report } = await newDemoPage(browser, S);
  // The last bot_uttered frames off the socket, to tell a server that sent no
  // domHighlight from a widget that ignored it.
  const botFrames = [];
  page.on('websocket', (ws) =>
    ws.on('framereceived', (f) => {
      const data = typeof f.payload === 'string' ? f.payload : '';
      if (!data.includes('bot_uttered')) return;
      botFrames.push(data.slice(0, 600));
      if (botFrames.length > 5) botFrames.shift();
    })
  );
  const panel = page.locator(DEMO.panel);
  const botTexts = () => page.locator(DEMO.botMsg).allTextContents();

  try {
    await step(S, `open ${args.server}/ (the chat widget stays closed)`, async () => {
      const res = await page.goto(`${args.server}/`, { waitUntil: 'load', timeout: 10_000 });
      if (!res) fail('no response for /');
      if (!res.ok()) fail(`GET ${args.server}/ returned ${res.status()}: the demo app is not served`);
      const type = res.headers()['content-type'] || '';
      if (!type.includes('text/html')) fail(`GET ${args.server}/ returned content-type ${JSON.stringify(type)}, not HTML`);
    });

    // The offer can only reach a widget whose socket is up; waiting here keeps
    // the test from racing the connection.
    await step(S, 'wait for the widget socket to connect (panel still closed)', async () => {
      await waitForWidgetSocket(page);
      if (await panel.isVisible()) fail('#copilot-panel is open before anything happened');
    });

    // When an earlier scenario (demo) ran against the same server, demo_user
    // already has saved edits; count from there.
    const baseline = await step(S, `count "Save changes" clicks already in /context/${DEMO_USER}`, async () => {
      const n = countSaveClicks((await demoUserContext()).ctx);
      log(S, `${n} earlier "Save changes" click(s) in the context`);
      return n;
    });

    const rows = page.locator('tbody tr').filter({ has: page.locator('button', { hasText: /\bEdit\b/ }) });
    for (let row = 1; row <= PROACTIVE_EDITS; row++) {
      if (await panel.isVisible()) {
        const texts = await botTexts();
        // Only excusable when earlier edits by demo_user (another scenario) may have counted.
        if (!baseline) fail(`#copilot-panel opened after only ${row - 1} edit(s), before row ${row}; bot messages: ${JSON.stringify(texts)}`);
        log(S, `the panel opened after ${row - 1} edit(s) here (+${baseline} earlier); not editing further rows`);
        break;
      }
      await step(S, `row ${row}: click its Edit button`, async () => {
        const edit = rows.nth(row - 1).locator('button', { hasText: /\bEdit\b/ }).first();
        try {
          await edit.waitFor({ state: 'visible', timeout: 10_000 });
        } catch {
          fail(`table row ${row} has no visible "Edit" button (DOM contract: each <tr> has an Edit button)`);
        }
        await edit.click({ timeout: 5_000 });
      });

      await step(S, `row ${row}: change the priority in form#edit-project`, async () => {
        try {
          await page.locator(DEMO.form).waitFor({ state: 'visible', timeout: 5_000 });
        } catch {
          fail(`form#edit-project did not become visible after clicking row ${row}'s Edit`);
        }
        const select = page.locator(DEMO.priority);
        if ((await select.count()) === 0) fail('form#edit-project has no select[name=priority]');
        const { current, options } = await select.evaluate((el) => ({
          current: el.value,
          options: [...el.options].filter((o) => !o.disabled).map((o) => o.value),
        }));
        const next = options.find((v) => v !== current);
        if (next === undefined) fail(`select[name=priority] offers no other value than ${JSON.stringify(current)}`);
        await select.selectOption(next, { timeout: 5_000 });
        log(S, `row ${row}: priority ${JSON.stringify(current)} -> ${JSON.stringify(next)}`);
      });

      await step(S, `row ${row}: click "Save changes" and wait for the dialog to close`, async () => {
        const save = page.locator(DEMO.save, { hasText: 'Save changes' }).first();
        if ((await save.count()) === 0) fail('form#edit-project has no button with text "Save changes"');
        await save.click({ timeout: 5_000 });
        try {
          await page.locator(DEMO.form).waitFor({ state: 'hidden', timeout: 5_000 });
        } catch {
          fail(`the edit dialog was still open 5 s after "Save changes" on row ${row}`);
        }
      });

      const want = baseline + row;
      await step(S, `row ${row}: poll /context/${DEMO_USER} until it shows ${want} "Save changes" click(s)`, () =>
        pollUntil(
          `/context/${DEMO_USER} to show row ${row}'s "Save changes" (${want} in all; posthog-js -> server capture)`,
          async () => {
            const { body, ctx } = await demoUserContext();
            const n = countSaveClicks(ctx);
            if (n >= want) return { done: true, value: n };
            return { done: false, detail: `${n} click(s), has_activity=${body.has_activity}, context=${JSON.stringify(ctx).slice(-240)}` };
          },
          { timeout: 20_000, interval: 250 }
        )
      );
    }

    await step(S, `wait up to 20 s for the pushed offer: #copilot-panel opens by itself with "${OFFER_TEXT}"`, async () => {
      try {
        await panel.waitFor({ state: 'visible', timeout: 20_000 });
      } catch {
        const texts = await botTexts();
        fail(`#copilot-panel did not open by itself within 20 s of the third edit (no forceOpen offer arrived); bot messages: ${JSON.stringify(texts)}`);
      }
      try {
        await page.waitForFunction(
          ({ sel, text }) => [...document.querySelectorAll(sel)].some((e) => e.textContent.includes(text)),
          { sel: `${DEMO.panel} ${DEMO.botMsg}`, text: OFFER_TEXT },
          { timeout: 5_000, polling: 100 }
        );
      } catch {
        fail(`the open panel has no ${DEMO.botMsg} containing "${OFFER_TEXT}"; bot messages: ${JSON.stringify(await botTexts())}`);
      }
      const chips = (await page.locator(`${DEMO.panel} ${DEMO.quickReply}`).allTextContents()).map((t) => t.trim());
      const missing = OFFER_CHIPS.filter((c) => !chips.includes(c));
      if (missing.length) fail(`the offer lacks quick-reply chip(s) ${JSON.stringify(missing)}; chips: ${JSON.stringify(chips)}`);
      log(S, `offer: ${JSON.stringify((await botTexts()).filter((t) => t.includes(OFFER_TEXT)))}; chips: ${JSON.stringify(chips)}`);
    });

    await step(S, `screenshot ${offerShot}`, () => page.screenshot({ path: offerShot, timeout: 10_000 }));

    await step(S, `click the "${OFFER_CHIPS[0]}" chip, wait for a bot message containing "${ANSWER_TEXT}"`, async () => {
      const before = await page.locator(DEMO.botMsg).count();
      await page.locator(`${DEMO.panel} ${DEMO.quickReply}`, { hasText: OFFER_CHIPS[0] }).first().click({ timeout: 5_000 });
      try {
        await page.waitForFunction(
          ({ sel, before, text }) => [...document.querySelectorAll(sel)].slice(before).some((e) => e.textContent.includes(text)),
          { sel: DEMO.botMsg, before, text: ANSWER_TEXT },
          { timeout: 20_000, polling: 100 }
        );
      } catch {
        fail(`no new ${DEMO.botMsg} containing "${ANSWER_TEXT}" within 20 s; bot messages: ${JSON.stringify(await botTexts())}`);
      }
      log(S, `bot said: ${JSON.stringify((await botTexts()).slice(before))}`);
    });

    await step(S, `screenshot ${answerShot}`, () => page.screenshot({ path: answerShot, timeout: 10_000 }));

    await step(S, `the answer highlights ${HIGHLIGHT.target}: outlined, disabled but visible, uncovered, with a tooltip beside it`, async () => {
      try {
        await page.waitForFunction(
          ({ target, cls }) => {
            const el = document.querySelector(target);
            return Boolean(el && el.classList.contains(cls));
          },
          HIGHLIGHT,
          { timeout: 5_000, polling: 100 }
        );
      } catch {
        fail(
          `${HIGHLIGHT.target} never got .${HIGHLIGHT.cls} (metadata.domHighlight not sent, or not acted on); ` +
            `state: ${JSON.stringify(await readHighlight(page))}; last bot_uttered frames: ${JSON.stringify(botFrames)}`
        );
      }
      const h = await readHighlight(page);
      const b = h.button;
      if (b.hidden || b.rect.width === 0) fail(`${HIGHLIGHT.target} is highlighted but not shown: ${JSON.stringify(b)}`);
      if (!b.disabled) fail(`${HIGHLIGHT.target} should be disabled while no row is ticked: ${JSON.stringify(b)}`);
      if (b.outlineWidth < 2 || b.outline.startsWith('none')) fail(`${HIGHLIGHT.target} has no visible outline: ${JSON.stringify(b)}`);
      if (b.rect.top < 0 || b.rect.bottom > h.viewport.height) fail(`${HIGHLIGHT.target} is not scrolled into view: ${JSON.stringify(h)}`);
      if (!b.uncovered) fail(`${HIGHLIGHT.target} is covered (by the chat panel?): ${JSON.stringify(h)}`);
      const t = h.tooltip;
      if (!t) fail(`no ${HIGHLIGHT.tooltip} next to the highlighted button: ${JSON.stringify(h)}`);
      if (!t.shown || t.rect.width === 0 || !t.text) fail(`the tooltip is not shown or empty: ${JSON.stringify(t)}`);
      if (!t.uncovered) fail(`the tooltip is covered: ${JSON.stringify(h)}`);
      const gap = rectGap(t.rect, b.rect);
      if (gap > 40) fail(`the tooltip is ${Math.round(gap)} px from the button, not beside it: ${JSON.stringify(h)}`);
      log(S, `highlighted (${b.outline}); tooltip ${JSON.stringify(t.text)} ${Math.round(gap)} px away; panel open: ${await panel.isVisible()}`);
    });

    // Animations stopped: the tooltip's fade-in and the outline's pulse would
    // otherwise be caught half-way.
    await step(S, `screenshot ${highlightShot}`, () =>
      page.screenshot({ path: highlightShot, timeout: 10_000, animations: 'disabled' })
    );

    await step(S, `tick a row and click the highlighted ${HIGHLIGHT.target}: the highlight and its tooltip go`, async () => {
      await page.locator('tbody .row-check').first().check({ timeout: 5_000 });
      try {
        await page.waitForFunction((sel) => !document.querySelector(sel).disabled, HIGHLIGHT.target, { timeout: 5_000, polling: 100 });
      } catch {
        fail(`${HIGHLIGHT.target} stayed disabled after ticking a row`);
      }
      await page.locator(HIGHLIGHT.target).click({ timeout: 5_000 });
      try {
        await page.waitForFunction(
          ({ target, cls, tooltip }) => !document.querySelector(target).classList.contains(cls) && !document.querySelector(tooltip),
          HIGHLIGHT,
          { timeout: 5_000, polling: 100 }
        );
      } catch {
        fail(`the highlight stayed after clicking ${HIGHLIGHT.target}: ${JSON.stringify(await readHighlight(page))}`);
      }
      await page.keyboard.press('Escape');
    });

    checkErrors();
    return {
      ok: true,
      detail: 'three single edits brought a forced-open bulk-edit offer; its chip was answered and "Bulk edit" highlighted',
    };
  } catch (e) {
    await report(e);
    throw e;
  } finally {
    await context.close().catch(() => {});
  }
}

// ---------------------------------------------------------------- shared: the demo page with our widget

/**
 * A fresh page in its own context, recording console errors and failed or
 * blocked requests. `expectedFailure(url)` names responses >= 400 the scenario
 * asks for on purpose (the browser logs each as a console error).
 */
async function newDemoPage(browser, S, { expectedFailure = () => false } = {}) {
  const errors = [];
  const consoleLines = [];
  const blocked = [];
  const failedRequests = [];
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, userAgent: USER_AGENT });
  await blockExternal(context, blocked);
  const page = await context.newPage();
  page.on('console', (m) => {
    consoleLines.push(`${m.type()}: ${m.text()}`);
    const url = (m.location() && m.location().url) || '';
    const expected = /^Failed to load resource/.test(m.text()) && expectedFailure(url);
    if (m.type() === 'error' && !isIgnorableConsole(m) && !expected) {
      const where = m.location() && m.location().url ? ` (${m.location().url})` : '';
      errors.push(`console.error: ${m.text()}${where}`);
    }
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    if (!/favicon/i.test(r.url())) failedRequests.push(`${r.method()} ${r.url()}: ${r.failure() && r.failure().errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !/favicon/i.test(r.url())) failedRequests.push(`${r.request().method()} ${r.url()} -> ${r.status()}`);
  });
  return {
    context,
    page,
    /** Fails the scenario when the browser logged errors. */
    checkErrors() {
      if (errors.length) fail(`browser console/page errors during the ${S} scenario:\n  ${errors.join('\n  ')}`);
    },
    /** After a failure: a screenshot and whatever the browser said. */
    async report(e) {
      await page.screenshot({ path: path.join(args.out, `${S}-failure.png`), timeout: 5_000 }).catch(() => {});
      if (errors.length && !(e.message || '').includes('browser console/page errors')) {
        console.log(`[${S}] browser errors so far:\n  ${errors.join('\n  ')}`);
      }
      if (failedRequests.length) console.log(`[${S}] failed requests:\n  ${failedRequests.join('\n  ')}`);
      if (blocked.length) console.log(`[${S}] blocked external (non-loopback) requests:\n  ${blocked.join('\n  ')}`);
      if (consoleLines.length) console.log(`[${S}] browser console:\n  ${consoleLines.join('\n  ')}`);
    },
  };
}

/** Waits until the demo's widget has its socket (and session) up. */
async function waitForWidgetSocket(page) {
  try {
    await page.waitForFunction(() => Boolean(window.__demo && window.__demo.widget && window.__demo.widget.connected), null, {
      timeout: 10_000,
      polling: 100,
    });
  } catch {
    fail('window.__demo.widget.connected never became true: the widget did not connect to the server');
  }
}

/** Opens the demo app, waits for the widget's socket, opens the panel. */
async function openDemoWidget(page, S) {
  await step(S, `open ${args.server}/`, async () => {
    const res = await page.goto(`${args.server}/`, { waitUntil: 'load', timeout: 10_000 });
    if (!res || !res.ok()) fail(`GET ${args.server}/ returned ${res && res.status()}`);
  });
  await step(S, 'wait for the widget socket, open the panel', async () => {
    await waitForWidgetSocket(page);
    await page.locator(DEMO.launcher).click({ timeout: 5_000 });
    await page.locator(DEMO.panel).waitFor({ state: 'visible', timeout: 5_000 });
    await page.waitForFunction((sel) => !document.querySelector(sel).disabled, DEMO.send, { timeout: 10_000, polling: 100 });
  });
}

/** Types `text` into the widget and sends it; returns how many bot bubbles there were before. */
async function askWidget(page, text) {
  const before = await page.locator(DEMO.botMsg).count();
  const input = page.locator(DEMO.input);
  await input.fill(text, { timeout: 5_000 });
  await input.press('Enter', { timeout: 5_000 });
  await page.waitForFunction(
    (text) => [...document.querySelectorAll('.copilot-msg.copilot-user')].some((e) => e.textContent === text),
    text,
    { timeout: 5_000, polling: 100 }
  );
  return before;
}

const squash = (text) => String(text).replace(/\s+/g, ' ').trim();

// ---------------------------------------------------------------- scenario (d): citations

const CITATION_QUESTION = 'how do I archive a project?';

async function scenarioCitations(browser) {
  const S = 'citations';
  const shot = path.join(args.out, 'citations.png');
  const demo = await newDemoPage(browser, S);
  const { page } = demo;
  try {
    await openDemoWidget(page, S);
    const before = await step(S, `ask "${CITATION_QUESTION}"`, () => askWidget(page, CITATION_QUESTION));

    const found = await step(S, 'wait for a bot answer that links the help page it came from', async () => {
      try {
        await page.waitForFunction(
          ({ sel, before }) => [...document.querySelectorAll(sel)].slice(before).some((b) => b.querySelector('a[href]')),
          { sel: DEMO.botMsg, before },
          { timeout: 20_000, polling: 100 }
        );
      } catch {
        fail(`no new ${DEMO.botMsg} with a link within 20 s; bot messages: ${JSON.stringify(await page.locator(DEMO.botMsg).allTextContents())}`);
      }
      return page.evaluate(
        ({ sel, before }) => {
          const bubbles = [...document.querySelectorAll(sel)].slice(before);
          const a = bubbles.map((b) => b.querySelector('a[href]')).find(Boolean);
          return {
            href: a.getAttribute('href'),
            target: a.getAttribute('target'),
            rel: a.getAttribute('rel') || '',
            text: a.textContent,
            bubble: a.closest('.copilot-msg').textContent,
            answer: bubbles.map((b) => b.textContent),
          };
        },
        { sel: DEMO.botMsg, before }
      );
    });

    await step(S, 'check the answer and its link', async () => {
      const all = squash(found.answer.join(' '));
      if (!/archive/i.test(all)) fail(`the answer is not about archiving: ${JSON.stringify(found.answer)}`);
      if (!/Sources?:/.test(found.bubble)) {
        fail(`the link is not in a "Source: [title](url)" line: ${JSON.stringify(found.bubble)}`);
      }
      if (!/^https?:\/\//.test(found.href)) fail(`the source link's href is not http(s): ${JSON.stringify(found.href)}`);
      if (!squash(found.text)) fail('the source link has no text (the page title)');
      if (found.target !== '_blank') fail(`the source link does not open a new tab: target=${JSON.stringify(found.target)}`);
      if (!found.rel.split(/\s+/).includes('noopener')) fail(`the source link lacks rel=noopener: rel=${JSON.stringify(found.rel)}`);
      log(S, `answer: ${JSON.stringify(found.answer)}; link ${JSON.stringify(found.text)} -> ${found.href} (rel ${found.rel})`);
    });

    await step(S, `screenshot ${shot}`, () => page.screenshot({ path: shot, timeout: 10_000 }));
    demo.checkErrors();
    return { ok: true, detail: `answered from the help pages, citing ${found.href}` };
  } catch (e) {
    await demo.report(e);
    throw e;
  } finally {
    await demo.context.close().catch(() => {});
  }
}

// ---------------------------------------------------------------- scenario (e): a streamed answer in our widget

// In intents/nlu.yml's nlu_fallback examples, so it goes to the LLM.
const STREAM_QUESTION = 'how do i change the priority of a single project?';
const THINKING_LABEL = 'Copilot is thinking';

/**
 * Installed in the page before asking: a MutationObserver that notes when the
 * thinking indicator is shown and every text a draft bubble shows, so no
 * partial text is missed between two polls.
 */
function installStreamRecorder(thinkingLabel) {
  const rec = { thinking: [], drafts: [] };
  window.__streamRec = rec;
  const t0 = performance.now();
  const root = document.getElementById('copilot-root');
  const check = () => {
    const at = Math.round(performance.now() - t0);
    const typing = root.querySelector('.copilot-typing');
    if (typing && !typing.hidden && typing.offsetParent !== null && typing.getAttribute('aria-label') === thinkingLabel) {
      if (rec.thinking.length === 0 || rec.thinking[rec.thinking.length - 1].gone) rec.thinking.push({ at });
    } else if (rec.thinking.length && !rec.thinking[rec.thinking.length - 1].gone) {
      rec.thinking[rec.thinking.length - 1].gone = at;
    }
    for (const d of root.querySelectorAll('#copilot-messages .copilot-draft')) {
      const last = rec.drafts[rec.drafts.length - 1];
      const id = d.getAttribute('data-message-id');
      if (!last || last.text !== d.textContent || last.id !== id) rec.drafts.push({ at, id, text: d.textContent });
    }
  };
  new MutationObserver(check).observe(root, { subtree: true, childList: true, attributes: true, characterData: true });
}

/** Waits until no draft is left and one new bubble holds the whole `expected` text. */
async function waitForFinalAnswer(page, before, expected, what) {
  try {
    await page.waitForFunction(
      ({ sel, before, expected }) =>
        !document.querySelector('#copilot-messages .copilot-draft') &&
        [...document.querySelectorAll(sel)].slice(before).some((b) => b.textContent.replace(/\s+/g, ' ').includes(expected)),
      { sel: DEMO.botMsg, before, expected },
      { timeout: 20_000, polling: 100 }
    );
  } catch {
    const texts = await page.locator(DEMO.botMsg).allTextContents();
    fail(`${what}: no final bot bubble with the whole answer ${JSON.stringify(expected)} within 20 s; bot bubbles: ${JSON.stringify(texts.slice(before))}`);
  }
}

/** The new bot bubbles since `before`: text, classes, message id. */
function newBubbles(page, before) {
  return page.evaluate(
    ({ sel, before }) =>
      [...document.querySelectorAll(sel)].slice(before).map((b) => ({
        text: b.textContent,
        draft: b.classList.contains('copilot-draft'),
        busy: b.hasAttribute('aria-busy'),
        id: b.getAttribute('data-message-id'),
      })),
    { sel: DEMO.botMsg, before }
  );
}

async function scenarioStream(browser) {
  const S = 'stream';
  const draftShot = path.join(args.out, 'stream-draft.png');
  const finalShot = path.join(args.out, 'stream-final.png');
  const expected = squash(args.expectText);
  // The answer's opening words: every bubble of this answer, draft or final, has them.
  const opening = expected.slice(0, Math.min(12, expected.length));
  const demo = await newDemoPage(browser, S);
  const { page } = demo;
  try {
    await openDemoWidget(page, S);
    await page.evaluate(installStreamRecorder, THINKING_LABEL);
    const before = await step(S, `ask "${STREAM_QUESTION}"`, () => askWidget(page, STREAM_QUESTION));

    await step(S, `wait for the draft bubble, screenshot ${draftShot}`, async () => {
      try {
        await page.locator('#copilot-messages .copilot-draft').first().waitFor({ state: 'visible', timeout: 15_000 });
      } catch {
        fail(`no .copilot-draft bubble within 15 s (no bot_stream "replying"?); bot bubbles: ${JSON.stringify(await newBubbles(page, before))}`);
      }
      await page.screenshot({ path: draftShot, timeout: 10_000 });
    });

    await step(S, 'wait for the final answer', () => waitForFinalAnswer(page, before, expected, 'first question'));
    await step(S, `screenshot ${finalShot}`, () => page.screenshot({ path: finalShot, timeout: 10_000 }));

    await step(S, 'check what the page showed: thinking, a growing draft, one final bubble', async () => {
      const rec = await page.evaluate(() => window.__streamRec);
      if (!rec.thinking.length) fail(`the thinking indicator ("${THINKING_LABEL}") was never visible; recorded: ${JSON.stringify(rec)}`);
      const drafts = rec.drafts;
      const texts = [...new Set(drafts.map((d) => d.text))];
      if (texts.length < 2) fail(`the draft showed fewer than two different texts: ${JSON.stringify(drafts)}`);
      for (let i = 1; i < drafts.length; i++) {
        const [a, b] = [drafts[i - 1], drafts[i]];
        if (b.id !== a.id) fail(`more than one draft bubble for one answer: ${JSON.stringify(drafts)}`);
        if (!(b.text.length > a.text.length && b.text.startsWith(a.text.trimEnd()))) {
          fail(`the draft did not grow from ${JSON.stringify(a.text)} to ${JSON.stringify(b.text)}: ${JSON.stringify(drafts)}`);
        }
      }
      if (squash(texts[0]).length >= expected.length) fail(`the first draft was already the whole answer: ${JSON.stringify(drafts)}`);
      const spread = drafts[drafts.length - 1].at - drafts[0].at;
      if (spread < 150) fail(`every draft text came within ${spread} ms, not as the answer was written: ${JSON.stringify(drafts)}`);
      if (rec.thinking[0].at > drafts[0].at) fail(`"thinking" was first shown after the draft: ${JSON.stringify(rec)}`);

      const bubbles = await newBubbles(page, before);
      const answer = bubbles.filter((b) => squash(b.text).includes(opening));
      if (answer.length !== 1) fail(`want exactly one bot bubble for the answer, got ${answer.length}: ${JSON.stringify(bubbles)}`);
      const [final] = answer;
      if (!squash(final.text).includes(expected)) fail(`the final bubble lacks the whole text ${JSON.stringify(expected)}: ${JSON.stringify(final)}`);
      if (final.draft || final.busy) fail(`the final bubble is still marked as a draft: ${JSON.stringify(final)}`);
      if (final.id !== drafts[0].id) fail(`the final bubble (message id ${final.id}) is not the draft (${drafts[0].id}) made final`);
      if (await page.locator(`${DEMO.panel} .copilot-typing`).isVisible()) fail('the typing indicator is still shown after the answer');
      log(S, `thinking at ${rec.thinking[0].at} ms; ${drafts.length} draft texts over ${spread} ms: ${JSON.stringify(texts)}`);
      log(S, `final: ${JSON.stringify(final.text)}`);
    });

    await step(S, 'ask again with the panel closed: the badge counts one unread per bubble', async () => {
      await page.locator('#copilot-root .copilot-close').click({ timeout: 5_000 });
      await page.locator(DEMO.panel).waitFor({ state: 'hidden', timeout: 5_000 });
      const before2 = await page.locator(DEMO.botMsg).count();
      const sent = await page.evaluate((q) => window.__demo.widget.send(q), STREAM_QUESTION);
      if (!sent) fail('window.__demo.widget.send refused the question');
      await waitForFinalAnswer(page, before2, expected, 'second question, panel closed');
      const bubbles = await newBubbles(page, before2);
      const answer = bubbles.filter((b) => squash(b.text).includes(opening));
      if (answer.length !== 1) fail(`want exactly one bot bubble for the second answer, got ${answer.length}: ${JSON.stringify(bubbles)}`);
      const badge = await page.evaluate(() => {
        const b = document.querySelector('#copilot-launcher .copilot-badge');
        return b && !b.hidden ? b.textContent : '0';
      });
      if (badge !== String(bubbles.length)) {
        fail(`the badge says ${badge} unread for ${bubbles.length} new bot bubble(s): ${JSON.stringify(bubbles)}`);
      }
      log(S, `badge ${badge} for ${bubbles.length} new bubble(s)`);
    });

    demo.checkErrors();
    return { ok: true, detail: 'thinking, then one draft growing as written, then exactly one final bubble' };
  } catch (e) {
    await demo.report(e);
    throw e;
  } finally {
    await demo.context.close().catch(() => {});
  }
}

// ---------------------------------------------------------------- scenario (f): rasa-webchat and a streamed answer

async function scenarioWebchatStream(browser, staticOrigin) {
  const S = 'webchat-stream';
  const shot = path.join(args.out, 'rasa-webchat-stream.png');
  const expected = squash(args.expectText);
  const opening = expected.slice(0, Math.min(12, expected.length));
  const consoleLines = [];
  const blocked = [];
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await blockExternal(context, blocked);
  const page = await context.newPage();
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  const events = (name) =>
    page.evaluate((name) => (window.__rw ? window.__rw.events.filter((e) => e.event === name).map((e) => e.data) : []), name);
  try {
    const pageUrl = `${staticOrigin}/webchat.html?server=${encodeURIComponent(args.server)}&user=user_stream&stream=1`;
    await step(S, `open ${pageUrl}, wait for the launcher, open the chat`, async () => {
      const res = await page.goto(pageUrl, { waitUntil: 'domcontentloaded', timeout: 10_000 });
      if (!res || !res.ok()) fail(`webchat.html returned ${res && res.status()}`);
      try {
        await page.locator(RW.launcher).waitFor({ state: 'visible', timeout: 15_000 });
      } catch {
        fail(`launcher never appeared: the widget did not connect (socket events: ${JSON.stringify(await page.evaluate(() => window.__rw))})`);
      }
      await page.locator(RW.launcher).click({ timeout: 5_000 });
      await page.waitForFunction((sel) => {
        const el = document.querySelector(sel);
        return el && !el.disabled;
      }, RW.input, { timeout: 10_000, polling: 100 });
    });

    const uttered0 = (await events('bot_uttered')).length;
    const rendered0 = await page.locator(RW.botText).count();
    await step(S, `send "${STREAM_QUESTION}"`, async () => {
      const input = page.locator(RW.input);
      await input.fill(STREAM_QUESTION, { timeout: 5_000 });
      await input.press('Enter', { timeout: 5_000 });
    });

    await step(S, 'wait for the bot_uttered with the whole answer, and for every bot_uttered to be rendered', async () => {
      try {
        await page.waitForFunction(
          ({ uttered0, expected }) =>
            window.__rw.events
              .filter((e) => e.event === 'bot_uttered')
              .slice(uttered0)
              .some((e) => e.data && typeof e.data.text === 'string' && e.data.text.replace(/\s+/g, ' ').includes(expected)),
          { uttered0, expected },
          { timeout: 20_000, polling: 100 }
        );
      } catch {
        fail(`no bot_uttered with ${JSON.stringify(expected)} within 20 s; events: ${JSON.stringify(await page.evaluate(() => window.__rw.events.slice(-12)))}`);
      }
      // rasa-webchat shows messages one by one with a delay; wait until it has
      // rendered as many as it was sent, so a duplicate could not hide.
      try {
        await page.waitForFunction(
          ({ sel, uttered0, rendered0 }) =>
            document.querySelectorAll(sel).length - rendered0 >=
            window.__rw.events.filter((e) => e.event === 'bot_uttered').length - uttered0,
          { sel: RW.botText, uttered0, rendered0 },
          { timeout: 15_000, polling: 100 }
        );
      } catch {
        fail(`rasa-webchat did not render every bot_uttered within 15 s: ${JSON.stringify(await page.locator(RW.botText).allTextContents())}`);
      }
    });

    await step(S, 'check: the server streamed to rasa-webchat, which shows the answer once, whole', async () => {
      const streamed = await events('bot_stream');
      const replying = streamed.filter((e) => e && e.status === 'replying');
      if (!replying.length) {
        fail(`rasa-webchat was sent no bot_stream "replying" event, so this proves nothing; bot_stream events: ${JSON.stringify(streamed)}`);
      }
      const uttered = (await events('bot_uttered')).slice(uttered0);
      const final = uttered.find((u) => u && typeof u.text === 'string' && squash(u.text).includes(expected));
      const id = replying[0].message_id;
      if (!final.metadata || final.metadata.message_id !== id) {
        fail(`the final bot_uttered does not name the stream's message_id ${JSON.stringify(id)}: ${JSON.stringify(final)}`);
      }
      const texts = (await page.locator(RW.botText).allTextContents()).slice(rendered0);
      const answer = texts.filter((t) => squash(t).includes(opening));
      if (answer.length !== 1) fail(`want exactly one rendered message for the answer, got ${answer.length}: ${JSON.stringify(texts)}`);
      if (!squash(answer[0]).includes(expected)) fail(`the rendered answer is not whole: ${JSON.stringify(answer[0])}, want ${JSON.stringify(expected)}`);
      log(S, `${streamed.length} bot_stream event(s) ignored by rasa-webchat; rendered: ${JSON.stringify(texts)}`);
    });

    await step(S, `screenshot ${shot}`, () => page.screenshot({ path: shot, timeout: 10_000 }));
    return { ok: true, detail: 'rasa-webchat ignored bot_stream and showed the streamed answer once, whole' };
  } catch (e) {
    await page.screenshot({ path: path.join(args.out, 'rasa-webchat-stream-failure.png'), timeout: 5_000 }).catch(() => {});
    if (consoleLines.length) console.log(`[${S}] browser console:\n  ${consoleLines.join('\n  ')}`);
    if (blocked.length) console.log(`[${S}] blocked external requests:\n  ${blocked.join('\n  ')}`);
    throw e;
  } finally {
    await context.close().catch(() => {});
  }
}

// ---------------------------------------------------------------- the team console (/admin)

const CONSOLE = {
  loginForm: '#login-form',
  token: '#login-token',
  product: '#login-product',
  apiKey: '#login-api-key',
  submit: '#login-submit',
  loginError: '#login-error',
  whoami: '#whoami',
  picker: '#product-picker',
  logout: '#logout',
  liveStatus: '#live-status',
  turnsTable: '#turns-table',
  exportLink: '#export-jsonl',
};
// The console logs in fresh: its first GET /admin/api/session answers 401.
const sessionProbe = (url) => new URL(url).pathname === '/admin/api/session';

/** POSTs `body` as JSON to the server (no credentials); returns {status, body}. */
async function postJson(pathname, body, headers = {}) {
  const res = await fetchWithTimeout(
    `${args.server}${pathname}`,
    { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) },
    15_000
  );
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: json, text };
}

/** One chat turn through Rasa's REST channel; returns the bot's messages. */
async function restChat(sender, message, metadata = {}) {
  const res = await postJson('/webhooks/rest/webhook', { sender, message, metadata });
  if (res.status !== 200 || !Array.isArray(res.body)) fail(`POST /webhooks/rest/webhook (${sender}: ${JSON.stringify(message)}) -> ${res.status}: ${res.text.slice(0, 200)}`);
  return res.body;
}

/** What POST /model/parse says `text` is. */
async function parseIntent(text) {
  const res = await postJson('/model/parse', { text });
  if (res.status !== 200 || !res.body || !res.body.intent) fail(`POST /model/parse ${JSON.stringify(text)} -> ${res.status}: ${res.text.slice(0, 200)}`);
  return res.body.intent;
}

/** A PostHog webhook delivery (the stock shape) to the demo product. */
async function deliverEvent({ uuid, user, session, event = '$autocapture', label, url }) {
  const properties = { $session_id: session, $current_url: url, email: `${user}@example.com` };
  const body = { uuid, event, distinct_id: user, timestamp: new Date().toISOString(), properties };
  if (label) {
    properties.$event_type = 'click';
    properties.$el_text = label;
    body.elements_chain = `button.btn:text="${label}";body:nth-child="2"`;
  }
  const res = await postJson('/webhook/demo', { event: body, person: null }, { 'X-PostHog-Secret': WEBHOOK_SECRET });
  if (res.status !== 200) fail(`POST /webhook/demo (${event} ${label || url}) -> ${res.status}: ${res.text.slice(0, 200)}`);
  return res.body;
}

const uid = (prefix) => `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

/** fetch() from inside the page: same origin, with its session cookie. */
function pageFetch(page, pathname, init = {}) {
  return page.evaluate(
    async ({ pathname, init }) => {
      const res = await fetch(pathname, { credentials: 'same-origin', ...init });
      const text = await res.text();
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: res.status, json, text, type: res.headers.get('content-type'), disposition: res.headers.get('content-disposition') };
    },
    { pathname, init }
  );
}

/**
 * Turns are recorded in the background (a chat never waits for the console's
 * database), so a view opened right after a chat may not list it yet: wait
 * until `GET pathname` (as the logged-in page) satisfies `ready(json)`.
 */
async function waitForRecorded(page, S, what, pathname, ready) {
  await step(S, `wait until ${pathname} lists ${what}`, () =>
    pollUntil(
      `${pathname} to list ${what}`,
      async () => {
        const res = await pageFetch(page, pathname);
        if (res.status === 200 && res.json && ready(res.json)) return { done: true };
        return { done: false, detail: `${res.status} ${res.text.slice(0, 300)}` };
      },
      { timeout: 15_000 }
    )
  );
}

/** Opens /admin and waits for the login form. */
async function openConsole(page, S) {
  await step(S, `open ${args.server}/admin, wait for the login form`, async () => {
    const res = await page.goto(`${args.server}/admin`, { waitUntil: 'load', timeout: 10_000 });
    if (!res || !res.ok()) fail(`GET /admin returned ${res && res.status()}`);
    const type = res.headers()['content-type'] || '';
    if (!type.includes('text/html')) fail(`GET /admin returned content-type ${JSON.stringify(type)}, not HTML`);
    try {
      await page.locator(CONSOLE.loginForm).waitFor({ state: 'visible', timeout: 10_000 });
    } catch {
      fail(`no ${CONSOLE.loginForm} within 10 s; #app says: ${JSON.stringify(((await page.locator('#app').textContent()) || '').slice(0, 300))}`);
    }
  });
}

/**
 * Logs in through the form with `{token}` (admin) or `{product, apiKey}`, and
 * waits for the console's top bar. Returns the whoami text.
 */
async function consoleLogin(page, S, creds) {
  const what = creds.token ? 'the admin token' : `product ${creds.product}'s API key`;
  return step(S, `log in with ${what}`, async () => {
    if (!(await page.locator(CONSOLE.loginForm).isVisible())) await openConsole(page, S);
    if (creds.token) {
      await page.locator('label.segment', { hasText: 'Admin token' }).click({ timeout: 5_000 });
      await page.locator(CONSOLE.token).fill(creds.token, { timeout: 5_000 });
    } else {
      await page.locator('label.segment', { hasText: 'Product key' }).click({ timeout: 5_000 });
      await page.locator(CONSOLE.product).fill(creds.product, { timeout: 5_000 });
      await page.locator(CONSOLE.apiKey).fill(creds.apiKey, { timeout: 5_000 });
    }
    await page.locator(CONSOLE.submit).click({ timeout: 5_000 });
    try {
      await page.locator(CONSOLE.whoami).waitFor({ state: 'visible', timeout: 10_000 });
    } catch {
      const err = await page.locator(CONSOLE.loginError).textContent().catch(() => null);
      fail(`the console did not open after logging in with ${what}; login error: ${JSON.stringify(err)}`);
    }
    return (await page.locator(CONSOLE.whoami).textContent()).trim();
  });
}

/** Goes to a console route (hash) and waits for `ready` (a selector) to show. */
async function consoleGo(page, S, hash, ready, timeout = 10_000) {
  await step(S, `go to ${hash}, wait for ${ready}`, async () => {
    await page.evaluate((h) => {
      window.location.hash = h;
    }, hash);
    try {
      await page.locator(ready).first().waitFor({ state: 'visible', timeout });
    } catch {
      const text = ((await page.locator('#view').textContent().catch(() => '')) || '').replace(/\s+/g, ' ').slice(0, 400);
      fail(`${ready} did not show within ${timeout} ms on ${hash}; the page says: ${JSON.stringify(text)}`);
    }
  });
}

/** The users in the conversations table (after a search). */
function tableUsers(page) {
  return page.locator(`${CONSOLE.turnsTable} tbody tr td.user-cell`).allTextContents();
}

/** Runs `fn(page, demo)` on a fresh console page, with the usual failure report and cleanup. */
async function withConsolePage(browser, S, options, fn) {
  const demo = await newDemoPage(browser, S, options);
  try {
    const detail = await fn(demo.page, demo);
    demo.checkErrors();
    return { ok: true, detail };
  } catch (e) {
    await demo.report(e);
    throw e;
  } finally {
    await demo.context.close().catch(() => {});
  }
}

async function scenarioConsoleLogin(browser) {
  const S = 'console-login';
  const shot = path.join(args.out, 'console-login.png');
  const other = args.otherProduct;
  const otherUser = uid('other-user');
  const demoUser = uid('demo-user');
  // This scenario asks for refusals on purpose: 401, 403 and 404 from /admin/api.
  const expectedFailure = (url) => new URL(url).pathname.startsWith('/admin/api/');
  return withConsolePage(browser, S, { expectedFailure }, async (page) => {
    await step(S, `chat once as ${demoUser} (demo) and once as ${otherUser} (${other.id})`, async () => {
      await restChat(demoUser, 'hello', { productId: 'demo', userId: demoUser });
      await restChat(otherUser, 'hello', { productId: other.id, userId: otherUser });
    });

    await openConsole(page, S);
    await step(S, 'check the login form: no session yet, nothing but the form', async () => {
      const session = await pageFetch(page, '/admin/api/session');
      if (session.status !== 401) fail(`GET /admin/api/session before logging in -> ${session.status}, want 401: ${session.text}`);
      if (await page.locator(CONSOLE.whoami).count()) fail('the console shows its top bar before anyone logged in');
    });
    await step(S, `screenshot ${shot}`, () => page.screenshot({ path: shot, timeout: 10_000 }));

    await step(S, 'a wrong admin token is refused with a message', async () => {
      await page.locator(CONSOLE.token).fill('not-the-token', { timeout: 5_000 });
      await page.locator(CONSOLE.submit).click({ timeout: 5_000 });
      try {
        await page.locator(CONSOLE.loginError).waitFor({ state: 'visible', timeout: 5_000 });
      } catch {
        fail(`no ${CONSOLE.loginError} after a wrong token`);
      }
      if (await page.locator(CONSOLE.whoami).count()) fail('a wrong token opened the console');
      const res = await pageFetch(page, '/admin/api/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: 'not-the-token' }),
      });
      if (res.status !== 401 || !res.json || res.json.error !== 'wrong credentials') {
        fail(`POST /admin/api/login with a wrong token -> ${res.status} ${res.text}, want 401 {"error":"wrong credentials"}`);
      }
    });

    const who = await consoleLogin(page, S, { token: args.adminToken });
    await step(S, `the admin sees every product in the picker and lands on #/live`, async () => {
      if (!/admin/i.test(who)) fail(`#whoami says ${JSON.stringify(who)}, want Admin`);
      const options = await page.locator(`${CONSOLE.picker} option`).evaluateAll((os) => os.map((o) => o.value));
      for (const p of ['demo', other.id]) if (!options.includes(p)) fail(`the product picker lacks ${p}: ${JSON.stringify(options)}`);
      await page.waitForFunction(() => window.location.hash.startsWith('#/live'), null, { timeout: 5_000 });
      const session = await pageFetch(page, '/admin/api/session');
      if (session.status !== 200 || session.json.role !== 'admin' || !session.json.csrf) fail(`GET /admin/api/session -> ${session.status} ${session.text}`);
      if (page.url().includes(args.adminToken) || session.json.csrf && page.url().includes(session.json.csrf)) fail(`a secret is in the URL: ${page.url()}`);
    });

    const listsUser = (user) => (json) => json.turns.some((t) => t.user === user);
    await waitForRecorded(page, S, `${demoUser}'s turn`, `/admin/api/conversations?product=demo`, listsUser(demoUser));
    await waitForRecorded(page, S, `${otherUser}'s turn`, `/admin/api/conversations?product=${other.id}`, listsUser(otherUser));
    await step(S, `the admin picks ${other.id}: its conversations show ${otherUser}`, async () => {
      await page.locator(CONSOLE.picker).selectOption(other.id, { timeout: 5_000 });
      await consoleGo(page, S, '#/conversations', `${CONSOLE.turnsTable} tbody tr`);
      const users = await tableUsers(page);
      if (!users.some((u) => u.includes(otherUser))) fail(`${other.id}'s conversations lack ${otherUser}: ${JSON.stringify(users)}`);
      if (users.some((u) => u.includes(demoUser))) fail(`${other.id}'s conversations show demo's ${demoUser}: ${JSON.stringify(users)}`);
    });

    await step(S, 'a POST without X-CSRF-Token is refused (403)', async () => {
      const res = await pageFetch(page, '/admin/api/logout', { method: 'POST' });
      if (res.status !== 403) fail(`POST /admin/api/logout without X-CSRF-Token -> ${res.status} ${res.text}, want 403`);
      const still = await pageFetch(page, '/admin/api/session');
      if (still.status !== 200) fail(`the refused logout ended the session: GET /admin/api/session -> ${still.status}`);
    });

    await step(S, 'log out: back to the login form, the session is gone', async () => {
      await page.locator(CONSOLE.logout).click({ timeout: 5_000 });
      await page.locator(CONSOLE.loginForm).waitFor({ state: 'visible', timeout: 5_000 });
      const session = await pageFetch(page, '/admin/api/session');
      if (session.status !== 401) fail(`GET /admin/api/session after logging out -> ${session.status}, want 401`);
    });

    await step(S, `${other.id}'s API key does not log in as demo`, async () => {
      const res = await pageFetch(page, '/admin/api/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ product: 'demo', api_key: other.apiKey }),
      });
      if (res.status !== 401) fail(`POST /admin/api/login {product: demo, api_key: <${other.id}'s>} -> ${res.status} ${res.text}, want 401`);
    });

    const whoProduct = await consoleLogin(page, S, { product: 'demo', apiKey: DEMO_API_KEY });
    await step(S, `a demo login: no picker, only demo's turns; ${other.id} answers 404`, async () => {
      if (!whoProduct.includes('demo')) fail(`#whoami says ${JSON.stringify(whoProduct)}, want demo`);
      if (await page.locator(CONSOLE.picker).count()) fail('a product login shows the product picker');
      await consoleGo(page, S, '#/conversations', `${CONSOLE.turnsTable} tbody tr`);
      const users = await tableUsers(page);
      if (!users.some((u) => u.includes(demoUser))) fail(`demo's conversations lack ${demoUser}: ${JSON.stringify(users)}`);
      if (users.some((u) => u.includes(otherUser))) fail(`a demo login sees ${other.id}'s ${otherUser}: ${JSON.stringify(users)}`);
      const session = await pageFetch(page, '/admin/api/session');
      if (session.json.role !== 'product' || session.json.product !== 'demo' || JSON.stringify(session.json.products) !== '["demo"]') {
        fail(`GET /admin/api/session for a demo login: ${session.text}`);
      }
      for (const probe of [
        `/admin/api/conversations?product=${other.id}`,
        `/admin/api/live?product=${other.id}`,
        `/admin/api/stats?product=${other.id}`,
        `/admin/api/inbox?product=${other.id}`,
        `/admin/api/export?product=${other.id}`,
      ]) {
        const res = await pageFetch(page, probe);
        if (res.status !== 404 || !res.json || res.json.error !== 'no such product') fail(`GET ${probe} as demo -> ${res.status} ${res.text}, want 404 {"error":"no such product"}`);
      }
      const all = await pageFetch(page, '/admin/api/conversations');
      if (all.status !== 200 || all.json.turns.some((t) => t.user === otherUser || t.product === other.id)) {
        fail(`GET /admin/api/conversations as demo shows ${other.id}'s turns: ${all.text.slice(0, 400)}`);
      }
    });
    return `admin and demo logins, CSRF enforced, ${other.id} hidden from demo`;
  });
}

async function scenarioConsoleLive(browser) {
  const S = 'console-live';
  const shot = path.join(args.out, 'console-live.png');
  const session = uid('live-sess');
  const user = uid('live-user');
  const card = `[data-session-id="${session}"]`;
  return withConsolePage(browser, S, { expectedFailure: sessionProbe }, async (page) => {
    await openConsole(page, S);
    await consoleLogin(page, S, { token: args.adminToken });
    await consoleGo(page, S, '#/live', `${CONSOLE.liveStatus}[data-state=open]`);
    await step(S, 'mark the page, to tell later that it was not reloaded', () =>
      page.evaluate(() => {
        window.__notReloaded = true;
      })
    );

    await step(S, `deliver a pageview and a click on "Edit" for the new session ${session}`, async () => {
      await deliverEvent({ uuid: uid('ev'), user, session, event: '$pageview', url: 'http://127.0.0.1/projects' });
      await deliverEvent({ uuid: uid('ev'), user, session, label: 'Edit', url: 'http://127.0.0.1/projects' });
    });
    await step(S, `wait for the session's card with an "Edit" action in its timeline`, () =>
      pollUntil(
        `${card} .timeline li with "Edit"`,
        async () => {
          const items = await page.locator(`${card} .timeline li`).allTextContents();
          if (items.some((t) => t.includes('Edit'))) return { done: true, value: items };
          const cards = await page.locator('[data-session-id]').evaluateAll((cs) => cs.map((c) => c.getAttribute('data-session-id')));
          return { done: false, detail: `cards ${JSON.stringify(cards)}, timeline ${JSON.stringify(items)}` };
        },
        { timeout: 15_000, interval: 200 }
      )
    );
    const before = await page.locator(`${card} .timeline li`).count();

    await step(S, 'deliver a click on "Save changes": the timeline grows without a reload', async () => {
      await deliverEvent({ uuid: uid('ev'), user, session, label: 'Save changes', url: 'http://127.0.0.1/projects/7' });
      await pollUntil(
        `a new ${card} .timeline li with "Save changes"`,
        async () => {
          const items = await page.locator(`${card} .timeline li`).allTextContents();
          if (items.length > before && items.some((t) => t.includes('Save changes'))) return { done: true, value: items };
          return { done: false, detail: JSON.stringify(items) };
        },
        { timeout: 15_000, interval: 200 }
      );
      if (!(await page.evaluate(() => window.__notReloaded === true))) fail('the page was reloaded to show the new action');
      const texts = await page.locator(`${card} .timeline li`).allTextContents();
      const edit = texts.findIndex((t) => t.includes('Edit'));
      const save = texts.findIndex((t) => t.includes('Save changes'));
      if (!(edit >= 0 && save > edit)) fail(`the timeline is not oldest first: ${JSON.stringify(texts)}`);
      const head = ((await page.locator(`${card} .who`).textContent()) || '').trim();
      if (!head.includes(user)) fail(`the card does not name the user ${user}: ${JSON.stringify(head)}`);
      log(S, `timeline: ${JSON.stringify(texts)}; status ${JSON.stringify(await page.locator(CONSOLE.liveStatus).textContent())}`);
    });
    await step(S, `screenshot ${shot}`, () => page.screenshot({ path: shot, timeout: 10_000 }));
    return `session ${session}'s timeline grew live to ${before + 1}+ actions`;
  });
}

async function scenarioConsoleTranscript(browser) {
  const S = 'console-transcript';
  const listShot = path.join(args.out, 'console-conversations.png');
  const shot = path.join(args.out, 'console-transcript.png');
  const greeting = WIDGET_GREETING;
  const intent = await step(S, `POST /model/parse ${JSON.stringify(greeting)}`, () => parseIntent(greeting));

  // 1. The end user: the demo's widget, with thumbs.
  const turnId = await thumbsInWidget(browser, S, ['up'], async (page) => {
    await step(S, `ask the widget ${JSON.stringify(CITATION_QUESTION)} and wait for the answer`, async () => {
      const n = await askWidget(page, CITATION_QUESTION);
      await page.waitForFunction(
        ({ sel, n }) => [...document.querySelectorAll(sel)].slice(n).some((b) => /archive/i.test(b.textContent)),
        { sel: DEMO.botMsg, n },
        { timeout: 20_000, polling: 100 }
      );
    });
  });

  // 2. The team: the console.
  return withConsolePage(browser, S, { expectedFailure: sessionProbe }, async (page) => {
    await openConsole(page, S);
    await consoleLogin(page, S, { token: args.adminToken });
    await consoleGo(page, S, '#/conversations', `${CONSOLE.turnsTable}`);
    await step(S, `search user ${DEMO_USER}: both turns, "${greeting}" as ${intent.name}`, async () => {
      await page.locator('#conv-filters input[name=user]').fill(DEMO_USER, { timeout: 5_000 });
      await page.locator('#conv-filters button[type=submit]').click({ timeout: 5_000 });
      await page.waitForFunction((u) => window.location.hash.includes(`user=${u}`), DEMO_USER, { timeout: 5_000 });
      await pollUntil(
        `a row for turn ${turnId}`,
        async () => {
          const ids = await page.locator(`${CONSOLE.turnsTable} tbody tr`).evaluateAll((rs) => rs.map((r) => r.getAttribute('data-turn-id')));
          return ids.includes(turnId) && ids.length >= 2 ? { done: true } : { done: false, detail: JSON.stringify(ids) };
        },
        { timeout: 10_000 }
      );
      const row = page.locator(`${CONSOLE.turnsTable} tr[data-turn-id="${turnId}"]`);
      const text = ((await row.textContent()) || '').replace(/\s+/g, ' ');
      if (!text.includes(greeting) || !text.includes(intent.name)) fail(`the row for ${turnId} lacks ${JSON.stringify(greeting)} or ${intent.name}: ${JSON.stringify(text)}`);
      const users = await tableUsers(page);
      if (users.some((u) => !u.includes(DEMO_USER))) fail(`the search for ${DEMO_USER} shows other users: ${JSON.stringify(users)}`);
    });
    await step(S, 'the export link downloads the same turns as JSONL', async () => {
      const href = await page.locator(CONSOLE.exportLink).getAttribute('href');
      if (!href || !href.startsWith('/admin/api/export') || !href.includes(`user=${DEMO_USER}`)) fail(`${CONSOLE.exportLink} href is ${JSON.stringify(href)}`);
      const res = await pageFetch(page, href);
      if (res.status !== 200) fail(`GET ${href} -> ${res.status}: ${res.text.slice(0, 200)}`);
      if (!(res.type || '').includes('application/x-ndjson')) fail(`GET ${href}: content-type ${JSON.stringify(res.type)}`);
      if (!/attachment/.test(res.disposition || '') || !/conversations\.jsonl/.test(res.disposition || '')) fail(`GET ${href}: content-disposition ${JSON.stringify(res.disposition)}`);
      const rows = res.text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
      if (!rows.some((r) => r.id === turnId) || rows.some((r) => r.user !== DEMO_USER)) fail(`the export is not this search: ${res.text.slice(0, 400)}`);
    });
    await step(S, `screenshot ${listShot}`, () => page.screenshot({ path: listShot, timeout: 10_000 }));

    await step(S, `click the "${greeting}" row: its transcript opens`, async () => {
      await page.locator(`${CONSOLE.turnsTable} tr[data-turn-id="${turnId}"] td`).first().click({ timeout: 5_000 });
      await page.waitForFunction(() => window.location.hash.startsWith('#/conversation/'), null, { timeout: 5_000 });
      await page.locator(`.turn[data-turn-id="${turnId}"]`).waitFor({ state: 'visible', timeout: 10_000 });
    });
    await step(S, `the transcript: "${greeting}" then the reply, ${intent.name}, a responder, the thumbs up`, async () => {
      // The thumbs went over the socket; the console reads them from the store.
      await pollUntil(
        `turn ${turnId}'s thumbs up in the transcript`,
        async () => {
          if (await page.locator(`.turn[data-turn-id="${turnId}"] .feedback-up`).count()) return { done: true };
          await page.evaluate(() => window.dispatchEvent(new HashChangeEvent('hashchange')));
          await page.locator(`.turn[data-turn-id="${turnId}"]`).waitFor({ state: 'visible', timeout: 5_000 });
          return { done: false, detail: 'no .feedback-up yet' };
        },
        { timeout: 10_000, interval: 500 }
      );
      const turn = page.locator(`.turn[data-turn-id="${turnId}"]`);
      const user = ((await turn.locator('.msg-user .msg-text').textContent()) || '').trim();
      if (user !== greeting) fail(`the user message is ${JSON.stringify(user)}, want ${JSON.stringify(greeting)}`);
      const bots = await turn.locator('.msg-bot .msg-text').allTextContents();
      if (!bots.length || !bots[0].trim()) fail(`no bot reply under ${JSON.stringify(greeting)}: ${JSON.stringify(bots)}`);
      const shownIntent = ((await turn.locator('.turn-details .intent').first().textContent()) || '').trim();
      if (shownIntent !== intent.name) fail(`the details say intent ${JSON.stringify(shownIntent)}, want ${intent.name}`);
      const responder = ((await turn.locator('.turn-details .responder').first().textContent()) || '').trim();
      if (!responder || responder === '—') fail('the details name no responder');
      const turns = await page.locator('.turn[data-turn-id]').count();
      if (turns < 2) fail(`the transcript has ${turns} turn(s), want both`);
      const order = await page.locator('.turn .msg-user .msg-text').allTextContents();
      if (order[0].trim() !== greeting) fail(`the turns are not oldest first: ${JSON.stringify(order)}`);
      const sources = await page.locator('.turn-details .sources a[href]').evaluateAll((as) => as.map((a) => ({ href: a.href, rel: a.rel })));
      if (sources.some((s) => !/^https?:/.test(s.href) || !s.rel.includes('noopener'))) fail(`bad source links: ${JSON.stringify(sources)}`);
      log(S, `turn ${turnId}: ${intent.name} by ${responder}; reply ${JSON.stringify(bots[0].slice(0, 80))}; ${sources.length} source link(s)`);
    });
    await step(S, `screenshot ${shot}`, async () => {
      // Open the details so the page shows what they hold.
      await page.evaluate(() => document.querySelectorAll('.turn-details details').forEach((d) => (d.open = true)));
      await page.screenshot({ path: shot, timeout: 10_000, fullPage: true });
    });
    return `turn ${turnId} found, exported and shown: ${intent.name}, thumbs up`;
  });
}

// Falls back with the shipped intents (greet 0.42, just short of a clear win);
// the inbox scenario teaches it to be a greeting.
const INBOX_TEXT = 'ahoy there';
const INBOX_INTENT = 'greet';
const INBOX_OTHER = 'is there a gantt chart view';

async function scenarioConsoleInbox(browser) {
  const S = 'console-inbox';
  const shot = path.join(args.out, 'console-inbox.png');
  return withConsolePage(browser, S, { expectedFailure: sessionProbe }, async (page) => {
    await step(S, `precondition: POST /model/parse ${JSON.stringify(INBOX_TEXT)} is not ${INBOX_INTENT} yet`, async () => {
      const intent = await parseIntent(INBOX_TEXT);
      if (intent.name === INBOX_INTENT) fail(`the classifier already says ${INBOX_INTENT} for ${JSON.stringify(INBOX_TEXT)}; this scenario would prove nothing`);
      log(S, `before: ${JSON.stringify(intent)}`);
    });
    await step(S, `two users say ${JSON.stringify(INBOX_TEXT)}, one ${JSON.stringify(INBOX_OTHER)}`, async () => {
      await restChat(uid('inbox-a'), INBOX_TEXT, { productId: 'demo' });
      await restChat(uid('inbox-b'), INBOX_TEXT, { productId: 'demo' });
      await restChat(uid('inbox-c'), INBOX_OTHER, { productId: 'demo' });
    });
    await openConsole(page, S);
    await consoleLogin(page, S, { token: args.adminToken });
    await waitForRecorded(page, S, `both ${JSON.stringify(INBOX_TEXT)} and ${JSON.stringify(INBOX_OTHER)}`, '/admin/api/inbox?product=demo', (inbox) => {
      const count = (text) => inbox.groups.filter((g) => g.text === text).reduce((n, g) => n + g.count, 0);
      return count(INBOX_TEXT) === 2 && count(INBOX_OTHER) === 1;
    });
    await consoleGo(page, S, '#/inbox', '.inbox-group');
    const group = page.locator('.inbox-group', { has: page.locator('.group-text', { hasText: INBOX_TEXT }) });
    const ids = await step(S, `the inbox groups the two ${JSON.stringify(INBOX_TEXT)}`, async () => {
      if ((await group.count()) !== 1) fail(`want one group for ${JSON.stringify(INBOX_TEXT)}, got ${await group.count()}: ${JSON.stringify(await page.locator('.inbox-group .group-text').allTextContents())}`);
      const count = await group.getAttribute('data-count');
      const turnIds = ((await group.getAttribute('data-turn-ids')) || '').split(' ').filter(Boolean);
      if (count !== '2' || turnIds.length !== 2) fail(`the group counts ${count} with turns ${JSON.stringify(turnIds)}, want 2`);
      const options = await group.locator('select option').evaluateAll((os) => os.map((o) => o.value));
      if (!options.includes(INBOX_INTENT) || !options.includes('out_of_scope')) fail(`the intent select lacks ${INBOX_INTENT} or out_of_scope: ${JSON.stringify(options)}`);
      return turnIds;
    });
    await step(S, `screenshot ${shot}`, () => page.screenshot({ path: shot, timeout: 10_000, fullPage: true }));

    await step(S, `label the group ${INBOX_INTENT}: confirmed, and the group goes`, async () => {
      await group.locator('select').selectOption(INBOX_INTENT, { timeout: 5_000 });
      await group.locator('button.label-button').click({ timeout: 5_000 });
      const status = page.locator('#inbox-status');
      try {
        await status.locator('.notice').waitFor({ state: 'visible', timeout: 20_000 });
      } catch {
        fail(`no confirmation within 20 s; the group says ${JSON.stringify(await group.locator('.form-error').textContent().catch(() => null))}`);
      }
      const text = ((await status.textContent()) || '').replace(/\s+/g, ' ');
      if (!new RegExp(`Labelled 2 as ${INBOX_INTENT}; retrained in \\d+ ms`).test(text)) fail(`the confirmation says ${JSON.stringify(text)}`);
      if (await group.count()) fail('the labelled group is still shown');
      log(S, text);
    });
    await step(S, `POST /model/parse ${JSON.stringify(INBOX_TEXT)} now answers ${INBOX_INTENT}`, async () => {
      const intent = await parseIntent(INBOX_TEXT);
      if (intent.name !== INBOX_INTENT) fail(`after labelling, /model/parse says ${JSON.stringify(intent)}, want ${INBOX_INTENT}`);
      log(S, `after: ${JSON.stringify(intent)}`);
    });
    await step(S, 'the inbox, loaded again, no longer lists the labelled turns', async () => {
      await page.reload({ waitUntil: 'load', timeout: 10_000 });
      await page.locator('#inbox-groups .inbox-group, #inbox-groups .empty').first().waitFor({ state: 'visible', timeout: 10_000 });
      const listed = await page.locator('.inbox-group').evaluateAll((gs) => gs.flatMap((g) => (g.getAttribute('data-turn-ids') || '').split(' ')));
      if (ids.some((id) => listed.includes(id))) fail(`labelled turns are back in the inbox: ${JSON.stringify(listed)}`);
      const res = await pageFetch(page, '/admin/api/conversations?q=ahoy');
      const labels = res.json.turns.filter((t) => ids.includes(t.id)).map((t) => t.label);
      if (labels.length !== 2 || labels.some((l) => l !== INBOX_INTENT)) fail(`the labelled turns' label fields: ${JSON.stringify(labels)}`);
    });
    return `"${INBOX_TEXT}" labelled ${INBOX_INTENT}; /model/parse agrees`;
  });
}

const WIDGET_GREETING = 'hello';

/**
 * The demo's widget answers WIDGET_GREETING; its thumbs are clicked in the
 * order of `values` ('up' | 'down'); then `more(page)` runs, if given.
 * Returns the answer's turn id.
 */
async function thumbsInWidget(browser, S, values, more) {
  const widget = await newDemoPage(browser, S);
  try {
    await openDemoWidget(widget.page, S);
    const before = await step(S, `ask the widget ${JSON.stringify(WIDGET_GREETING)}`, () => askWidget(widget.page, WIDGET_GREETING));
    const turnId = await step(S, `click the answer's thumbs: ${values.join(', then ')}`, async () => {
      try {
        await widget.page.waitForFunction(
          ({ sel, before }) => document.querySelectorAll(sel).length > before && document.querySelector('#copilot-messages .copilot-feedback'),
          { sel: DEMO.botMsg, before },
          { timeout: 15_000, polling: 100 }
        );
      } catch {
        fail(`no bot answer with a .copilot-feedback row within 15 s (no metadata.turn_id?); bot messages: ${JSON.stringify(await widget.page.locator(DEMO.botMsg).allTextContents())}`);
      }
      const row = widget.page.locator('#copilot-messages .copilot-feedback').last();
      for (const value of values) {
        const button = row.locator(`button[data-value=${value}]`);
        await button.click({ timeout: 5_000 });
        if ((await button.getAttribute('aria-pressed')) !== 'true') fail(`thumbs ${value} is not marked (aria-pressed) after the click`);
        const others = await row.locator(`button:not([data-value=${value}])`).evaluateAll((bs) => bs.map((b) => b.getAttribute('aria-pressed')));
        if (others.some((p) => p !== 'false')) fail(`after thumbs ${value} the other thumb is still marked: ${JSON.stringify(others)}`);
      }
      if ((await widget.page.locator(DEMO.botMsg).evaluateAll((bs) => bs.filter((b) => b.querySelector('.copilot-feedback')).length)) > 0) {
        fail('the thumbs are inside a bot bubble (they must not change its text)');
      }
      const id = await row.getAttribute('data-turn-id');
      if (!id) fail('the thumbs row has no data-turn-id');
      return id;
    });
    if (more) await more(widget.page);
    widget.checkErrors();
    return turnId;
  } catch (e) {
    await widget.report(e);
    throw e;
  } finally {
    await widget.context.close().catch(() => {});
  }
}

async function scenarioConsoleNumbers(browser) {
  const S = 'console-numbers';
  const shot = path.join(args.out, 'console-numbers.png');
  const today = new Date().toISOString().slice(0, 10);
  return withConsolePage(browser, S, { expectedFailure: sessionProbe }, async (page) => {
    await step(S, 'chat: two users, four turns, one of them a fallback', async () => {
      const a = uid('numbers-a');
      const b = uid('numbers-b');
      await restChat(a, 'hello', { productId: 'demo' });
      await restChat(a, 'what did I just do?', { productId: 'demo' });
      await restChat(b, 'hi there', { productId: 'demo' });
      await restChat(b, INBOX_OTHER, { productId: 'demo' });
    });
    await thumbsInWidget(browser, S, ['up', 'down']);
    await openConsole(page, S);
    await consoleLogin(page, S, { token: args.adminToken });
    await step(S, 'wait until the stats count the thumbs down, and not the replaced thumbs up', () =>
      pollUntil(
        'GET /admin/api/stats to count one thumbs down',
        async () => {
          const res = await pageFetch(page, '/admin/api/stats?days=14');
          const t = res.json && res.json.totals;
          if (t && t.thumbs_down === 1 && t.thumbs_up === 0) return { done: true };
          return { done: false, detail: `${res.status} totals ${JSON.stringify(t)}` };
        },
        { timeout: 10_000, interval: 250 }
      )
    );
    await consoleGo(page, S, '#/numbers', '#chart-volume');
    const charts = await step(S, 'wait for the six charts, with data', () =>
      pollUntil(
        'window.__consoleCharts to hold six charts',
        async () => {
          const info = await page.evaluate(() => {
            const charts = window.__consoleCharts || {};
            return Object.fromEntries(
              Object.entries(charts).map(([id, c]) => [
                id,
                {
                  canvas: c.canvas && c.canvas.id,
                  width: c.width,
                  labels: c.data.labels.length,
                  sums: c.data.datasets.map((d) => d.data.reduce((s, v) => s + (typeof v === 'number' ? v : 0), 0)),
                },
              ])
            );
          });
          return Object.keys(info).length === 6 ? { done: true, value: info } : { done: false, detail: JSON.stringify(info) };
        },
        { timeout: 10_000 }
      )
    );
    await step(S, 'check the charts and the headline numbers', async () => {
      for (const id of ['chart-volume', 'chart-rates', 'chart-latency', 'chart-offers', 'chart-resolved', 'chart-thumbs']) {
        const c = charts[id];
        if (!c) fail(`no chart ${id}: ${JSON.stringify(charts)}`);
        if (c.canvas !== id || !(c.width > 0)) fail(`chart ${id} is not drawn on <canvas id="${id}">: ${JSON.stringify(c)}`);
        if (c.labels !== 14) fail(`chart ${id} has ${c.labels} days, want 14: ${JSON.stringify(c)}`);
      }
      const [conversations, messages] = charts['chart-volume'].sums;
      if (!(conversations >= 3 && messages >= 5)) fail(`chart-volume shows ${conversations} conversations and ${messages} messages, want >= 3 and >= 5`);
      if (JSON.stringify(charts['chart-thumbs'].sums) !== '[0,1]') fail(`chart-thumbs sums ${JSON.stringify(charts['chart-thumbs'].sums)}, want [0,1] (up, down)`);
      if (!(charts['chart-rates'].sums[0] > 0)) fail(`chart-rates shows no fallback: ${JSON.stringify(charts['chart-rates'])}`);
      const stats = await pageFetch(page, '/admin/api/stats?days=14');
      const last = stats.json.days[stats.json.days.length - 1];
      if (last.date !== today) log(S, `WARN: the last day is ${last.date}, today (UTC) is ${today}`);
      const todayMessages = await page.evaluate(() => {
        const c = window.__consoleCharts['chart-volume'];
        return c.data.datasets[1].data[c.data.datasets[1].data.length - 1];
      });
      if (todayMessages !== last.messages) fail(`chart-volume's last bar (${todayMessages}) is not the API's ${last.messages}`);
      // A rate is null while its denominator is 0 (resolution: no conversation
      // is older than resolved_after_minutes yet); the page shows "—" then.
      const totals = stats.json.totals;
      for (const [id, key] of [
        ['total-fallback-rate', 'fallback_rate'],
        ['total-llm-share', 'llm_share'],
        ['total-resolution-rate', 'resolution_rate'],
      ]) {
        const v = ((await page.locator(`#${id} .tile-value`).textContent()) || '').trim();
        const want = typeof totals[key] === 'number' ? `${(totals[key] * 100).toFixed(1)}%` : '—';
        if (v !== want) fail(`#${id} shows ${JSON.stringify(v)}, want ${JSON.stringify(want)} (totals.${key} = ${totals[key]})`);
      }
      if (typeof totals.fallback_rate !== 'number' || !(totals.fallback_rate > 0)) fail(`totals.fallback_rate is ${totals.fallback_rate} after a fallback`);
      log(S, `charts: ${JSON.stringify(charts)}`);
    });
    await step(S, `screenshot ${shot}`, () => page.screenshot({ path: shot, timeout: 10_000, fullPage: true }));
    return 'six charts with data and the headline rates';
  });
}

// ---------------------------------------------------------------- main

async function main() {
  fs.mkdirSync(args.out, { recursive: true });
  const selected = args.only ? [args.only] : PLAIN_SCENARIOS;
  const results = new Map();

  const watchdog = setTimeout(() => {
    for (const s of selected) if (!results.has(s)) console.log(`FAIL ${s}: the run exceeded ${OVERALL_MS / 1000} s`);
    process.exit(1);
  }, OVERALL_MS);
  watchdog.unref();

  if (!fs.existsSync(CHROMIUM)) {
    for (const s of selected) console.log(`FAIL ${s}: no Chromium at ${CHROMIUM} (set COPILOT_CHROMIUM)`);
    process.exit(1);
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    for (const s of selected) console.log(`FAIL ${s}: cannot import playwright-core (run npm ci): ${e.message}`);
    process.exit(1);
  }
  for (const s of ['webchat', 'webchat-stream']) {
    if (selected.includes(s) && !fs.existsSync(path.join(WEBCHAT_LIB, 'index.js'))) {
      console.log(`FAIL ${s}: node_modules/rasa-webchat/lib/index.js is missing (run npm ci)`);
      results.set(s, false);
    }
  }

  const staticServer = await startStaticServer();
  const staticOrigin = `http://127.0.0.1:${staticServer.address().port}`;
  console.log(`static server ${staticOrigin}, copilot server ${args.server}, chromium ${CHROMIUM}`);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      // posthog-js drops events from browsers that look automated
      // (navigator.webdriver, HeadlessChrome): look like a user's browser so the
      // demo page runs exactly as shipped.
      '--disable-blink-features=AutomationControlled',
    ],
  });

  try {
    for (const s of selected) {
      if (results.has(s)) continue;
      try {
        const run = {
          demo: () => scenarioDemo(browser),
          webchat: () => scenarioWebchat(browser, staticOrigin),
          proactive: () => scenarioProactive(browser),
          citations: () => scenarioCitations(browser),
          stream: () => scenarioStream(browser),
          'webchat-stream': () => scenarioWebchatStream(browser, staticOrigin),
          'console-login': () => scenarioConsoleLogin(browser),
          'console-live': () => scenarioConsoleLive(browser),
          'console-transcript': () => scenarioConsoleTranscript(browser),
          'console-inbox': () => scenarioConsoleInbox(browser),
          'console-numbers': () => scenarioConsoleNumbers(browser),
        }[s];
        const r = await run();
        results.set(s, true);
        console.log(`PASS ${s}: ${r.detail} (${elapsed()})`);
      } catch (e) {
        results.set(s, false);
        console.log(`FAIL ${s}: ${e instanceof StepError ? e.message : e && e.stack ? e.stack : e} (${elapsed()})`);
      }
    }
  } finally {
    await browser.close().catch(() => {});
    staticServer.close();
  }
  const ok = selected.every((s) => results.get(s) === true);
  console.log(ok ? `ALL PASSED (${selected.join(', ')})` : `SOME FAILED (${selected.filter((s) => !results.get(s)).join(', ')})`);
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.log(`FAIL e2e: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
