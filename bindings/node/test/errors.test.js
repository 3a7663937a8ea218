'use strict';
// Bad input: rejected by the binding before the C call where JavaScript can
// tell, otherwise by the library; either way as the error class of its code.

const test = require('node:test');
const assert = require('node:assert/strict');
const { beckon, hubUrl, within, nextEvent, clients, spyOnC } = require('./helpers');
const { BeckonError, InvalidArgumentError, ErrorCode } = beckon;

/** Asserts `promise` rejects with an instance of `Class` whose message names `field`. */
async function rejectsWith(promise, Class, field) {
  const error = await within(
    promise.then(
      () => assert.fail(`expected ${Class.name}, but it succeeded`),
      (e) => e,
    ),
    5000,
    `a ${Class.name}`,
  );
  assertError(error, Class, field);
  return error;
}

function assertError(error, Class, field) {
  assert.ok(error instanceof Class, `expected ${Class.name}, got ${error && error.name}: ${error && error.message}`);
  assert.ok(error instanceof BeckonError);
  assert.ok(error instanceof Error);
  assert.equal(error.code, Class.code);
  assert.equal(error.codeName, Object.keys(ErrorCode).find((k) => ErrorCode[k] === Class.code));
  assert.equal(error.name, Class.name);
  assert.ok(error.message.length > 0);
  if (field !== undefined) assert.ok(error.message.includes(field), `"${error.message}" does not name ${field}`);
}

test('every C error code has its own class under BeckonError, named as the library names it', () => {
  const fn = require('../lib/native').library().fn;
  const seen = new Set();
  for (const [name, code] of Object.entries(ErrorCode)) {
    if (code === 0) continue;
    const error = BeckonError.fromCode(code, 'detail');
    assert.equal(error.codeName, name);
    assert.equal(fn.beckon_error_name(code), name, `the library names code ${code} differently`);
    assert.equal(error.code, code);
    assert.equal(error.message, 'detail');
    const Class = error.constructor;
    assert.notEqual(Class, BeckonError);
    assert.equal(beckon[Class.name], Class, `${Class.name} is not exported`);
    assert.equal(Class.code, code);
    seen.add(Class);
  }
  assert.equal(seen.size, 17);
  assert.equal(ErrorCode.WOULD_DEADLOCK, 17);
  assert.equal(beckon.WouldDeadlockError.code, 17);
  assert.equal(fn.beckon_error_name(18), 'UNKNOWN', 'a code after the last one');
  const unknown = BeckonError.fromCode(99, '');
  assert.equal(unknown.constructor, BeckonError);
  assert.equal(unknown.codeName, 'UNKNOWN');
  assert.equal(unknown.code, 99);
});

test('wrong types and values are rejected before the C call', async (t) => {
  const url = hubUrl('precheck');
  const { client, loggedIn } = clients(t, url);
  const newClient = spyOnC(t, 'beckon_client_new');
  const bad = [
    [undefined, 'options.serverUrl'],
    [{}, 'options.serverUrl'],
    [{ serverUrl: '' }, 'options.serverUrl'],
    [{ serverUrl: 42 }, 'options.serverUrl'],
    [{ serverUrl: url, dispatch: 'threads' }, 'options.dispatch'],
    [{ serverUrl: url, dispatch: 2 }, 'options.dispatch'],
    [{ serverUrl: url, dispatch: 'toString' }, 'options.dispatch'],
    [{ serverUrl: url, dispatch: 'pool', pollIntervalMs: 5 }, 'options.pollIntervalMs'],
    [{ serverUrl: url, requestTimeoutMs: 1.5 }, 'options.requestTimeoutMs'],
    [{ serverUrl: url, requestTimeoutMs: 2 ** 32 }, 'options.requestTimeoutMs'],
    [{ serverUrl: url, pollIntervalMs: 5 }, 'options.pollIntervalMs'],
    [{ serverUrl: url, severUrl: url }, 'severUrl'],
    [{ serverUrl: url, deviceId: ['x'] }, 'options.deviceId'],
  ];
  for (const [options, field] of bad) {
    assert.throws(
      () => new beckon.Client(options),
      (e) => {
        assertError(e, InvalidArgumentError, field);
        return true;
      },
    );
  }
  assert.equal(newClient.calls(), 0, 'a bad option reached beckon_client_new');

  const alice = await loggedIn('alice');
  const login = spyOnC(t, 'beckon_client_login');
  const send = spyOnC(t, 'beckon_send_invitation');
  const cancel = spyOnC(t, 'beckon_cancel_invitation_ex');
  const accept = spyOnC(t, 'beckon_accept_invitation_ex');
  const fresh = client();
  await rejectsWith(fresh.login(), InvalidArgumentError, 'userId');
  await rejectsWith(fresh.login(7), InvalidArgumentError, 'userId');
  await rejectsWith(fresh.login(''), InvalidArgumentError, 'userId');
  await rejectsWith(fresh.login('bo\0b'), InvalidArgumentError, 'NUL');
  await rejectsWith(fresh.login('bob', 12), InvalidArgumentError, 'token');
  await rejectsWith(fresh.login('\ud800bob'), InvalidArgumentError, 'surrogate');
  assert.equal(login.calls(), 0);

  const sends = [
    [['bob'], undefined, 'options.timeoutSeconds'],
    [['bob'], {}, 'options.timeoutSeconds'],
    [['bob'], { timeoutSeconds: '30' }, 'options.timeoutSeconds'],
    [['bob'], { timeoutSeconds: 0 }, 'options.timeoutSeconds'],
    [['bob'], { timeoutSeconds: 2.5 }, 'options.timeoutSeconds'],
    [['bob'], { timeoutSeconds: NaN }, 'options.timeoutSeconds'],
    [['bob'], { timeoutSeconds: 30, timeout: 30 }, 'timeout'],
    [['bob'], { timeoutSeconds: 30, extendedData: { call: 'video' } }, 'options.extendedData'],
    [['bob'], { timeoutSeconds: 30, onlineOnly: 1 }, 'options.onlineOnly'],
    [['bob'], { timeoutSeconds: 30, notification: 'hi' }, 'options.notification'],
    [['bob'], { timeoutSeconds: 30, notification: { body: 'x' } }, 'body'],
    [['bob'], { timeoutSeconds: 30, notification: { title: 5 } }, 'options.notification.title'],
    ['bob', { timeoutSeconds: 30 }, 'invitees'],
    [[], { timeoutSeconds: 30 }, 'invitees'],
    [['bob', null], { timeoutSeconds: 30 }, 'invitees[1]'],
    [['bob', 'ca\0rol'], { timeoutSeconds: 30 }, 'invitees[1]'],
  ];
  for (const [invitees, options, field] of sends) {
    await rejectsWith(alice.sendInvitation(invitees, options), InvalidArgumentError, field);
  }
  assert.equal(send.calls(), 0);

  await rejectsWith(alice.cancelInvitation(undefined), InvalidArgumentError, 'invitationId');
  await rejectsWith(alice.cancelInvitation('id', { invitees: [] }), InvalidArgumentError, 'options.invitees');
  await rejectsWith(alice.cancelInvitation('id', 'all'), InvalidArgumentError, 'options');
  assert.equal(cancel.calls(), 0);
  await rejectsWith(alice.acceptInvitation(42), InvalidArgumentError, 'invitationId');
  await rejectsWith(alice.acceptInvitation('id', { extendedData: 1 }), InvalidArgumentError, 'extendedData');
  assert.equal(accept.calls(), 0);
  assert.throws(() => alice.poll(-1), InvalidArgumentError);
  assert.throws(() => beckon.createMemoryHub(''), InvalidArgumentError);
  assert.throws(() => beckon.createToken('s', 'alice', -5), InvalidArgumentError);
  assert.throws(() => beckon.createToken('s', 'alice', new Date(NaN)), InvalidArgumentError);
  assert.equal(beckon.diagnostics().strayCallbacks, 0);
});

test('input the library judges is rejected by the C call, as the class of its code', async (t) => {
  const url = hubUrl('cside');
  const { client, loggedIn } = clients(t, url);
  // The library's own messages name the C argument.
  assert.throws(
    () => new beckon.Client({ serverUrl: 'tcp://nowhere' }),
    (e) => {
      assertError(e, InvalidArgumentError, 'server_url');
      return true;
    },
  );
  assert.throws(
    () => new beckon.Client({ serverUrl: url, deviceId: 'has space' }),
    (e) => {
      assertError(e, InvalidArgumentError, 'device_id');
      return true;
    },
  );
  const fresh = client();
  const login = spyOnC(t, 'beckon_client_login');
  await rejectsWith(fresh.login('al ice'), InvalidArgumentError, 'user_id');
  await rejectsWith(fresh.login('x'.repeat(65)), InvalidArgumentError, 'user_id');
  assert.equal(login.calls(), 2, 'these reach the library, which refuses them');
  await rejectsWith(fresh.sendInvitation(['bob'], { timeoutSeconds: 30 }), beckon.NotLoggedInError);

  const alice = await loggedIn('alice');
  const send = spyOnC(t, 'beckon_send_invitation');
  await rejectsWith(alice.sendInvitation(['bob'], { timeoutSeconds: 601 }), InvalidArgumentError, 'timeout');
  await rejectsWith(alice.sendInvitation(['alice'], { timeoutSeconds: 30 }), InvalidArgumentError);
  await rejectsWith(alice.sendInvitation(['b b'], { timeoutSeconds: 30 }), InvalidArgumentError, 'invitees[0]');
  const many = Array.from({ length: 33 }, (_, i) => `user${i}`);
  await rejectsWith(alice.sendInvitation(many, { timeoutSeconds: 30 }), beckon.TooManyInviteesError);
  // Duplicates are folded before the limit is checked.
  const folded = await within(
    alice.sendInvitation([...many.slice(0, 32), 'user0'], { timeoutSeconds: 30 }),
    5000,
    'a send with a duplicate',
  );
  assert.equal(folded.errorInvitees.length, 32);
  await rejectsWith(
    alice.sendInvitation(['bob'], { timeoutSeconds: 30, extendedData: 'x'.repeat(8 * 1024 + 1) }),
    beckon.PayloadTooLargeError,
    'extended_data',
  );
  await rejectsWith(
    alice.sendInvitation(['bob'], { timeoutSeconds: 30, notification: { title: 't'.repeat(257) } }),
    beckon.PayloadTooLargeError,
    'title',
  );
  assert.equal(send.calls(), 7);
  assert.throws(() => alice.poll(0), InvalidArgumentError, 'poll of a thread-mode client');
  assert.throws(() => client({ dispatch: 'pool' }).poll(0), InvalidArgumentError, 'poll of a pool-mode client');
  const polled = client({ dispatch: 'poll', pollIntervalMs: 0 });
  assert.throws(() => polled.poll(3_600_001), InvalidArgumentError);
  assert.equal(beckon.diagnostics().strayCallbacks, 0);
});

test('errors that depend on the hub arrive through the callback, as their classes', async (t) => {
  const url = hubUrl('hubside');
  const { loggedIn } = clients(t, url);
  const alice = await loggedIn('alice');
  const bob = await loggedIn('bob');
  const carol = await loggedIn('carol');
  const unknownId = '0123456789abcdef0123456789abcdef';
  await rejectsWith(alice.cancelInvitation(unknownId), beckon.InvitationNotFoundError);
  await rejectsWith(bob.acceptInvitation(unknownId), beckon.InvitationNotFoundError);

  const rings = nextEvent(bob, 'invitationReceived');
  const sent = await within(alice.sendInvitation(['bob'], { timeoutSeconds: 30 }), 5000, 'send');
  await rings;
  await rejectsWith(carol.acceptInvitation(sent.invitationId), beckon.NotPermittedError);
  await rejectsWith(bob.cancelInvitation(sent.invitationId), beckon.NotPermittedError);
  await rejectsWith(alice.acceptInvitation(sent.invitationId), beckon.NotPermittedError);
  await within(bob.acceptInvitation(sent.invitationId), 5000, 'accept');
  await rejectsWith(bob.refuseInvitation(sent.invitationId), beckon.AlreadyAnsweredError);

  const second = await within(alice.sendInvitation(['bob', 'carol'], { timeoutSeconds: 30 }), 5000, 'send');
  await within(alice.cancelInvitation(second.invitationId, { invitees: ['bob'] }), 5000, 'partial cancel');
  await rejectsWith(bob.acceptInvitation(second.invitationId), beckon.InvitationClosedError);
});

test('tokens: a hub with a secret refuses bad and expired tokens', async (t) => {
  const name = hubUrl('secret').slice('memory://'.length);
  beckon.createMemoryHub(name, { secret: 'sesame', maxInvitees: 40, retentionMs: 60000 });
  assert.throws(() => beckon.createMemoryHub(name), InvalidArgumentError, 'the hub exists already');
  const { client } = clients(t, `memory://${name}`);
  const later = new Date(Date.now() + 3600 * 1000);
  const token = beckon.createToken('sesame', 'alice', later);
  assert.match(token, /^v1\.\d+\.[0-9a-f]{64}$/);
  assert.equal(token, beckon.createToken('sesame', 'alice', Math.floor(later.getTime() / 1000)));
  assert.equal(token, beckon.createToken('sesame', 'alice', BigInt(Math.floor(later.getTime() / 1000))));

  const alice = client();
  await rejectsWith(alice.login('alice'), beckon.AuthFailedError);
  await rejectsWith(alice.login('alice', beckon.createToken('wrong', 'alice', later)), beckon.AuthFailedError);
  await rejectsWith(alice.login('alice', beckon.createToken('sesame', 'bob', later)), beckon.AuthFailedError);
  await rejectsWith(alice.login('alice', beckon.createToken('sesame', 'alice', 1000)), beckon.TokenExpiredError);
  await within(alice.login('alice', token), 5000, 'login with a good token');
  await within(alice.renewToken(beckon.createToken('sesame', 'alice', later)), 5000, 'renew');
  await rejectsWith(alice.renewToken(beckon.createToken('wrong', 'alice', later)), beckon.AuthFailedError);
  // The hub's own invitee limit (40) applies.
  const many = Array.from({ length: 40 }, (_, i) => `user${i}`);
  const sent = await within(alice.sendInvitation(many, { timeoutSeconds: 30 }), 5000, 'send to 40');
  assert.equal(sent.errorInvitees.length, 40);
  await rejectsWith(alice.sendInvitation([...many, 'one-more'], { timeoutSeconds: 30 }), beckon.TooManyInviteesError);
});
