'use strict';
// Events reach JavaScript in the order the client observed them, before the
// results of the operations that followed them.

const test = require('node:test');
const assert = require('node:assert/strict');
const { beckon, hubUrl, within, nextEvent, record, until, clients } = require('./helpers');
const { InviteeState } = beckon;

/** The kinds (and, for state changes, user:state) of `events` about invitation `id`. */
function about(events, id) {
  return events
    .filter((e) => e.invitationId === id)
    .map((e) => (e.kindName === 'INVITATION_USER_STATE_CHANGED' ? `${e.userId}:${e.stateName}` : e.kindName));
}

for (const dispatch of ['thread', 'pool', 'poll']) {
  test(`[${dispatch}] a login's CONNECTING and CONNECTED come before it resolves; named event, then 'event'`, async (t) => {
    const { client } = clients(t, hubUrl('login'), { dispatch });
    const alice = client();
    const order = [];
    alice.on('connectionStateChanged', (e) => order.push(`named:${e.stateName}`));
    alice.on('event', (e) => order.push(`event:${e.stateName}`));
    const atResolve = await within(
      alice.login('alice').then(() => [...order]),
      5000,
      'login',
    );
    assert.deepEqual(atResolve, ['named:CONNECTING', 'event:CONNECTING', 'named:CONNECTED', 'event:CONNECTED']);
  });

  test(`[${dispatch}] one invitation's events, in order, on both sides`, async (t) => {
    const { loggedIn } = clients(t, hubUrl('order'), { dispatch });
    const alice = await loggedIn('alice');
    const bob = await loggedIn('bob');
    const carol = await loggedIn('carol');
    const aliceEvents = record(alice);
    const bobEvents = record(bob);
    const carolEvents = record(carol);
    bob.on('invitationReceived', (e) => {
      bob.acceptInvitation(e.invitationId).catch(() => {});
    });
    const carolRings = nextEvent(carol, 'invitationReceived');
    const accepted = nextEvent(alice, 'invitationAccepted');
    const sent = await within(alice.sendInvitation(['bob', 'carol'], { timeoutSeconds: 30 }), 5000, 'send');
    await accepted;
    await carolRings;
    // The cancel's state change for carol is queued before its result.
    const atCancel = await within(
      alice.cancelInvitation(sent.invitationId).then(() => about(aliceEvents, sent.invitationId)),
      5000,
      'cancel',
    );
    assert.ok(atCancel.includes('carol:CANCELLED'), `cancel resolved before carol:CANCELLED: ${atCancel}`);
    await until(() => about(carolEvents, sent.invitationId).includes('INVITATION_CANCELLED'), 5000, 'carol told');
    await until(() => about(bobEvents, sent.invitationId).includes('bob:ACCEPTED'), 5000, "bob's own answer");

    const a = about(aliceEvents, sent.invitationId);
    const before = (x, y) => {
      assert.ok(a.includes(x) && a.includes(y), `alice's events ${a} lack ${x} or ${y}`);
      assert.ok(a.indexOf(x) < a.indexOf(y), `alice's ${x} came after ${y}: ${a}`);
    };
    before('bob:RECEIVED', 'INVITATION_ACCEPTED');
    before('bob:RECEIVED', 'bob:ACCEPTED');
    before('carol:RECEIVED', 'carol:CANCELLED');
    const b = about(bobEvents, sent.invitationId);
    assert.equal(b[0], 'INVITATION_RECEIVED', `bob's first event: ${b}`);
    assert.ok(b.indexOf('bob:RECEIVED') < b.indexOf('bob:ACCEPTED'), `bob's events: ${b}`);
    assert.equal(b.filter((k) => k === 'INVITATION_RECEIVED').length, 1, 'rang twice');
    const c = about(carolEvents, sent.invitationId);
    assert.equal(c[0], 'INVITATION_RECEIVED');
    assert.ok(c.indexOf('INVITATION_CANCELLED') > 0);
  });

  test(`[${dispatch}] invitations ring in the order they were sent`, async (t) => {
    const { loggedIn } = clients(t, hubUrl('sequence'), { dispatch });
    const alice = await loggedIn('alice');
    const bob = await loggedIn('bob');
    const rang = [];
    bob.on('invitationReceived', (e) => rang.push(e.invitationId));
    const sent = [];
    for (let i = 0; i < 20; i++) {
      const result = await within(alice.sendInvitation(['bob'], { timeoutSeconds: 60 }), 5000, `send ${i}`);
      sent.push(result.invitationId);
    }
    await until(() => rang.length >= 20, 5000, 'twenty rings');
    assert.deepEqual(rang, sent);
  });

  test(`[${dispatch}] timeouts: the invitee hears INVITATION_TIMEOUT, the inviter INVITATION_RESPONSE_TIMEOUT`, async (t) => {
    const { loggedIn } = clients(t, hubUrl('timeout'), { dispatch });
    const alice = await loggedIn('alice');
    const bob = await loggedIn('bob');
    const bobTimeout = nextEvent(bob, 'invitationTimeout', () => true, 8000);
    const aliceTimeout = nextEvent(alice, 'invitationResponseTimeout', () => true, 8000);
    const bobState = nextEvent(
      bob,
      'invitationUserStateChanged',
      (e) => e.state === InviteeState.TIMEOUT,
      8000,
    );
    const sent = await within(alice.sendInvitation(['bob'], { timeoutSeconds: 1 }), 5000, 'send');
    const heard = await bobTimeout;
    assert.equal(heard.invitationId, sent.invitationId);
    assert.equal(heard.inviter, 'alice');
    const response = await aliceTimeout;
    assert.deepEqual(response.invitees, [{ userId: 'bob', state: InviteeState.TIMEOUT, stateName: 'TIMEOUT' }]);
    assert.equal((await bobState).userId, 'bob');
    await assert.rejects(bob.acceptInvitation(sent.invitationId), beckon.InvitationClosedError);
  });
}

// In thread and pool mode each callback is its own turn of the event loop, so
// promise continuations run between callbacks. (A poll runs a whole batch in
// one turn: continuations run after it, which README.md tells poll-mode users.)
for (const dispatch of ['thread', 'pool']) {
  test(`[${dispatch}] code after \`await login()\` runs before the invitations still ringing for the user`, async (t) => {
    for (let round = 0; round < 10; round++) {
      const { loggedIn, client } = clients(t, hubUrl(`ringing${round}`), { dispatch });
      const alice = await loggedIn('alice');
      const sent = await within(alice.sendInvitation(['bob'], { timeoutSeconds: 30 }), 5000, 'send');
      const bob = client();
      const early = [];
      bob.on('invitationReceived', (e) => early.push(e.invitationId));
      await within(bob.login('bob'), 5000, "bob's login");
      assert.deepEqual(early, [], 'an invitation rang before the login resolved');
      // A listener added now still hears it.
      const ring = await nextEvent(bob, 'invitationReceived');
      assert.equal(ring.invitationId, sent.invitationId);
    }
  });
}

test('a device that logs in again replaces its older session, which is told KICKED_OUT', async (t) => {
  const url = hubUrl('kick');
  const { loggedIn } = clients(t, url);
  const first = await loggedIn('alice', { deviceId: 'alice-phone' });
  const kicked = nextEvent(first, 'connectionStateChanged', (e) => e.reasonName === 'KICKED_OUT');
  await loggedIn('alice', { deviceId: 'alice-phone' });
  const event = await kicked;
  assert.equal(event.stateName, 'DISCONNECTED');
  assert.equal(event.state, beckon.ConnectionState.DISCONNECTED);
  assert.equal(event.reason, beckon.ConnectionReason.KICKED_OUT);
});
