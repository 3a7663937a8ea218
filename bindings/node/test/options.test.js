'use strict';
// Per-operation options of ABI 2.1: requestTimeoutMs on send, accept, refuse
// and cancel (through beckon_*_invitation_ex and their config structs), on
// memory:// hubs, which answer at once. Timeouts that fire need a server:
// test/ws.test.js.

const test = require('node:test');
const assert = require('node:assert/strict');
const { beckon, hubUrl, within, nextEvent, clients, spyOnC } = require('./helpers');
const { InvalidArgumentError } = beckon;

/** The config struct the binding passed to C in call `i` of `spy` (argument `at`). */
function configOf(spy, at, i = -1) {
  return spy.args().at(i)[at];
}

for (const dispatch of ['thread', 'pool', 'poll']) {
  test(`[${dispatch}] send, accept, refuse and cancel with options: the fields reach C and the hub`, async (t) => {
    const url = hubUrl('options');
    const { loggedIn } = clients(t, url, { dispatch });
    const alice = await loggedIn('alice');
    const bob = await loggedIn('bob');
    const carol = await loggedIn('carol');
    const send = spyOnC(t, 'beckon_send_invitation');
    const accept = spyOnC(t, 'beckon_accept_invitation_ex');
    const refuse = spyOnC(t, 'beckon_refuse_invitation_ex');
    const cancel = spyOnC(t, 'beckon_cancel_invitation_ex');

    const bobRings = nextEvent(bob, 'invitationReceived');
    const carolRings = nextEvent(carol, 'invitationReceived');
    const sent = await within(
      alice.sendInvitation(['bob', 'carol'], { timeoutSeconds: 30, extendedData: 'call', requestTimeoutMs: 2500 }),
      5000,
      'send',
    );
    assert.equal(configOf(send, 3).request_timeout_ms, 2500);
    assert.equal((await bobRings).extendedData, 'call');
    await carolRings;

    const accepted = nextEvent(alice, 'invitationAccepted');
    const refused = nextEvent(alice, 'invitationRefused');
    await within(
      bob.acceptInvitation(sent.invitationId, { extendedData: 'on my way', requestTimeoutMs: 1500 }),
      5000,
      'accept',
    );
    await within(carol.refuseInvitation(sent.invitationId, { requestTimeoutMs: 700, extendedData: 'busy' }), 5000, 'refuse');
    assert.deepEqual(
      { ...configOf(accept, 2), struct_size: 0 },
      { struct_size: 0, request_timeout_ms: 1500, extended_data: 'on my way' },
    );
    assert.ok(configOf(accept, 2).struct_size >= 16);
    assert.equal(configOf(refuse, 2).request_timeout_ms, 700);
    assert.equal((await accepted).extendedData, 'on my way');
    assert.equal((await refused).extendedData, 'busy');

    // Cancel for some invitees, with extended data and a timeout; then for all.
    const second = await within(alice.sendInvitation(['bob', 'carol'], { timeoutSeconds: 30 }), 5000, 'send');
    assert.equal(configOf(send, 3).request_timeout_ms, 0, 'omitted: the client timeout');
    const bobCancelled = nextEvent(bob, 'invitationCancelled', (e) => e.invitationId === second.invitationId);
    const some = await within(
      alice.cancelInvitation(second.invitationId, { invitees: ['bob'], extendedData: 'bye', requestTimeoutMs: 3000 }),
      5000,
      'cancel for bob',
    );
    assert.deepEqual(some.errorInvitees, []);
    const cfg = configOf(cancel, 2);
    assert.deepEqual(
      [cfg.request_timeout_ms, cfg.invitees, cfg.invitee_count, cfg.extended_data],
      [3000, ['bob'], 1, 'bye'],
    );
    assert.equal((await bobCancelled).extendedData, 'bye');
    const carolCancelled = nextEvent(carol, 'invitationCancelled', (e) => e.invitationId === second.invitationId);
    await within(alice.cancelInvitation(second.invitationId, { requestTimeoutMs: 4000 }), 5000, 'cancel for all');
    const all = configOf(cancel, 2);
    assert.deepEqual([all.request_timeout_ms, all.invitees, all.invitee_count], [4000, null, 0]);
    await carolCancelled;

    // Without options: every field at its default.
    const third = await within(alice.sendInvitation(['bob'], { timeoutSeconds: 30 }), 5000, 'send');
    await within(bob.refuseInvitation(third.invitationId), 5000, 'refuse without options');
    const plain = configOf(refuse, 2);
    assert.deepEqual([plain.request_timeout_ms, plain.extended_data], [0, null]);
    await assert.rejects(alice.cancelInvitation(third.invitationId), beckon.InvitationClosedError);
    const none = configOf(cancel, 2);
    assert.deepEqual(
      [none.request_timeout_ms, none.invitees, none.invitee_count, none.extended_data],
      [0, null, 0, null],
    );
  });
}

test('bad per-operation options are refused before the C call', async (t) => {
  const url = hubUrl('badoptions');
  const { loggedIn } = clients(t, url);
  const alice = await loggedIn('alice');
  const calls = ['beckon_send_invitation', 'beckon_accept_invitation_ex', 'beckon_refuse_invitation_ex', 'beckon_cancel_invitation_ex'].map(
    (name) => spyOnC(t, name),
  );
  const id = '0123456789abcdef0123456789abcdef';
  const operations = {
    send: (o) => alice.sendInvitation(['bob'], { timeoutSeconds: 30, ...o }),
    accept: (o) => alice.acceptInvitation(id, o),
    refuse: (o) => alice.refuseInvitation(id, o),
    cancel: (o) => alice.cancelInvitation(id, o),
  };
  const bad = [
    [{ requestTimeoutMs: 0 }, 'options.requestTimeoutMs: 0 is outside 1..4294967295'],
    [{ requestTimeoutMs: -1 }, 'options.requestTimeoutMs'],
    [{ requestTimeoutMs: 1.5 }, 'options.requestTimeoutMs: expected an integer'],
    [{ requestTimeoutMs: 2 ** 32 }, 'options.requestTimeoutMs'],
    [{ requestTimeoutMs: '100' }, 'options.requestTimeoutMs: expected an integer, got a string'],
    [{ requestTimeoutMs: NaN }, 'options.requestTimeoutMs'],
    [{ requestTimeout: 100 }, 'unknown option "requestTimeout"'],
    [{ timeoutMs: 100 }, 'unknown option "timeoutMs"'],
  ];
  for (const [name, run] of Object.entries(operations)) {
    for (const [options, message] of bad) {
      const error = await within(
        run(options).then(
          () => assert.fail(`${name} ${JSON.stringify(options)} succeeded`),
          (e) => e,
        ),
        5000,
        name,
      );
      assert.ok(error instanceof InvalidArgumentError, `${name}: ${error}`);
      assert.ok(error.message.includes(message), `${name}: "${error.message}" lacks "${message}"`);
    }
  }
  for (const spy of calls) assert.equal(spy.calls(), 0);

  // null and undefined mean "omitted", as for the other optional options.
  await assert.rejects(operations.accept({ requestTimeoutMs: null }), beckon.InvitationNotFoundError);
  await assert.rejects(operations.cancel({ requestTimeoutMs: undefined }), beckon.InvitationNotFoundError);
  // The largest timeout fits the C field.
  await assert.rejects(operations.refuse({ requestTimeoutMs: 2 ** 32 - 1 }), beckon.InvitationNotFoundError);
  assert.equal(calls[1].args().at(-1)[2].request_timeout_ms, 0);
  assert.equal(calls[2].args().at(-1)[2].request_timeout_ms, 2 ** 32 - 1);
});

test("the library's refusals of the new configs' fields name them", async (t) => {
  const url = hubUrl('configerrors');
  const { loggedIn } = clients(t, url);
  const alice = await loggedIn('alice');
  const bob = await loggedIn('bob');
  const rings = nextEvent(bob, 'invitationReceived');
  const sent = await within(alice.sendInvitation(['bob'], { timeoutSeconds: 30 }), 5000, 'send');
  await rings;
  const big = 'x'.repeat(8 * 1024 + 1);
  const expect = async (promise, Class, field) => {
    const error = await within(
      promise.then(
        () => assert.fail('succeeded'),
        (e) => e,
      ),
      5000,
      field,
    );
    assert.ok(error instanceof Class, `${field}: ${error}`);
    assert.ok(error.message.includes(field), `"${error.message}" does not name ${field}`);
  };
  await expect(alice.cancelInvitation(sent.invitationId, { invitees: ['b b'] }), InvalidArgumentError, 'config.invitees[0]');
  // Size limits are judged where every operation's payload is, and name the
  // field without the prefix ("extended_data: 8193 bytes, the limit is 8192").
  await expect(alice.cancelInvitation(sent.invitationId, { extendedData: big }), beckon.PayloadTooLargeError, 'extended_data');
  await expect(bob.acceptInvitation(sent.invitationId, { extendedData: big }), beckon.PayloadTooLargeError, 'extended_data');
  await expect(bob.refuseInvitation(sent.invitationId, { extendedData: big }), beckon.PayloadTooLargeError, 'extended_data');
  // Nothing was answered: bob can still accept.
  await within(bob.acceptInvitation(sent.invitationId, { requestTimeoutMs: 1000 }), 5000, 'accept');
});
