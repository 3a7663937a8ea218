// The web phone page in a real headless Chromium against a real
// beckon-server (--dev, --store memory, --web): two pages, alice and bob;
// alice calls bob, bob's page rings with a countdown, bob accepts and alice
// sees ACCEPTED; a second call bob refuses; a third alice cancels; an error
// shown on the page; "Reconnecting…" when the server goes away. A screenshot
// of each step goes to build/web-screenshots/NN-step.png.
//
// Needs target/debug/beckon-server (BECKON_SERVER overrides), playwright-core
// in bindings/web/node_modules, and /usr/bin/chromium (CHROMIUM overrides).
// Every wait is bounded.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const require = createRequire(join(ROOT, 'bindings/web/package.json'));
const { chromium } = require('playwright-core');

const SERVER = process.env.BECKON_SERVER ?? join(ROOT, 'target/debug/beckon-server');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'build/web-screenshots');
const WAIT = 10_000;

let server; // { child, pid, dir, web, listen }
let browser;
let alice; // { page, problems: [] }
let bob;
let shot = 0;

// ---- helpers ----------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value, at most `ms`. */
async function until(what, check, ms = WAIT) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
    await sleep(50);
  }
}

async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), 'beckon-web-page-'));
  const portFile = join(dir, 'ports.json');
  const child = spawn(SERVER, [
    'serve', '--store', 'memory', '--dev',
    '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--web', '127.0.0.1:0',
    '--port-file', portFile, '--exit-on-stdin-close',
  ], { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, BECKON_LOG: 'warn' } });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const ports = await until('the port file', () => {
    if (child.exitCode !== null) throw new Error(`beckon-server exited ${child.exitCode}: ${log}`);
    return existsSync(portFile) && JSON.parse(readFileSync(portFile, 'utf8'));
  });
  const port = (addr) => Number(addr.split(':').pop());
  return { child, pid: child.pid, dir, web: port(ports.web), listen: port(ports.listen), log: () => log };
}

function killServer() {
  if (!server || server.child.exitCode !== null || server.child.signalCode !== null) return;
  try { process.kill(server.pid, 'SIGKILL'); } catch { /* gone already */ }
}

async function openPage(name) {
  const context = await browser.newContext({ viewport: { width: 412, height: 860 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  await page.goto(`http://127.0.0.1:${server.web}/?user=${name}`, { timeout: WAIT });
  return { name, page, problems };
}

const $ = (who, testid) => who.page.locator(`[data-testid="${testid}"]`);

async function text(who, testid) {
  return (await $(who, testid).first().textContent()).trim();
}

async function screenshot(who, step) {
  shot += 1;
  const file = join(SHOTS, `${String(shot).padStart(2, '0')}-${step}.png`);
  await who.page.screenshot({ path: file, fullPage: true, timeout: WAIT });
  return file;
}

async function logIn(who) {
  await until(`${who.name}'s login button`, async () => !(await $(who, 'login-button').isDisabled()));
  assert.equal(await $(who, 'login-user').inputValue(), who.name);
  await $(who, 'login-button').click();
  await until(`${who.name} connected`, async () =>
    (await $(who, 'connection-state').getAttribute('data-state')) === 'CONNECTED');
  await until(`${who.name} logged in`, async () => (await $(who, 'me').isVisible()));
}

/** The newest outgoing call card of `who`, and its invitation id. */
async function newestOutgoing(who) {
  const card = $(who, 'outgoing-call').first();
  await card.waitFor({ state: 'visible', timeout: WAIT });
  return { card, id: await card.getAttribute('data-invitation-id') };
}

function incomingCard(who, id) {
  return who.page.locator(`[data-testid="incoming-call"][data-invitation-id="${id}"]`);
}

async function inviteeState(card, user) {
  return card.locator(`tr[data-user="${user}"] [data-testid="invitee-state"]`).getAttribute('data-state');
}

async function call(who, invitees, timeout = 30, data = '') {
  await $(who, 'call-invitees').fill(invitees);
  await $(who, 'call-timeout').fill(String(timeout));
  await $(who, 'call-data').fill(data);
  const before = await $(who, 'outgoing-call').count();
  await $(who, 'call-button').click();
  await until(`${who.name}'s call to appear`, async () => (await $(who, 'outgoing-call').count()) === before + 1);
  return newestOutgoing(who);
}

/** Waits for `id` to ring on `who`'s page; checks the countdown runs. */
async function ringing(who, id, timeout) {
  const card = incomingCard(who, id);
  await card.waitFor({ state: 'visible', timeout: WAIT });
  const countdown = card.locator('[data-testid="incoming-countdown"]');
  const seconds = async () => {
    const m = /^(\d+):(\d\d)$/.exec((await countdown.textContent()).trim());
    return m ? Number(m[1]) * 60 + Number(m[2]) : null;
  };
  const first = await until('a countdown', seconds);
  assert.ok(first <= timeout && first >= timeout - 3, `countdown ${first} for a ${timeout} s call`);
  await until('the countdown to tick', async () => (await seconds()) < first, 3000);
  assert.equal(await card.locator('[data-testid="incoming-status"]').textContent(), 'Ringing');
  assert.ok(await card.locator('[data-testid="accept-button"]').isVisible());
  assert.ok(await card.locator('[data-testid="refuse-button"]').isVisible());
  return card;
}

// ---- the run ----------------------------------------------------------------

before(async () => {
  assert.ok(existsSync(SERVER), `${SERVER} is missing: cargo build -p beckon-server`);
  mkdirSync(SHOTS, { recursive: true });
  for (const f of (await import('node:fs')).readdirSync(SHOTS)) {
    if (f.endsWith('.png')) rmSync(join(SHOTS, f));
  }
  server = await startServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  alice = await openPage('alice');
  bob = await openPage('bob');
});

after(async () => {
  const closing = browser?.close().catch(() => {});
  await Promise.race([closing, sleep(5000)]);
  killServer();
  if (server) rmSync(server.dir, { recursive: true, force: true });
});

test('the page loads from the server, dev mode hides the token field', async () => {
  for (const who of [alice, bob]) {
    await until('the server URL', async () => (await text(who, 'server-url')).startsWith('ws://'));
    assert.equal(await text(who, 'server-url'), `ws://127.0.0.1:${server.listen}`);
    assert.equal(await $(who, 'token-field').isVisible(), false);
    assert.ok(await $(who, 'dev-hint').isVisible());
    assert.match(await text(who, 'device-id'), /^web-[0-9a-f]{12}$/);
    assert.equal(await text(who, 'connection-text'), 'Not connected');
  }
  assert.notEqual(await text(alice, 'device-id'), await text(bob, 'device-id'));
  await screenshot(alice, 'alice-page-loaded');
});

test('alice and bob log in', async () => {
  await logIn(alice);
  await screenshot(alice, 'alice-logged-in');
  await logIn(bob);
  assert.equal(await text(bob, 'connection-text'), 'Connected');
  assert.equal(await $(bob, 'call-button').isDisabled(), false);
  await screenshot(bob, 'bob-logged-in');
});

test('alice calls bob, bob rings with a countdown and accepts, alice sees ACCEPTED', async () => {
  const { card, id } = await call(alice, 'bob', 30, '{"call":"video"}');
  assert.match(id, /^[0-9a-f]{32}$/);
  await until('bob RECEIVED on alice\'s page', async () => (await inviteeState(card, 'bob')) === 'RECEIVED');
  assert.match(await card.locator('[data-testid="call-countdown"]').textContent(), /^0:[0-3]\d$/);
  await screenshot(alice, 'alice-calling-bob');
  const ring = await ringing(bob, id, 30);
  assert.equal(await ring.locator('[data-testid="incoming-inviter"]').textContent(), 'alice');
  assert.match(await ring.locator('[data-testid="incoming-data"]').textContent(), /\{"call":"video"\}/);
  assert.match(await bob.page.title(), /Ringing/);
  await screenshot(bob, 'bob-ringing');
  await ring.locator('[data-testid="accept-button"]').click();
  await until('bob\'s card to say Accepted', async () =>
    (await ring.locator('[data-testid="incoming-status"]').textContent()) === 'Accepted');
  assert.equal(await ring.locator('[data-testid="accept-button"]').isVisible(), false);
  await screenshot(bob, 'bob-accepted');
  await until('ACCEPTED on alice\'s page', async () => (await inviteeState(card, 'bob')) === 'ACCEPTED');
  assert.equal(await card.locator('[data-testid="invitee-state"]').textContent(), 'Accepted');
  assert.equal(await card.locator('[data-testid="call-status"]').textContent(), 'Answered');
  assert.equal(await card.locator('[data-testid="cancel-button"]').isVisible(), false);
  await until('the accept in alice\'s log', async () => (await text(alice, 'log')).includes(`bob accepted ${id}`));
  await screenshot(alice, 'alice-sees-accepted');
});

test('a second call bob refuses', async () => {
  const { card, id } = await call(alice, 'bob', 20);
  const ring = await ringing(bob, id, 20);
  await screenshot(bob, 'bob-ringing-again');
  await ring.locator('[data-testid="refuse-button"]').click();
  await until('bob\'s card to say Refused', async () =>
    (await ring.locator('[data-testid="incoming-status"]').textContent()) === 'Refused');
  await screenshot(bob, 'bob-refused');
  await until('REJECTED on alice\'s page', async () => (await inviteeState(card, 'bob')) === 'REJECTED');
  assert.equal(await card.locator('[data-testid="call-status"]').textContent(), 'Refused');
  await screenshot(alice, 'alice-sees-refused');
});

test('a third call alice cancels', async () => {
  const { card, id } = await call(alice, 'bob, carol', 45);
  await until('carol OFFLINE', async () => (await inviteeState(card, 'carol')) === 'OFFLINE');
  const ring = await ringing(bob, id, 45);
  await until('bob RECEIVED', async () => (await inviteeState(card, 'bob')) === 'RECEIVED');
  await screenshot(alice, 'alice-calling-bob-and-carol');
  await card.locator('[data-testid="cancel-button"]').click();
  await until('the call cancelled on alice\'s page', async () =>
    (await card.locator('[data-testid="call-status"]').textContent()) === 'Cancelled');
  assert.equal(await inviteeState(card, 'bob'), 'CANCELLED');
  assert.equal(await inviteeState(card, 'carol'), 'CANCELLED');
  await screenshot(alice, 'alice-cancelled');
  await until('bob\'s ringing to stop', async () =>
    (await ring.locator('[data-testid="incoming-status"]').textContent()) === 'Cancelled by the caller');
  assert.equal(await ring.locator('[data-testid="accept-button"]').isVisible(), false);
  assert.doesNotMatch(await bob.page.title(), /Ringing/);
  await screenshot(bob, 'bob-sees-cancelled');
});

test('errors show the code name and message', async () => {
  await $(alice, 'call-invitees').fill('bob, b@d/id');
  await $(alice, 'call-button').click();
  await until('an error', async () => (await $(alice, 'error').isVisible()));
  assert.match(await text(alice, 'error'), /^Call: INVALID_ARGUMENT: .+/);
  await until('the error in the log', async () =>
    (await alice.page.locator('[data-testid="log"] li[data-source="error"]').count()) === 1);
  await screenshot(alice, 'alice-error');
  // The next action clears it.
  await $(alice, 'call-invitees').fill('');
});

test('no script errors and no CSP violations on either page', async () => {
  assert.deepEqual(alice.problems, []);
  assert.deepEqual(bob.problems, []);
});

test('the pages show "Reconnecting…" when the server goes away', async () => {
  killServer();
  for (const who of [alice, bob]) {
    await until(`${who.name} reconnecting`, async () =>
      (await $(who, 'connection-state').getAttribute('data-state')) === 'RECONNECTING');
    assert.equal(await text(who, 'connection-text'), 'Reconnecting…');
  }
  await screenshot(bob, 'bob-reconnecting');
});
