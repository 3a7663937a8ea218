// Every error code a web client can meet, as its typed error, against real
// beckon-server processes (one in dev mode, one with a secret and tight limits).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import * as beckon from '../dist/beckon.js';
import {
  Server,
  makeClient,
  waitEvent,
  rejectsWith,
  mintToken,
  serverToken,
  writeSecret,
  tempDir,
  withTimeout,
  sleep,
  WAIT_MS,
  closeClients,
} from './helpers.mjs';

const {
  BeckonError,
  ErrorCode,
  InvalidArgumentError,
  TooManyInviteesError,
  PayloadTooLargeError,
  NotLoggedInError,
  AuthFailedError,
  TokenExpiredError,
  InvitationNotFoundError,
  NotPermittedError,
  AlreadyAnsweredError,
  InvitationClosedError,
  NetworkError,
  RequestTimeoutError,
  RateLimitedError,
  ShutdownError,
} = beckon;

let dev;
let strict;
let secret;
const clients = [];
const on = (server, options) => {
  const c = makeClient(server.url, options);
  clients.push(c);
  return c;
};
const now = () => Math.floor(Date.now() / 1000);

before(async () => {
  dev = await Server.start();
  secret = writeSecret(tempDir('secret'));
  strict = await Server.start({
    dev: false,
    secretFile: secret.file,
    extra: ['--max-open-invitations', '1', '--max-devices', '2'],
  });
});
after(async () => {
  await closeClients();
  await dev.stop();
  await strict.stop();
});

test('BeckonError.fromCode gives the class of every code', () => {
  for (const [name, code] of Object.entries(ErrorCode)) {
    if (code === 0) continue;
    const error = BeckonError.fromCode(code, 'm');
    assert.equal(error.code, code);
    assert.equal(error.codeName, name);
    assert.ok(error instanceof BeckonError && error instanceof Error);
    assert.equal(error.message, 'm');
    assert.equal(error.name, error.constructor.name);
    assert.match(error.name, /^[A-Z][A-Za-z]+Error$/);
  }
  assert.equal(new BeckonError('plain').name, 'BeckonError');
  assert.equal(BeckonError.fromCode(99).codeName, 'UNKNOWN');
});

test('INVALID_ARGUMENT: checked by the client, and by the server', async () => {
  assert.throws(() => new beckon.Client({ serverUrl: 'http://x' }), InvalidArgumentError);
  const alice = on(dev);
  await rejectsWith(assert, alice.login('bad user'), InvalidArgumentError, 'INVALID_ARGUMENT');
  await alice.login('ia-alice', 'dev');
  await rejectsWith(assert, alice.login('ia-alice', 'dev'), InvalidArgumentError, 'INVALID_ARGUMENT');
  await rejectsWith(assert, alice.sendInvitation(['ia-bob'], { timeoutSeconds: 0 }), InvalidArgumentError, 'INVALID_ARGUMENT');
  await rejectsWith(assert, alice.sendInvitation(['ia-alice'], { timeoutSeconds: 5 }), InvalidArgumentError, 'INVALID_ARGUMENT');
  await rejectsWith(assert, alice.sendInvitation([], { timeoutSeconds: 5 }), InvalidArgumentError, 'INVALID_ARGUMENT');
  // Longer than a timer can wait (2^31 - 1 ms): refused, not fired at once.
  await rejectsWith(
    assert,
    alice.sendInvitation(['ia-bob'], { timeoutSeconds: 5, requestTimeoutMs: 2 ** 31 }),
    InvalidArgumentError,
    'INVALID_ARGUMENT',
  );
  await rejectsWith(assert, alice.acceptInvitation('not-an-id'), InvalidArgumentError, 'INVALID_ARGUMENT');
  await rejectsWith(
    assert,
    alice.sendInvitation(['ia-bob'], { timeoutSeconds: 5, extendedData: 'a\0b' }),
    InvalidArgumentError,
    'INVALID_ARGUMENT',
  );
  // The server's own check: a cancel naming a user who is not an invitee.
  const sent = await alice.sendInvitation(['ia-bob'], { timeoutSeconds: 30 });
  const error = await alice.cancelInvitation(sent.invitationId, { invitees: ['ia-carol'] }).catch((e) => e);
  assert.ok(error instanceof InvalidArgumentError, String(error));
  assert.match(error.message, /ia-carol/);
  await alice.logout();
});

test('TOO_MANY_INVITEES and PAYLOAD_TOO_LARGE: against the limits the server announced', async () => {
  const alice = on(dev);
  await alice.login('big-alice', 'dev');
  const many = Array.from({ length: 33 }, (_, i) => `u${i}`);
  await rejectsWith(assert, alice.sendInvitation(many, { timeoutSeconds: 5 }), TooManyInviteesError, 'TOO_MANY_INVITEES');
  await rejectsWith(
    assert,
    alice.sendInvitation(['b'], { timeoutSeconds: 5, extendedData: 'é'.repeat(4097) }), // 8194 bytes
    PayloadTooLargeError,
    'PAYLOAD_TOO_LARGE',
  );
  await rejectsWith(
    assert,
    alice.sendInvitation(['b'], { timeoutSeconds: 5, notification: { title: 'x'.repeat(257) } }),
    PayloadTooLargeError,
    'PAYLOAD_TOO_LARGE',
  );
  // 8 KiB exactly is fine.
  await alice.sendInvitation(['b'], { timeoutSeconds: 5, extendedData: 'x'.repeat(8192) });
  await alice.logout();
});

test('NOT_LOGGED_IN: before a login, after a logout', async () => {
  const alice = on(dev);
  await rejectsWith(assert, alice.sendInvitation(['b'], { timeoutSeconds: 5 }), NotLoggedInError, 'NOT_LOGGED_IN');
  await rejectsWith(assert, alice.logout(), NotLoggedInError, 'NOT_LOGGED_IN');
  await alice.login('nli-alice', 'dev');
  await alice.logout();
  await rejectsWith(assert, alice.acceptInvitation('0'.repeat(32)), NotLoggedInError, 'NOT_LOGGED_IN');
});

test('AUTH_FAILED and TOKEN_EXPIRED from a server with a secret; a real token works', async () => {
  const alice = on(strict);
  await rejectsWith(assert, alice.login('auth-alice', 'v1.99999999999.00'), AuthFailedError, 'AUTH_FAILED');
  assert.deepEqual(alice.events.map((e) => e.state), ['CONNECTING', 'DISCONNECTED']);
  assert.equal(alice.events[1].reason, 'LOGIN');
  // A token for another user.
  await rejectsWith(assert, alice.login('auth-alice', serverToken(secret.file, 'auth-bob')), AuthFailedError, 'AUTH_FAILED');
  await rejectsWith(
    assert,
    alice.login('auth-alice', mintToken(secret.secret, 'auth-alice', now() - 10)),
    TokenExpiredError,
    'TOKEN_EXPIRED',
  );
  await alice.login('auth-alice', serverToken(secret.file, 'auth-alice'));
  assert.equal(alice.connectionState, 'CONNECTED');
  await alice.logout();
});

test('a token that expires: TOKEN_WILL_EXPIRE, then DISCONNECTED (TOKEN_EXPIRED); renewToken keeps the session', async () => {
  const alice = on(strict);
  await alice.login('exp-alice', mintToken(secret.secret, 'exp-alice', now() + 2));
  const warned = await waitEvent(alice, { kind: 'TOKEN_WILL_EXPIRE' });
  assert.ok(warned.secondsLeft <= 30);
  await waitEvent(alice, { kind: 'CONNECTION_STATE_CHANGED', state: 'DISCONNECTED' });
  assert.equal(alice.connectionState, 'DISCONNECTED');
  assert.equal(alice.events.at(-1).reason, 'TOKEN_EXPIRED');
  assert.equal(alice.userId, null);
  await rejectsWith(assert, alice.sendInvitation(['x'], { timeoutSeconds: 5 }), NotLoggedInError, 'NOT_LOGGED_IN');

  const bob = on(strict);
  await bob.login('exp-bob', mintToken(secret.secret, 'exp-bob', now() + 3));
  await bob.renewToken(mintToken(secret.secret, 'exp-bob', now() + 3600));
  await sleep(4000);
  assert.equal(bob.connectionState, 'CONNECTED');
  await rejectsWith(assert, bob.renewToken('v1.1.00'), AuthFailedError, 'AUTH_FAILED');
  await bob.logout();
});

test('INVITATION_NOT_FOUND, NOT_PERMITTED, ALREADY_ANSWERED, INVITATION_CLOSED', async () => {
  const [alice, bob, carol] = [on(dev), on(dev), on(dev)];
  await alice.login('hub-alice', 'dev');
  await bob.login('hub-bob', 'dev');
  await carol.login('hub-carol', 'dev');
  await rejectsWith(assert, bob.acceptInvitation('0123456789abcdef0123456789abcdef'), InvitationNotFoundError, 'INVITATION_NOT_FOUND');
  const sent = await alice.sendInvitation(['hub-bob', 'hub-carol'], { timeoutSeconds: 30 });
  const id = sent.invitationId;
  await rejectsWith(assert, bob.cancelInvitation(id), NotPermittedError, 'NOT_PERMITTED');
  await rejectsWith(assert, alice.acceptInvitation(id), NotPermittedError, 'NOT_PERMITTED');
  await bob.acceptInvitation(id);
  await rejectsWith(assert, bob.refuseInvitation(id), AlreadyAnsweredError, 'ALREADY_ANSWERED');
  const cancel = await alice.cancelInvitation(id, { invitees: ['hub-carol'] });
  assert.deepEqual(cancel.errorInvitees, []);
  await rejectsWith(assert, carol.acceptInvitation(id), InvitationClosedError, 'INVITATION_CLOSED');
  await rejectsWith(assert, alice.cancelInvitation(id), InvitationClosedError, 'INVITATION_CLOSED');
  await Promise.all([alice.logout(), bob.logout(), carol.logout()]);
});

test('NOT_PERMITTED: a device over the server\'s max_devices', async () => {
  const token = serverToken(secret.file, 'dev-alice');
  const [one, two, three] = [on(strict), on(strict), on(strict)];
  await one.login('dev-alice', token);
  await two.login('dev-alice', token);
  await rejectsWith(assert, three.login('dev-alice', token), NotPermittedError, 'NOT_PERMITTED');
  await Promise.all([one.logout(), two.logout()]);
});

test('RATE_LIMITED: over the server\'s open-invitation quota', async () => {
  const alice = on(strict);
  await alice.login('rl-alice', serverToken(secret.file, 'rl-alice'));
  const first = await alice.sendInvitation(['rl-bob'], { timeoutSeconds: 30 });
  await rejectsWith(assert, alice.sendInvitation(['rl-carol'], { timeoutSeconds: 30 }), RateLimitedError, 'RATE_LIMITED');
  await alice.cancelInvitation(first.invitationId);
  await alice.sendInvitation(['rl-carol'], { timeoutSeconds: 30 });
  await alice.logout();
});

test('NETWORK: nothing listening; REQUEST_TIMEOUT: a server that does not answer', async () => {
  // A port that was free a moment ago.
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise((r) => probe.close(r));
  const lost = makeClient(`ws://127.0.0.1:${port}`);
  await rejectsWith(assert, lost.login('net-alice', 'dev'), NetworkError, 'NETWORK');
  assert.equal(lost.connectionState, 'DISCONNECTED');

  // A TCP server that accepts and says nothing: the login times out.
  const silent = net.createServer(() => {});
  const sockets = [];
  silent.on('connection', (s) => sockets.push(s));
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  const mute = makeClient(`ws://127.0.0.1:${silent.address().port}`, { requestTimeoutMs: 300 });
  await rejectsWith(assert, mute.login('rt-alice', 'dev'), RequestTimeoutError, 'REQUEST_TIMEOUT');
  sockets.forEach((s) => s.destroy());
  await new Promise((r) => silent.close(r));

  // A real server that stops answering (SIGSTOP) while logged in.
  const server = await Server.start();
  try {
    const alice = makeClient(server.url);
    await alice.login('rt-bob', 'dev');
    await server.pause();
    try {
      await rejectsWith(
        assert,
        alice.sendInvitation(['x'], { timeoutSeconds: 5, requestTimeoutMs: 300 }),
        RequestTimeoutError,
        'REQUEST_TIMEOUT',
      );
      // SHUTDOWN: closing the client while a request waits.
      const waiting = alice.acceptInvitation('0123456789abcdef0123456789abcdef').catch((e) => e);
      await withTimeout(alice.close(), WAIT_MS, 'close');
      const error = await waiting;
      assert.ok(error instanceof ShutdownError, String(error));
      await rejectsWith(assert, alice.login('rt-bob', 'dev'), ShutdownError, 'SHUTDOWN');
    } finally {
      server.resume();
    }
  } finally {
    await server.stop();
  }
});

test('SHUTDOWN: a login cancelled by a logout', async () => {
  const silent = net.createServer(() => {});
  const sockets = [];
  silent.on('connection', (s) => sockets.push(s));
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  const alice = makeClient(`ws://127.0.0.1:${silent.address().port}`, { requestTimeoutMs: 1000 });
  const login = alice.login('sd-alice', 'dev').catch((e) => e);
  await sleep(50);
  await withTimeout(alice.logout(), WAIT_MS, 'logout');
  assert.ok((await login) instanceof ShutdownError);
  assert.deepEqual(alice.events.map((e) => `${e.state}/${e.reason}`), ['CONNECTING/LOGIN', 'DISCONNECTED/LOGOUT']);
  sockets.forEach((s) => s.destroy());
  await new Promise((r) => silent.close(r));
});

test('KICKED_OUT: the same device id logs in elsewhere', async () => {
  const first = on(dev, { deviceId: 'kick-phone' });
  const second = on(dev, { deviceId: 'kick-phone' });
  await first.login('kick-alice', 'dev');
  await second.login('kick-alice', 'dev');
  await waitEvent(first, { kind: 'CONNECTION_STATE_CHANGED', state: 'DISCONNECTED' });
  assert.equal(first.events.at(-1).reason, 'KICKED_OUT');
  assert.equal(first.userId, null);
  await sleep(300);
  assert.equal(first.connectionState, 'DISCONNECTED'); // and it does not reconnect
  assert.equal(second.connectionState, 'CONNECTED');
  await second.logout();
});
