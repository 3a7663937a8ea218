// The web client in headless Chromium against real beckon-server processes:
// the demo flow, the error codes, reconnect after SIGKILL and restart, rule 9
// across reconnects, heartbeats without a ping API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Server, tempDir, writeSecret, mintToken, serverToken, sleep, until } from './helpers.mjs';
import { startPageServer, launchBrowser, openPage, pageEvent, pageEvents } from './browser.mjs';

let browser;
let pages;
const servers = [];
const start = async (options) => {
  const server = await Server.start(options);
  servers.push(server);
  return server;
};

before(async () => {
  pages = await startPageServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await pages?.close();
  for (const server of servers) await server.stop();
});

test('browser: the demo flow, with alice and her invitees in two pages', async () => {
  const server = await start();
  const [a, b] = [await openPage(browser, pages), await openPage(browser, pages)];
  await a.evaluate(async (url) => {
    await makeClient('alice', { serverUrl: url }).login('alice', 'dev');
  }, server.url);
  await b.evaluate(async (url) => {
    for (const name of ['bob', 'carol', 'dave']) await makeClient(name, { serverUrl: url }).login(name, 'dev');
  }, server.url);
  const id = await a.evaluate(async () => {
    const sent = await clients.alice.sendInvitation(['bob', 'carol', 'dave'], {
      timeoutSeconds: 3,
      extendedData: '{"call":"video"}',
    });
    return sent.invitationId;
  });
  for (const name of ['bob', 'carol', 'dave']) {
    const received = await pageEvent(b, name, { kind: 'INVITATION_RECEIVED', invitationId: id });
    assert.equal(received.inviter, 'alice');
    assert.equal(received.extendedData, '{"call":"video"}');
  }
  await b.evaluate(async (id) => {
    await clients.bob.acceptInvitation(id, { extendedData: 'yes' });
    await clients.carol.refuseInvitation(id);
  }, id);
  assert.equal((await pageEvent(a, 'alice', { kind: 'INVITATION_ACCEPTED', invitationId: id })).invitee, 'bob');
  assert.equal((await pageEvent(a, 'alice', { kind: 'INVITATION_REFUSED', invitationId: id })).invitee, 'carol');
  const timeout = await pageEvent(a, 'alice', { kind: 'INVITATION_RESPONSE_TIMEOUT', invitationId: id });
  assert.deepEqual(timeout.invitees, ['dave']);
  await pageEvent(b, 'dave', { kind: 'INVITATION_TIMEOUT', invitationId: id });
  await pageEvent(a, 'alice', { kind: 'INVITATION_USER_STATE_CHANGED', userId: 'dave', state: 'TIMEOUT' });

  const second = await a.evaluate(async () => (await clients.alice.sendInvitation(['bob'], { timeoutSeconds: 30 })).invitationId);
  await pageEvent(b, 'bob', { kind: 'INVITATION_RECEIVED', invitationId: second });
  await a.evaluate((id) => clients.alice.cancelInvitation(id, { extendedData: 'sorry' }), second);
  const cancelled = await pageEvent(b, 'bob', { kind: 'INVITATION_CANCELLED', invitationId: second });
  assert.equal(cancelled.extendedData, 'sorry');
  await a.evaluate(() => clients.alice.logout());
  await b.evaluate(() => Promise.all(Object.values(clients).map((c) => c.close())));
  assert.deepEqual([...a.errors, ...b.errors], []);
  await a.close();
  await b.close();
});

test('browser: every error code a browser can meet, as its typed error', async () => {
  const dev = await start();
  const dir = tempDir('secret');
  const secret = writeSecret(dir);
  const strict = await start({
    dev: false,
    secretFile: secret.file,
    extra: ['--max-open-invitations', '1', '--max-devices', '1'],
  });
  const closed = net.createServer();
  await new Promise((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = closed.address().port;
  await new Promise((r) => closed.close(r));
  const now = Math.floor(Date.now() / 1000);
  const tokens = {
    good: serverToken(secret.file, 'b-alice'),
    other: serverToken(secret.file, 'b-bob'),
    expired: mintToken(secret.secret, 'b-alice', now - 5),
  };
  const page = await openPage(browser, pages);
  const results = await page.evaluate(
    async ({ dev, strict, closedPort, tokens }) => {
      const r = {};
      const alice = makeClient('alice', { serverUrl: dev });
      const bob = makeClient('bob', { serverUrl: dev });
      const carol = makeClient('carol', { serverUrl: dev });
      r.NOT_LOGGED_IN = await outcome(alice.sendInvitation(['x'], { timeoutSeconds: 5 }));
      await alice.login('alice', 'dev');
      await bob.login('bob', 'dev');
      await carol.login('carol', 'dev');
      r.INVALID_ARGUMENT = await outcome(alice.sendInvitation(['bob'], { timeoutSeconds: 601 }));
      r.INVALID_ARGUMENT_SERVER = await outcome(
        alice.sendInvitation(['bob'], { timeoutSeconds: 30 }).then((s) => alice.cancelInvitation(s.invitationId, { invitees: ['nobody'] })),
      );
      r.TOO_MANY_INVITEES = await outcome(alice.sendInvitation(Array.from({ length: 40 }, (_, i) => `u${i}`), { timeoutSeconds: 5 }));
      r.PAYLOAD_TOO_LARGE = await outcome(alice.sendInvitation(['bob'], { timeoutSeconds: 5, extendedData: '€'.repeat(3000) }));
      r.INVITATION_NOT_FOUND = await outcome(bob.acceptInvitation('0123456789abcdef0123456789abcdef'));
      const sent = await alice.sendInvitation(['bob', 'carol'], { timeoutSeconds: 30 });
      r.NOT_PERMITTED = await outcome(bob.cancelInvitation(sent.invitationId));
      await bob.acceptInvitation(sent.invitationId);
      r.ALREADY_ANSWERED = await outcome(bob.acceptInvitation(sent.invitationId));
      await alice.cancelInvitation(sent.invitationId);
      r.INVITATION_CLOSED = await outcome(carol.refuseInvitation(sent.invitationId));

      const s1 = makeClient('s1', { serverUrl: strict });
      r.AUTH_FAILED = await outcome(s1.login('b-alice', tokens.other));
      r.TOKEN_EXPIRED = await outcome(s1.login('b-alice', tokens.expired));
      await s1.login('b-alice', tokens.good);
      const s2 = makeClient('s2', { serverUrl: strict });
      r.NOT_PERMITTED_DEVICE = await outcome(s2.login('b-alice', tokens.good));
      await s1.sendInvitation(['b-bob'], { timeoutSeconds: 30 });
      r.RATE_LIMITED = await outcome(s1.sendInvitation(['b-carol'], { timeoutSeconds: 30 }));

      r.NETWORK = await outcome(makeClient('n', { serverUrl: `ws://127.0.0.1:${closedPort}` }).login('n', 'dev'));
      return r;
    },
    { dev: dev.url, strict: strict.url, closedPort, tokens },
  );
  const expect = {
    NOT_LOGGED_IN: 'NotLoggedInError',
    INVALID_ARGUMENT: 'InvalidArgumentError',
    INVALID_ARGUMENT_SERVER: 'InvalidArgumentError',
    TOO_MANY_INVITEES: 'TooManyInviteesError',
    PAYLOAD_TOO_LARGE: 'PayloadTooLargeError',
    INVITATION_NOT_FOUND: 'InvitationNotFoundError',
    NOT_PERMITTED: 'NotPermittedError',
    ALREADY_ANSWERED: 'AlreadyAnsweredError',
    INVITATION_CLOSED: 'InvitationClosedError',
    AUTH_FAILED: 'AuthFailedError',
    TOKEN_EXPIRED: 'TokenExpiredError',
    NOT_PERMITTED_DEVICE: 'NotPermittedError',
    RATE_LIMITED: 'RateLimitedError',
    NETWORK: 'NetworkError',
  };
  for (const [key, name] of Object.entries(expect)) {
    const r = results[key];
    assert.equal(r.ok, false, `${key}: ${JSON.stringify(r)}`);
    assert.equal(r.name, name, `${key}: ${JSON.stringify(r)}`);
    assert.equal(r.codeName, key.replace(/_SERVER$|_DEVICE$/, ''), key);
    assert.ok(r.isBeckonError && r.isOwnClass, key);
  }

  // REQUEST_TIMEOUT and SHUTDOWN: the server stops answering (SIGSTOP).
  await dev.pause();
  let late;
  try {
    late = await page.evaluate(async () => {
      const r = {};
      r.REQUEST_TIMEOUT = await outcome(clients.alice.sendInvitation(['bob'], { timeoutSeconds: 5, requestTimeoutMs: 300 }));
      const waiting = outcome(clients.bob.refuseInvitation('0123456789abcdef0123456789abcdef'));
      await clients.bob.close();
      r.SHUTDOWN = await waiting;
      r.SHUTDOWN_AFTER = await outcome(clients.bob.login('bob', 'dev'));
      return r;
    });
  } finally {
    dev.resume();
  }
  assert.equal(late.REQUEST_TIMEOUT.name, 'RequestTimeoutError');
  assert.equal(late.SHUTDOWN.name, 'ShutdownError');
  assert.equal(late.SHUTDOWN_AFTER.name, 'ShutdownError');
  await page.evaluate(() => Promise.all(Object.values(clients).map((c) => c.close())));
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('browser: SIGKILL and restart on the same port: reconnect, re-sent answer, rule 9', async () => {
  const server = await start({ store: 'sqlite', dataDir: tempDir('data') });
  const page = await openPage(browser, pages);
  const id = await page.evaluate(async (url) => {
    const alice = makeClient('alice', { serverUrl: url });
    const bob = makeClient('bob', { serverUrl: url });
    await alice.login('alice', 'dev');
    await bob.login('bob', 'dev');
    return (await alice.sendInvitation(['bob'], { timeoutSeconds: 60 })).invitationId;
  }, server.url);
  await pageEvent(page, 'bob', { kind: 'INVITATION_RECEIVED', invitationId: id });
  await pageEvent(page, 'alice', { kind: 'INVITATION_USER_STATE_CHANGED', userId: 'bob', state: 'RECEIVED' });
  await server.kill('SIGKILL');
  await pageEvent(page, 'bob', { kind: 'CONNECTION_STATE_CHANGED', state: 'RECONNECTING' });
  await pageEvent(page, 'alice', { kind: 'CONNECTION_STATE_CHANGED', state: 'RECONNECTING' });
  // Bob accepts while the server is down: sent after the reconnect.
  await page.evaluate((id) => {
    window.accepting = outcome(clients.bob.acceptInvitation(id));
  }, id);
  await server.restart();
  await until(
    () => page.evaluate(() => clients.alice.connectionState === 'CONNECTED' && clients.bob.connectionState === 'CONNECTED'),
    'both reconnected',
  );
  const accepted = await page.evaluate(() => window.accepting);
  assert.equal(accepted.ok, true, JSON.stringify(accepted));
  await pageEvent(page, 'alice', { kind: 'INVITATION_ACCEPTED', invitationId: id });
  await sleep(500);
  assert.equal((await pageEvents(page, 'bob', { kind: 'INVITATION_RECEIVED', invitationId: id })).length, 1);
  assert.equal((await pageEvents(page, 'alice', { kind: 'INVITATION_ACCEPTED', invitationId: id })).length, 1);
  const states = await pageEvents(page, 'bob', { kind: 'CONNECTION_STATE_CHANGED' });
  assert.deepEqual(
    states.map((e) => `${e.state}/${e.reason}`),
    ['CONNECTING/LOGIN', 'CONNECTED/LOGIN', 'RECONNECTING/NETWORK', 'CONNECTED/LOGIN'],
  );

  // And a second invitation across another restart: shown once.
  const id2 = await page.evaluate(async () => (await clients.alice.sendInvitation(['bob'], { timeoutSeconds: 60 })).invitationId);
  await pageEvent(page, 'bob', { kind: 'INVITATION_RECEIVED', invitationId: id2 });
  await server.kill('SIGKILL');
  await server.restart();
  await until(
    () => page.evaluate(() => clients.bob.events.filter((e) => e.state === 'CONNECTED').length === 3),
    'bob reconnected again',
  );
  await sleep(500);
  assert.equal((await pageEvents(page, 'bob', { kind: 'INVITATION_RECEIVED', invitationId: id2 })).length, 1);
  await page.evaluate((id) => clients.bob.refuseInvitation(id), id2);
  await pageEvent(page, 'alice', { kind: 'INVITATION_REFUSED', invitationId: id2 });
  await page.evaluate(() => Promise.all(Object.values(clients).map((c) => c.close())));
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('browser: a silent server is noticed without a ping API (a probe), and the client resumes', async () => {
  const server = await start({ extra: ['--heartbeat-secs', '1'] });
  const page = await openPage(browser, pages);
  await page.evaluate(async (url) => {
    await makeClient('alice', { serverUrl: url, requestTimeoutMs: 2000 }).login('alice', 'dev');
  }, server.url);
  // Idle but alive for a while: the probes keep the connection.
  await sleep(3500);
  assert.equal(await page.evaluate(() => clients.alice.connectionState), 'CONNECTED');
  await server.pause();
  try {
    await pageEvent(page, 'alice', { kind: 'CONNECTION_STATE_CHANGED', state: 'RECONNECTING' }, 10_000);
  } finally {
    server.resume();
  }
  await until(() => page.evaluate(() => clients.alice.connectionState === 'CONNECTED'), 'alice reconnected');
  await page.evaluate(() => clients.alice.sendInvitation(['bob'], { timeoutSeconds: 5 }));
  await page.evaluate(() => clients.alice.close());
  await page.close();
});
