'use strict';
// The invitation flow end to end on memory:// hubs, in every dispatch mode.

const test = require('node:test');
const assert = require('node:assert/strict');
const { beckon, hubUrl, within, nextEvent, record, until, clients } = require('./helpers');
const { InviteeState } = beckon;

for (const dispatch of ['thread', 'pool', 'poll']) {
  test(`[${dispatch}] the demo flow: alice invites bob, bob's device rings, bob accepts, alice hears it`, async (t) => {
    const url = hubUrl('demo');
    const { loggedIn } = clients(t, url, { dispatch });
    const alice = await loggedIn('alice');
    const bob = await loggedIn('bob');

    const ringing = nextEvent(bob, 'invitationReceived');
    const accepted = nextEvent(alice, 'invitationAccepted');
    const sent = await within(
      alice.sendInvitation(['bob'], {
        timeoutSeconds: 30,
        extendedData: '{"call":"video"}',
        notification: { title: 'Incoming call', message: 'alice is calling' },
      }),
      5000,
      'the send result',
    );
    assert.match(sent.invitationId, /^\S{16,}$/);
    assert.deepEqual(sent.errorInvitees, []);

    const ring = await ringing;
    assert.equal(ring.kindName, 'INVITATION_RECEIVED');
    assert.equal(ring.kind, beckon.EventKind.INVITATION_RECEIVED);
    assert.equal(ring.invitationId, sent.invitationId);
    assert.equal(ring.inviter, 'alice');
    assert.equal(ring.extendedData, '{"call":"video"}');
    assert.deepEqual(ring.notification, {
      title: 'Incoming call',
      message: 'alice is calling',
      resourceId: '',
      payload: '',
    });
    assert.ok(ring.secondsLeft > 0 && ring.secondsLeft <= 30, `secondsLeft ${ring.secondsLeft}`);
    assert.deepEqual(
      ring.invitees.map((i) => i.userId),
      ['bob'],
    );
    assert.ok(Object.isFrozen(ring) && Object.isFrozen(ring.invitees));

    await within(bob.acceptInvitation(ring.invitationId, { extendedData: 'see you' }), 5000, 'the accept');
    const heard = await accepted;
    assert.equal(heard.invitationId, sent.invitationId);
    assert.equal(heard.invitee, 'bob');
    assert.equal(heard.extendedData, 'see you');
  });

  test(`[${dispatch}] refuse, offline invitee, response timeout and cancel`, async (t) => {
    const url = hubUrl('refuse');
    const { loggedIn } = clients(t, url, { dispatch });
    const alice = await loggedIn('alice');
    const bob = await loggedIn('bob');
    const carol = await loggedIn('carol');
    bob.on('invitationReceived', (e) => {
      bob.acceptInvitation(e.invitationId).catch(() => {});
    });
    carol.on('invitationReceived', (e) => {
      carol.refuseInvitation(e.invitationId, { extendedData: 'busy' }).catch(() => {});
    });

    // dave never logs in: OFFLINE at once, TIMEOUT after the 1 s deadline.
    const refused = nextEvent(alice, 'invitationRefused');
    const timedOut = nextEvent(alice, 'invitationResponseTimeout', () => true, 8000);
    const sent = await within(alice.sendInvitation(['bob', 'carol', 'dave'], { timeoutSeconds: 1 }), 5000, 'send');
    assert.deepEqual(sent.errorInvitees, [{ userId: 'dave', state: InviteeState.OFFLINE, stateName: 'OFFLINE' }]);
    const refusal = await refused;
    assert.equal(refusal.invitee, 'carol');
    assert.equal(refusal.extendedData, 'busy');
    const timeout = await timedOut;
    assert.equal(timeout.invitationId, sent.invitationId);
    assert.deepEqual(timeout.invitees, [{ userId: 'dave', state: InviteeState.TIMEOUT, stateName: 'TIMEOUT' }]);

    // A second invitation: bob accepts, then alice cancels while carol's
    // device still rings. bob is terminal and comes back in errorInvitees.
    carol.removeAllListeners('invitationReceived');
    const carolRings = nextEvent(carol, 'invitationReceived');
    const carolCancelled = nextEvent(carol, 'invitationCancelled');
    const bobAccepted = nextEvent(alice, 'invitationAccepted');
    const second = await within(alice.sendInvitation(['bob', 'carol'], { timeoutSeconds: 30 }), 5000, 'send');
    assert.notEqual(second.invitationId, sent.invitationId);
    assert.equal((await carolRings).invitationId, second.invitationId);
    assert.equal((await bobAccepted).invitationId, second.invitationId);
    const cancel = await within(
      alice.cancelInvitation(second.invitationId, { extendedData: 'never mind' }),
      5000,
      'cancel',
    );
    assert.deepEqual(cancel.errorInvitees, [{ userId: 'bob', state: InviteeState.ACCEPTED, stateName: 'ACCEPTED' }]);
    const cancelled = await carolCancelled;
    assert.equal(cancelled.invitationId, second.invitationId);
    assert.equal(cancelled.inviter, 'alice');
    assert.equal(cancelled.extendedData, 'never mind');

    // Every invitee is terminal now: the invitation has ended (rule 8).
    await assert.rejects(alice.cancelInvitation(second.invitationId), beckon.InvitationClosedError);
  });

  test(`[${dispatch}] a pending invitation reaches an invitee who logs in later; online-only does not`, async (t) => {
    const url = hubUrl('pending');
    const { loggedIn, client } = clients(t, url, { dispatch });
    const alice = await loggedIn('alice');
    const kept = await within(alice.sendInvitation(['erin'], { timeoutSeconds: 30 }), 5000, 'send');
    assert.equal(kept.errorInvitees[0].stateName, 'OFFLINE');
    const dropped = await within(
      alice.sendInvitation(['erin'], { timeoutSeconds: 30, onlineOnly: true }),
      5000,
      'online-only send',
    );
    assert.equal(dropped.errorInvitees[0].userId, 'erin');

    const received = nextEvent(alice, 'invitationUserStateChanged', (e) => e.state === InviteeState.RECEIVED);
    const erin = client();
    const rings = [];
    erin.on('invitationReceived', (e) => rings.push(e.invitationId));
    await within(erin.login('erin'), 5000, "erin's login");
    const seen = await received;
    assert.equal(seen.invitationId, kept.invitationId);
    assert.equal(seen.userId, 'erin');
    // A third invitation, sent now that erin is online, rings after whatever
    // her login synced: so once it has rung, every earlier ring has too.
    const third = await within(alice.sendInvitation(['erin'], { timeoutSeconds: 30 }), 5000, 'third send');
    assert.deepEqual(third.errorInvitees, []);
    await until(() => rings.includes(third.invitationId), 5000, 'the third ring');
    // The invitation kept pending rang once; the online-only one never did.
    assert.deepEqual(rings, [kept.invitationId, third.invitationId]);
  });

  test(`[${dispatch}] the first answer among a user's devices wins; the other device is told`, async (t) => {
    const url = hubUrl('devices');
    const { loggedIn } = clients(t, url, { dispatch });
    const alice = await loggedIn('alice');
    const phone = await loggedIn('bob', { deviceId: 'bob-phone' });
    const laptop = await loggedIn('bob', { deviceId: 'bob-laptop' });
    assert.equal(phone.deviceId, 'bob-phone');
    const phoneRings = nextEvent(phone, 'invitationReceived');
    const laptopRings = nextEvent(laptop, 'invitationReceived');
    const laptopTold = nextEvent(
      laptop,
      'invitationUserStateChanged',
      (e) => e.userId === 'bob' && e.state === InviteeState.ACCEPTED,
    );
    const sent = await within(alice.sendInvitation(['bob'], { timeoutSeconds: 30 }), 5000, 'send');
    assert.equal((await phoneRings).invitationId, sent.invitationId);
    assert.equal((await laptopRings).invitationId, sent.invitationId);
    await within(phone.acceptInvitation(sent.invitationId), 5000, 'accept on the phone');
    const told = await laptopTold;
    assert.equal(told.invitationId, sent.invitationId);
    await assert.rejects(laptop.refuseInvitation(sent.invitationId), beckon.AlreadyAnsweredError);
  });
}

test('[poll] with pollIntervalMs 0 nothing runs until poll() is called', async (t) => {
  const url = hubUrl('manual');
  const { client } = clients(t, url, { dispatch: 'poll', pollIntervalMs: 0 });
  const alice = client();
  const events = record(alice);
  let settled = false;
  const login = alice.login('alice').then(() => {
    settled = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(settled, false, 'the login settled without a poll');
  assert.equal(events.length, 0);
  let ran = 0;
  const deadline = Date.now() + 5000;
  while (!settled && Date.now() < deadline) {
    ran += alice.poll(20);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await login;
  assert.equal(ran, 3, 'CONNECTING, CONNECTED and the login callback');
  assert.deepEqual(
    events.map((e) => e.stateName),
    ['CONNECTING', 'CONNECTED'],
  );
});
