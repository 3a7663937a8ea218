// Notices on a resumed session (docs/PROTOCOL.md, "Notices: sync and receipt
// on a resumed session"): a sync or a receipt gets no result and no seq, so
// one written just before the connection dropped may never reach the server.
// A proxy swallows what the client writes from a chosen point, then cuts; the
// resumed session's welcome says whether the server had the sync
// (`synced`), and the client sends again what was lost, once. The frames are
// read as they pass the proxy.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { bobBehindProxy, closeClients, stateChanges, waitEvent, eventsOf, sleep, until } from './helpers.mjs';

const cleanup = [];
after(async () => {
  await closeClients();
  for (const f of cleanup.reverse()) await f();
});
/** Waits until `c` has had `n` connection state changes. */
const states = (c, n) => until(() => stateChanges(c).length >= n && stateChanges(c), `${n} connection states`);
const ofType = (frames, type) => frames.filter((f) => f.json?.type === type);

async function setUp(prefix) {
  const set = await bobBehindProxy(cleanup);
  await set.alice.login(`${prefix}-alice`, 'dev');
  return set;
}

test('a receipt lost with the connection is sent again after the resume: the inviter sees RECEIVED once', async () => {
  const { proxy, alice, bob } = await setUp('rcpt');
  await bob.login('rcpt-bob', 'dev');
  // Everything bob writes once he is rung (his receipt) is lost.
  proxy.swallowAfter('"invitation_received"');
  const { invitationId: id } = await alice.sendInvitation(['rcpt-bob'], { timeoutSeconds: 60 });
  await waitEvent(bob, { kind: 'INVITATION_RECEIVED', invitationId: id });
  await until(
    () => ofType(proxy.clientFrames(0), 'receipt').some((f) => f.swallowed && f.json.invitation_id === id),
    "bob's receipt, swallowed",
  );
  await sleep(200);
  const bobReceived = (e) =>
    e.kind === 'INVITATION_USER_STATE_CHANGED' && e.invitationId === id && e.userId === 'rcpt-bob' && e.state === 'RECEIVED';
  assert.equal(alice.events.filter(bobReceived).length, 0, 'the server never had the receipt');
  proxy.cutSwallowing();
  assert.deepEqual((await states(bob, 4)).slice(2), ['RECONNECTING/NETWORK', 'CONNECTED/NETWORK']);
  const welcome = ofType(proxy.serverFrames(1), 'welcome')[0]?.json;
  assert.equal(welcome?.resumed, true, 'the session was resumed');
  await waitEvent(alice, bobReceived, 'bob RECEIVED');
  // Bob's own device hears it too: that is what confirms his receipt.
  await waitEvent(bob, bobReceived, "bob's own RECEIVED");
  // The receipt went first after the hello.
  const second = proxy.clientFrames(1).map((f) => f.json?.type);
  assert.deepEqual(second.slice(0, 2), ['hello', 'receipt'], JSON.stringify(second));

  // Confirmed: another reconnect does not send it again.
  proxy.cut();
  assert.deepEqual((await states(bob, 6)).slice(4), ['RECONNECTING/NETWORK', 'CONNECTED/NETWORK']);
  await bob.queryInvitations(); // a round trip: what bob wrote before it has passed the proxy
  assert.deepEqual(ofType(proxy.clientFrames(2), 'receipt'), []);
  await sleep(300);
  assert.equal(alice.events.filter(bobReceived).length, 1, 'RECEIVED shown once');
  assert.equal(eventsOf(bob, 'INVITATION_RECEIVED', id).length, 1, 'rung once');
});

test("a sync lost with the connection is sent again after the resume (synced: false): the device rings once", async () => {
  const { proxy, alice, bob } = await setUp('lsync');
  // Everything bob writes after the welcome (his sync) is lost.
  proxy.swallowAfter('"welcome"');
  await bob.login('lsync-bob', 'dev');
  const lost = await until(
    () => ofType(proxy.clientFrames(0), 'sync').find((f) => f.swallowed),
    "bob's sync, swallowed",
  );
  await sleep(200);
  proxy.cutSwallowing();
  assert.deepEqual((await states(bob, 4)).slice(2), ['RECONNECTING/NETWORK', 'CONNECTED/NETWORK']);
  const welcome = ofType(proxy.serverFrames(1), 'welcome')[0]?.json;
  assert.equal(welcome?.resumed, true, 'the session was resumed');
  assert.equal(welcome?.synced, false, 'the server never had the sync');

  const { invitationId: id } = await alice.sendInvitation(['lsync-bob'], { timeoutSeconds: 60 });
  await waitEvent(bob, { kind: 'INVITATION_RECEIVED', invitationId: id }, 'bob rung');
  await sleep(300);
  assert.equal(eventsOf(bob, 'INVITATION_RECEIVED', id).length, 1, 'rung once');
  // The same frame, once.
  assert.deepEqual(
    ofType(proxy.clientFrames(1), 'sync').map((f) => f.text),
    [lost.text],
  );
});

test('a sync the server had (synced: true) is not sent again after the resume', async () => {
  const { proxy, alice, bob } = await setUp('ssync');
  await bob.login('ssync-bob', 'dev');
  // A round trip after the login's sync: the server has read it. Nothing
  // rings for bob, so no push shows it.
  await bob.queryInvitations();
  assert.equal(ofType(proxy.clientFrames(0), 'sync').length, 1);
  proxy.cut();
  assert.deepEqual((await states(bob, 4)).slice(2), ['RECONNECTING/NETWORK', 'CONNECTED/NETWORK']);
  const welcome = ofType(proxy.serverFrames(1), 'welcome')[0]?.json;
  assert.equal(welcome?.resumed, true, 'the session was resumed');
  assert.equal(welcome?.synced, true, 'the server had the sync');
  await bob.queryInvitations();
  assert.deepEqual(ofType(proxy.clientFrames(1), 'sync'), [], 'no sync after a resume that says synced');

  // Still synced: the device rings, once.
  const { invitationId: id } = await alice.sendInvitation(['ssync-bob'], { timeoutSeconds: 60 });
  await waitEvent(bob, { kind: 'INVITATION_RECEIVED', invitationId: id }, 'bob rung');
  await sleep(300);
  assert.equal(eventsOf(bob, 'INVITATION_RECEIVED', id).length, 1, 'rung once');
  assert.deepEqual(ofType(proxy.clientFrames(), 'sync').length, 1);
});
