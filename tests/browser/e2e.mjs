#!/usr/bin/env node
// End-to-end browser tests for copilot-server, driven by playwright-core and a
// system Chromium (never `npx playwright install`).
//
//   node tests/browser/e2e.mjs --server http://127.0.0.1:PORT --out <dir> [--only demo|webchat|proactive]
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
//            "Apply to selected". Console errors fail it.
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
const SCENARIOS = ['demo', 'webchat', 'proactive'];
const OVERALL_MS = 90_000;
const STARTED = Date.now();

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const args = { server: null, out: null, only: null };
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
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!args.server) usage('--server is required');
  if (!args.out) usage('--out is required');
  if (args.only && !SCENARIOS.includes(args.only)) usage(`--only must be one of ${SCENARIOS.join(', ')}, got ${args.only}`);
  args.server = args.server.replace(/\/+$/, '');
  return args;
}

function usage(problem) {
  if (problem) console.error(`e2e.mjs: ${problem}`);
  console.error('usage: node tests/browser/e2e.mjs --server http://127.0.0.1:PORT --out <dir> [--only demo|webchat|proactive]');
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
  const errors = [];
  const consoleLines = [];
  const blocked = [];
  const failedRequests = [];
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, userAgent: USER_AGENT });
  await blockExternal(context, blocked);
  const page = await context.newPage();
  page.on('console', (m) => {
    consoleLines.push(`${m.type()}: ${m.text()}`);
    if (m.type() === 'error' && !isIgnorableConsole(m)) {
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

    if (errors.length) {
      fail(`browser console/page errors during the demo:\n  ${errors.join('\n  ')}`);
    }
    return { ok: true, detail: 'posthog-js capture reached the server and the widget answered from it' };
  } catch (e) {
    await page.screenshot({ path: path.join(args.out, 'demo-failure.png'), timeout: 5_000 }).catch(() => {});
    if (errors.length && !(e.message || '').includes('browser console/page errors')) {
      console.log(`[${S}] browser errors so far:\n  ${errors.join('\n  ')}`);
    }
    if (failedRequests.length) console.log(`[${S}] failed requests:\n  ${failedRequests.join('\n  ')}`);
    if (blocked.length) console.log(`[${S}] blocked external (non-loopback) requests:\n  ${blocked.join('\n  ')}`);
    if (consoleLines.length) console.log(`[${S}] browser console:\n  ${consoleLines.join('\n  ')}`);
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
  const errors = [];
  const consoleLines = [];
  const blocked = [];
  const failedRequests = [];
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, userAgent: USER_AGENT });
  await blockExternal(context, blocked);
  const page = await context.newPage();
  page.on('console', (m) => {
    consoleLines.push(`${m.type()}: ${m.text()}`);
    if (m.type() === 'error' && !isIgnorableConsole(m)) {
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
      try {
        await page.waitForFunction(() => Boolean(window.__demo && window.__demo.widget && window.__demo.widget.connected), null, {
          timeout: 10_000,
          polling: 100,
        });
      } catch {
        fail('window.__demo.widget.connected never became true: the widget did not connect to the server');
      }
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

    if (errors.length) {
      fail(`browser console/page errors during the proactive scenario:\n  ${errors.join('\n  ')}`);
    }
    return { ok: true, detail: 'three single edits brought a forced-open bulk-edit offer, and its chip was answered' };
  } catch (e) {
    await page.screenshot({ path: path.join(args.out, 'proactive-failure.png'), timeout: 5_000 }).catch(() => {});
    if (errors.length && !(e.message || '').includes('browser console/page errors')) {
      console.log(`[${S}] browser errors so far:\n  ${errors.join('\n  ')}`);
    }
    if (failedRequests.length) console.log(`[${S}] failed requests:\n  ${failedRequests.join('\n  ')}`);
    if (blocked.length) console.log(`[${S}] blocked external (non-loopback) requests:\n  ${blocked.join('\n  ')}`);
    if (consoleLines.length) console.log(`[${S}] browser console:\n  ${consoleLines.join('\n  ')}`);
    throw e;
  } finally {
    await context.close().catch(() => {});
  }
}

// ---------------------------------------------------------------- main

async function main() {
  fs.mkdirSync(args.out, { recursive: true });
  const selected = args.only ? [args.only] : SCENARIOS;
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
  if (selected.includes('webchat') && !fs.existsSync(path.join(WEBCHAT_LIB, 'index.js'))) {
    console.log('FAIL webchat: node_modules/rasa-webchat/lib/index.js is missing (run npm ci)');
    results.set('webchat', false);
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
        const r =
          s === 'webchat'
            ? await scenarioWebchat(browser, staticOrigin)
            : s === 'proactive'
              ? await scenarioProactive(browser)
              : await scenarioDemo(browser);
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
