// Reconnects: a dropped connection resumes its session (nothing lost, nothing
// twice); a server killed with SIGKILL and restarted on the same port with its
// SQLite store gets a fresh session, and the client catches up; requests not
// answered are re-sent and complete exactly once; rule 9 across all of it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Server,
  Proxy,
  closeClients,
  makeClient,
  waitEvent,
  eventsOf,
  tempDir,
  sleep,
  withTimeout,
  WAIT_MS,
  until,
  writeSecret,
  mintToken,
  stateChanges,
  bobBehindProxy,
} from './helpers.mjs';
import { NetworkError, RequestTimeoutError } from '../dist/beckon.js';

const cleanup = [];
after(async () => {
  await closeClients();
  for (const f of cleanup.reverse()) await f();
});
const track = (c) => {
  cleanup.push(() => c.close());
  return c;
};

test('a dropped connection resumes its session: what was sent meanwhile arrives once', async () => {
  const { proxy, alice, bob } = await bobBehindProxy(cleanup);
  await alice.login('res-alice', 'dev');
  await bob.login('res-bob', 'dev');

  proxy.cut();
  await waitEvent(bob, { kind: 'CONNECTION_STATE_CHANGED', state: 'RECONNECTING' });
  // Bob still counts as online (grace period): the invitation waits for him.
  const sent = await alice.sendInvitation(['res-bob'], { timeoutSeconds: 30 });
  assert.deepEqual(sent.errorInvitees, []);
  // A request made while away is sent after the reconnect.
  const query = bob.queryInvitations();
  await waitEvent(bob, (e) => e.kind === 'CONNECTION_STATE_CHANGED' && e.state === 'CONNECTED' && e.reason === 'NETWORK');
  await withTimeout(query, WAIT_MS, 'the query made while away');
  await waitEvent(bob, { kind: 'INVITATION_RECEIVED', invitationId: sent.invitationId });
  await waitEvent(alice, (e) => e.kind === 'INVITATION_USER_STATE_CHANGED' && e.state === 'RECEIVED');

  // Again, and this time the invitation is already shown: no second event.
  proxy.cut();
  await waitEvent(bob, (e) => e.kind === 'CONNECTION_STATE_CHANGED' && e.state === 'RECONNECTING');
  await until(() => bob.connectionState === 'CONNECTED', 'bob reconnected');
  await bob.acceptInvitation(sent.invitationId);
  await waitEvent(alice, { kind: 'INVITATION_ACCEPTED', invitationId: sent.invitationId });
  await sleep(300);
  assert.equal(eventsOf(bob, 'INVITATION_RECEIVED', sent.invitationId).length, 1);
  assert.equal(eventsOf(alice, 'INVITATION_ACCEPTED', sent.invitationId).length, 1);
  assert.deepEqual(stateChanges(bob), [
    'CONNECTING/LOGIN',
    'CONNECTED/LOGIN',
    'RECONNECTING/NETWORK',
    'CONNECTED/NETWORK',
    'RECONNECTING/NETWORK',
    'CONNECTED/NETWORK',
  ]);
});

test('a server that drops each connection right after its welcome is redialled ever more slowly', async () => {
  const { proxy, bob } = await bobBehindProxy(cleanup);
  await bob.login('drop-bob', 'dev');
  const before = proxy.connections;
  proxy.dropAfterWelcome = true;
  proxy.cut();
  await sleep(3000);
  proxy.dropAfterWelcome = false;
  const redials = proxy.connections - before;
  assert.ok(redials >= 1, 'bob did not redial');
  // The delays' lower bounds (125, 250, 500, 1000, 2000 ms) add up to 1.875 s
  // by the fourth redial and 3.875 s by the fifth; delays that started over
  // at every welcome would redial at least 12 times.
  assert.ok(redials <= 4, `${redials} redials within 3 s: the delay did not grow between short connections`);
  await until(() => bob.connectionState === 'CONNECTED', 'bob back once the server keeps him');
});

test('SIGKILL and restart on the same port (SQLite): fresh sessions, missed events told once, rule 9', async () => {
  const dataDir = tempDir('data');
  const server = await Server.start({ store: 'sqlite', dataDir });
  cleanup.push(() => server.stop());
  const alice = track(makeClient(server.url));
  const bob = track(makeClient(server.url));
  const carol = track(makeClient(server.url));
  await alice.login('kill-alice', 'dev');
  await bob.login('kill-bob', 'dev');
  await carol.login('kill-carol', 'dev');
  const sent = await alice.sendInvitation(['kill-bob', 'kill-carol'], { timeoutSeconds: 60 });
  const id = sent.invitationId;
  await waitEvent(bob, { kind: 'INVITATION_RECEIVED', invitationId: id });
  await waitEvent(carol, { kind: 'INVITATION_RECEIVED', invitationId: id });
  await waitEvent(alice, (e) => e.kind === 'INVITATION_USER_STATE_CHANGED' && e.userId === 'kill-carol' && e.state === 'RECEIVED');

  await server.kill('SIGKILL');
  for (const c of [alice, bob, carol]) await waitEvent(c, { kind: 'CONNECTION_STATE_CHANGED', state: 'RECONNECTING' });
  // While the server is down, carol answers: the request waits and is sent after the reconnect.
  const answer = carol.refuseInvitation(id, { extendedData: 'later' });
  await server.restart();
  // A fresh session: CONNECTED with reason LOGIN.
  for (const c of [alice, bob, carol]) {
    await waitEvent(c, (e) => e.kind === 'CONNECTION_STATE_CHANGED' && e.state === 'CONNECTED' && e.reason === 'LOGIN');
  }
  await withTimeout(answer, WAIT_MS, "carol's refusal");
  const refused = await waitEvent(alice, { kind: 'INVITATION_REFUSED', invitationId: id });
  assert.equal(refused.invitee, 'kill-carol');
  // The invitation still rings for bob: the sync hands it over again, the client hides the repeat.
  await sleep(500);
  assert.equal(eventsOf(bob, 'INVITATION_RECEIVED', id).length, 1);
  await bob.acceptInvitation(id);
  await waitEvent(alice, { kind: 'INVITATION_ACCEPTED', invitationId: id });
  await sleep(300);
  assert.equal(eventsOf(alice, 'INVITATION_ACCEPTED', id).length, 1);
  assert.equal(eventsOf(alice, 'INVITATION_REFUSED', id).length, 1);
  assert.equal(eventsOf(carol, 'INVITATION_RECEIVED', id).length, 1);
});

test('what ended while the server was down is told from the snapshot after the restart', async () => {
  const dataDir = tempDir('data');
  const server = await Server.start({ store: 'sqlite', dataDir });
  cleanup.push(() => server.stop());
  const alice = track(makeClient(server.url));
  const bob = track(makeClient(server.url));
  await alice.login('snap-alice', 'dev');
  await bob.login('snap-bob', 'dev');
  const sent = await alice.sendInvitation(['snap-bob'], { timeoutSeconds: 2 });
  await waitEvent(bob, { kind: 'INVITATION_RECEIVED', invitationId: sent.invitationId });
  await server.kill('SIGKILL');
  await sleep(2500); // the deadline passes while the server is down
  await server.restart();
  // The restart times the invitation out; both learn it once (by push or from the snapshot).
  await waitEvent(alice, { kind: 'INVITATION_RESPONSE_TIMEOUT', invitationId: sent.invitationId });
  await waitEvent(bob, { kind: 'INVITATION_TIMEOUT', invitationId: sent.invitationId });
  await sleep(500);
  assert.equal(eventsOf(alice, 'INVITATION_RESPONSE_TIMEOUT', sent.invitationId).length, 1);
  assert.equal(eventsOf(bob, 'INVITATION_TIMEOUT', sent.invitationId).length, 1);
  const timeouts = alice.events.filter(
    (e) => e.kind === 'INVITATION_USER_STATE_CHANGED' && e.invitationId === sent.invitationId && e.state === 'TIMEOUT',
  );
  assert.equal(timeouts.length, 1);
});

test('a send whose result was lost is re-sent with its idempotency key: one invitation, one result', async () => {
  const dataDir = tempDir('data');
  const server = await Server.start({ store: 'sqlite', dataDir });
  cleanup.push(() => server.stop());
  const proxy = await Proxy.start(server.port);
  cleanup.push(() => proxy.stop());
  const alice = track(makeClient(proxy.url));
  const bob = track(makeClient(server.url));
  await alice.login('idem-alice', 'dev');
  await bob.login('idem-bob', 'dev');

  // Resumed session: the result lost on the way is replayed by the server.
  proxy.hold = true;
  let settled = 0;
  const first = alice.sendInvitation(['idem-bob'], { timeoutSeconds: 60 }).finally(() => settled++);
  await waitEvent(bob, { kind: 'INVITATION_RECEIVED' }); // the server handled it
  proxy.cut();
  proxy.hold = false;
  const one = await withTimeout(first, WAIT_MS, 'the first send');
  await waitEvent(alice, (e) => e.kind === 'CONNECTION_STATE_CHANGED' && e.state === 'CONNECTED' && e.reason === 'NETWORK');

  // Fresh session: the server is killed after handling the send, before the
  // client heard of it; after the restart the same frame finds the same invitation.
  proxy.hold = true;
  const second = alice.sendInvitation(['idem-bob'], { timeoutSeconds: 60, extendedData: 'two' }).finally(() => settled++);
  await waitEvent(bob, (e) => e.kind === 'INVITATION_RECEIVED' && e.extendedData === 'two');
  await server.kill('SIGKILL');
  proxy.cut();
  proxy.hold = false;
  await server.restart();
  const two = await withTimeout(second, WAIT_MS, 'the second send');
  await waitEvent(alice, (e) => e.kind === 'CONNECTION_STATE_CHANGED' && e.state === 'CONNECTED' && e.reason === 'LOGIN');
  assert.notEqual(one.invitationId, two.invitationId);
  await sleep(500);
  assert.equal(settled, 2);
  // Bob was rung once for each: the re-sent sends made no new invitation.
  const received = eventsOf(bob, 'INVITATION_RECEIVED').map((e) => e.invitationId);
  assert.deepEqual(received.sort(), [one.invitationId, two.invitationId].sort());
  // Both still open at the server, and cancellable by their ids.
  await alice.cancelInvitation(one.invitationId);
  await alice.cancelInvitation(two.invitationId);
  await waitEvent(bob, { kind: 'INVITATION_CANCELLED', invitationId: two.invitationId });
});

test('a silent server is noticed by heartbeats; the client reconnects when it answers again', async () => {
  const server = await Server.start({ extra: ['--heartbeat-secs', '1'] });
  cleanup.push(() => server.stop());
  const alice = track(makeClient(server.url, { requestTimeoutMs: 2000 }));
  await alice.login('hb-alice', 'dev');
  await server.pause();
  try {
    await waitEvent(alice, { kind: 'CONNECTION_STATE_CHANGED', state: 'RECONNECTING' }, 'RECONNECTING', 8000);
  } finally {
    server.resume();
  }
  await waitEvent(alice, (e) => e.kind === 'CONNECTION_STATE_CHANGED' && e.state === 'CONNECTED' && e.reason !== 'LOGIN' || (e.state === 'CONNECTED' && alice.events.indexOf(e) > 1));
  await alice.sendInvitation(['hb-bob'], { timeoutSeconds: 5 });
});

test('a graceful shutdown (SIGTERM): RECONNECTING with reason SERVER_SHUTDOWN, then back after the restart', async () => {
  const server = await Server.start({ store: 'sqlite', dataDir: tempDir('data') });
  cleanup.push(() => server.stop());
  const alice = track(makeClient(server.url));
  await alice.login('term-alice', 'dev');
  await server.kill('SIGTERM');
  await waitEvent(alice, { kind: 'CONNECTION_STATE_CHANGED', state: 'RECONNECTING' });
  assert.equal(alice.events.at(-1).reason, 'SERVER_SHUTDOWN');
  await server.restart();
  await waitEvent(alice, (e) => e.kind === 'CONNECTION_STATE_CHANGED' && e.state === 'CONNECTED' && alice.events.indexOf(e) > 1);
  await alice.sendInvitation(['term-bob'], { timeoutSeconds: 5 });
  assert.deepEqual(stateChanges(alice), ['CONNECTING/LOGIN', 'CONNECTED/LOGIN', 'RECONNECTING/SERVER_SHUTDOWN', 'CONNECTED/LOGIN']);
});

test('a request that times out while the server is down is never sent', async () => {
  const server = await Server.start({ store: 'sqlite', dataDir: tempDir('data') });
  cleanup.push(() => server.stop());
  const alice = track(makeClient(server.url));
  const bob = track(makeClient(server.url));
  await alice.login('rt-alice', 'dev');
  await bob.login('rt-bob', 'dev');
  await server.kill('SIGKILL');
  await waitEvent(alice, { kind: 'CONNECTION_STATE_CHANGED', state: 'RECONNECTING' });
  const error = await alice.sendInvitation(['rt-bob'], { timeoutSeconds: 30, requestTimeoutMs: 200 }).catch((e) => e);
  assert.ok(error instanceof RequestTimeoutError, String(error));
  await server.restart();
  await until(() => alice.connectionState === 'CONNECTED' && bob.connectionState === 'CONNECTED', 'both back');
  const sent = await alice.sendInvitation(['rt-bob'], { timeoutSeconds: 30, extendedData: 'second' });
  await waitEvent(bob, { kind: 'INVITATION_RECEIVED', invitationId: sent.invitationId });
  await sleep(300);
  assert.deepEqual(eventsOf(bob, 'INVITATION_RECEIVED').map((e) => e.extendedData), ['second']);
});

test('reconnects use the renewed token; an expired one ends the session (DISCONNECTED, TOKEN_EXPIRED)', async () => {
  const secret = writeSecret(tempDir('secret'));
  const server = await Server.start({ dev: false, secretFile: secret.file, store: 'sqlite', dataDir: tempDir('data') });
  cleanup.push(() => server.stop());
  const soon = Math.floor(Date.now() / 1000) + 3;
  const renewed = track(makeClient(server.url));
  const stale = track(makeClient(server.url));
  await renewed.login('tok-alice', mintToken(secret.secret, 'tok-alice', soon));
  await stale.login('tok-bob', mintToken(secret.secret, 'tok-bob', soon));
  await renewed.renewToken(mintToken(secret.secret, 'tok-alice', soon + 3600));
  await server.kill('SIGKILL');
  const waiting = stale.queryInvitations({ requestTimeoutMs: 20_000 }).catch((e) => e);
  await sleep(Math.max(0, soon * 1000 - Date.now()) + 1200); // the old tokens expire meanwhile
  await server.restart();
  await waitEvent(renewed, (e) => e.kind === 'CONNECTION_STATE_CHANGED' && e.state === 'CONNECTED' && renewed.events.indexOf(e) > 1);
  await waitEvent(stale, { kind: 'CONNECTION_STATE_CHANGED', state: 'DISCONNECTED' });
  assert.equal(stale.events.at(-1).reason, 'TOKEN_EXPIRED');
  assert.equal(stale.userId, null);
  const error = await waiting;
  assert.ok(error instanceof NetworkError, String(error));
  assert.match(error.message, /could not be restored/);
  assert.equal(renewed.connectionState, 'CONNECTED');
});

test('a logout while a reconnect is under way logs out the session that reconnect makes', async () => {
  const server = await Server.start({ extra: ['--grace-secs', '60'] });
  cleanup.push(() => server.stop());
  const proxy = await Proxy.start(server.port);
  cleanup.push(() => proxy.stop());
  const alice = track(makeClient(proxy.url));
  const bob = track(makeClient(server.url));
  await alice.login('lo-alice', 'dev');
  await bob.login('lo-bob', 'dev');
  const sent = await alice.sendInvitation(['lo-bob'], { timeoutSeconds: 60 });
  await waitEvent(bob, { kind: 'INVITATION_RECEIVED', invitationId: sent.invitationId });
  // The next welcome is held on its way: alice's reconnect waits for it.
  proxy.hold = true;
  proxy.cut();
  await waitEvent(alice, { kind: 'CONNECTION_STATE_CHANGED', state: 'RECONNECTING' });
  await until(() => proxy.pairs.size > 0, "alice's reconnect");
  await sleep(100);
  await withTimeout(alice.logout(), WAIT_MS, 'the logout');
  assert.equal(alice.connectionState, 'DISCONNECTED');
  assert.equal(alice.events.at(-1).reason, 'LOGOUT');
  proxy.release();
  // The welcome that still comes is logged out at once: rule 7 cancels
  // alice's invitation now, not after the 60 s grace period.
  await waitEvent(bob, { kind: 'INVITATION_CANCELLED', invitationId: sent.invitationId }, 'CANCELLED', 10_000);
});

test('requests not answered before a resume go before what the application asks on CONNECTED', async () => {
  const { proxy, alice, bob } = await bobBehindProxy(cleanup);
  await alice.login('order-alice', 'dev');
  await bob.login('order-bob', 'dev');
  const { invitationId: id } = await alice.sendInvitation(['order-bob'], { timeoutSeconds: 60 });
  await waitEvent(bob, { kind: 'INVITATION_RECEIVED', invitationId: id });
  await waitEvent(alice, (e) => e.kind === 'INVITATION_USER_STATE_CHANGED' && e.state === 'RECEIVED');
  // Bob's accept is lost with the connection.
  proxy.swallowNow();
  const accepted = bob.acceptInvitation(id);
  await until(
    () => proxy.clientFrames(0).some((f) => f.swallowed && f.json?.type === 'accept'),
    "bob's accept, swallowed",
  );
  // On CONNECTED the application asks something at once: a higher request id.
  let asked = null;
  bob.on('connectionStateChanged', (e) => {
    if (e.state === 'CONNECTED' && e.reason === 'NETWORK') asked = bob.queryInvitations();
  });
  proxy.cutSwallowing();
  await withTimeout(accepted, WAIT_MS, 'the accept re-sent after the resume');
  await until(() => asked !== null, 'the query asked on CONNECTED');
  await withTimeout(asked, WAIT_MS, 'the query asked on CONNECTED');
  await waitEvent(alice, { kind: 'INVITATION_ACCEPTED', invitationId: id });
  const types = proxy.clientFrames(1).map((f) => f.json?.type);
  assert.ok(types.indexOf('accept') < types.indexOf('query_invitations'), JSON.stringify(types));
  await sleep(200);
  assert.equal(eventsOf(alice, 'INVITATION_ACCEPTED', id).length, 1);
});
