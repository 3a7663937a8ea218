// The web client in Node (with `ws`) against a real beckon-server: the demo
// flow, events and their order, rule 4 receipts, rule 9.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, Proxy, closeClients, webDir, makeClient, waitEvent, eventsOf, withTimeout, WAIT_MS, sleep } from './helpers.mjs';

let server;
const clients = [];
const client = (options) => {
  const c = makeClient(server.url, options);
  clients.push(c);
  return c;
};

before(async () => {
  server = await Server.start();
});
after(async () => {
  await closeClients();
  await server.stop();
});

test('the demo flow: bob accepts, carol refuses, dave times out; a second invitation cancelled', async () => {
  const [alice, bob, carol, dave] = ['alice', 'bob', 'carol', 'dave'].map(() => client());
  await alice.login('alice', 'dev');
  assert.equal(alice.connectionState, 'CONNECTED');
  assert.deepEqual(
    alice.events.map((e) => [e.kind, e.state, e.reason]),
    [
      ['CONNECTION_STATE_CHANGED', 'CONNECTING', 'LOGIN'],
      ['CONNECTION_STATE_CHANGED', 'CONNECTED', 'LOGIN'],
    ],
  );
  await bob.login('bob', 'dev');
  await carol.login('carol', 'dev');
  await dave.login('dave', 'dev');

  const sent = await alice.sendInvitation(['bob', 'carol', 'dave', 'bob'], {
    timeoutSeconds: 3,
    extendedData: '{"call":"video"}',
    notification: { title: 'Call', message: 'alice calls' },
  });
  assert.match(sent.invitationId, /^[0-9a-f]{32}$/);
  assert.deepEqual(sent.errorInvitees, []);
  const id = sent.invitationId;

  for (const invitee of [bob, carol, dave]) {
    const received = await waitEvent(invitee, { kind: 'INVITATION_RECEIVED', invitationId: id });
    assert.equal(received.inviter, 'alice');
    assert.deepEqual(received.invitees, ['bob', 'carol', 'dave']);
    assert.equal(received.extendedData, '{"call":"video"}');
    assert.equal(received.notification.title, 'Call');
    assert.ok(received.secondsLeft >= 1 && received.secondsLeft <= 3);
  }
  // Rule 4: each device acknowledged by itself, so alice sees RECEIVED for each.
  for (const user of ['bob', 'carol', 'dave']) {
    await waitEvent(alice, (e) => e.kind === 'INVITATION_USER_STATE_CHANGED' && e.userId === user && e.state === 'RECEIVED');
  }

  await bob.acceptInvitation(id, { extendedData: 'on my way' });
  await carol.refuseInvitation(id, { extendedData: 'busy' });
  const accepted = await waitEvent(alice, { kind: 'INVITATION_ACCEPTED', invitationId: id });
  assert.equal(accepted.invitee, 'bob');
  assert.equal(accepted.extendedData, 'on my way');
  const refused = await waitEvent(alice, { kind: 'INVITATION_REFUSED', invitationId: id });
  assert.equal(refused.invitee, 'carol');
  assert.equal(refused.extendedData, 'busy');

  const timedOut = await waitEvent(alice, { kind: 'INVITATION_RESPONSE_TIMEOUT', invitationId: id });
  assert.deepEqual(timedOut.invitees, ['dave']);
  const daveTimeout = await waitEvent(dave, { kind: 'INVITATION_TIMEOUT', invitationId: id });
  assert.equal(daveTimeout.inviter, 'alice');
  // The answer comes before the state change of the same change.
  const aliceKinds = alice.events.filter((e) => e.invitationId === id).map((e) => `${e.kind}:${e.userId ?? e.invitee ?? ''}:${e.state ?? ''}`);
  assert.ok(
    aliceKinds.indexOf('INVITATION_ACCEPTED:bob:') < aliceKinds.indexOf('INVITATION_USER_STATE_CHANGED:bob:ACCEPTED'),
    aliceKinds.join(' '),
  );
  await waitEvent(bob, (e) => e.kind === 'INVITATION_USER_STATE_CHANGED' && e.userId === 'dave' && e.state === 'TIMEOUT');

  // A second invitation, cancelled.
  const second = await alice.sendInvitation(['bob'], { timeoutSeconds: 30 });
  await waitEvent(bob, { kind: 'INVITATION_RECEIVED', invitationId: second.invitationId });
  const cancelled = await alice.cancelInvitation(second.invitationId, { extendedData: 'never mind' });
  assert.deepEqual(cancelled.errorInvitees, []);
  // The events an operation causes reach its client before its result.
  assert.ok(
    alice.events.some((e) => e.kind === 'INVITATION_USER_STATE_CHANGED' && e.invitationId === second.invitationId && e.state === 'CANCELLED'),
  );
  const told = await waitEvent(bob, { kind: 'INVITATION_CANCELLED', invitationId: second.invitationId });
  assert.equal(told.inviter, 'alice');
  assert.equal(told.extendedData, 'never mind');
  await waitEvent(alice, (e) => e.kind === 'INVITATION_USER_STATE_CHANGED' && e.invitationId === second.invitationId && e.state === 'CANCELLED');

  // History: both ended invitations, newest first.
  const page = await alice.queryInvitations({ role: 'SENT', limit: 10 });
  assert.deepEqual(page.invitations.map((i) => i.invitationId).slice(0, 2), [second.invitationId, id]);
  assert.equal(page.invitations[1].invitees.find((s) => s.userId === 'dave').state, 'TIMEOUT');

  await Promise.all([alice, bob, carol, dave].map((c) => c.logout()));
  assert.deepEqual(alice.events.at(-1), { kind: 'CONNECTION_STATE_CHANGED', state: 'DISCONNECTED', reason: 'LOGOUT' });
  assert.equal(alice.userId, null);
});

test('events are dispatched under their own name and under "event", as CustomEvents', async () => {
  const erin = client();
  const seen = [];
  erin.addEventListener('connectionStateChanged', (e) => seen.push(['named', e.detail.state]));
  erin.addEventListener('event', (e) => seen.push(['event', e.detail.state]));
  const off = erin.on('connectionStateChanged', (d) => seen.push(['on', d.state]));
  await erin.login('erin', 'dev');
  off();
  await erin.logout();
  assert.deepEqual(seen, [
    ['named', 'CONNECTING'],
    ['on', 'CONNECTING'],
    ['event', 'CONNECTING'],
    ['named', 'CONNECTED'],
    ['on', 'CONNECTED'],
    ['event', 'CONNECTED'],
    ['named', 'DISCONNECTED'],
    ['event', 'DISCONNECTED'],
  ]);
});

test('an offline invitee is reported and rings when it logs in; rule 9 across a re-login', async () => {
  const frank = client();
  const grace = client({ deviceId: 'grace-phone' });
  await frank.login('frank', 'dev');
  const sent = await frank.sendInvitation(['grace'], { timeoutSeconds: 30 });
  assert.deepEqual(sent.errorInvitees, [{ userId: 'grace', state: 'OFFLINE' }]);
  await grace.login('grace', 'dev');
  await waitEvent(grace, { kind: 'INVITATION_RECEIVED', invitationId: sent.invitationId });
  await waitEvent(frank, (e) => e.kind === 'INVITATION_USER_STATE_CHANGED' && e.userId === 'grace' && e.state === 'RECEIVED');
  // The same client logs out and in again: the server hands the invitation
  // over again (it still rings), the client does not show it twice.
  await grace.logout();
  await grace.login('grace', 'dev');
  await sleep(500);
  assert.equal(eventsOf(grace, 'INVITATION_RECEIVED', sent.invitationId).length, 1);
  // Another client of the same user shows it (rule 9 is per client).
  const grace2 = client();
  await grace2.login('grace', 'dev');
  await waitEvent(grace2, { kind: 'INVITATION_RECEIVED', invitationId: sent.invitationId });
  await grace2.acceptInvitation(sent.invitationId);
  await waitEvent(grace, (e) => e.kind === 'INVITATION_USER_STATE_CHANGED' && e.userId === 'grace' && e.state === 'ACCEPTED');
  await withTimeout(Promise.all([frank.close(), grace.close(), grace2.close()]), WAIT_MS, 'close');
});

test('frames read together: a send\'s result settles before the events that follow it', async () => {
  const proxy = await Proxy.start(server.port);
  try {
    const alice = client();
    const alice2 = makeClient(proxy.url); // alice's second device, behind the proxy
    clients.push(alice2);
    const bob = client();
    await alice.login('order-alice', 'dev');
    await alice2.login('order-alice', 'dev');
    await bob.login('order-bob', 'dev');
    proxy.hold = true;
    let eventsAtResult = null;
    const sending = alice2.sendInvitation(['order-bob'], { timeoutSeconds: 30 }).then((sent) => {
      eventsAtResult = alice2.events.filter((e) => e.invitationId === sent.invitationId).length;
      return sent;
    });
    // Bob's device acknowledges: the RECEIVED change is queued for alice2 behind the result.
    await waitEvent(alice, (e) => e.kind === 'INVITATION_USER_STATE_CHANGED' && e.userId === 'order-bob' && e.state === 'RECEIVED');
    proxy.release();
    const sent = await withTimeout(sending, WAIT_MS, 'the send');
    assert.equal(eventsAtResult, 0);
    await waitEvent(alice2, { kind: 'INVITATION_USER_STATE_CHANGED', invitationId: sent.invitationId, state: 'RECEIVED' });
  } finally {
    await proxy.stop();
  }
});

test('examples/demo.mjs runs the demo flow', async () => {
  const { execFile } = await import('node:child_process');
  const out = await new Promise((resolve, reject) =>
    execFile(process.execPath, ['examples/demo.mjs', server.url], { cwd: webDir, timeout: WAIT_MS }, (error, stdout, stderr) =>
      error ? reject(new Error(`${error.message}\n${stdout}${stderr}`)) : resolve(stdout),
    ),
  );
  assert.match(out, /^\[alice\] INVITATION_ACCEPTED bob 'on my way'$/m);
  assert.match(out, /^\[alice\] INVITATION_REFUSED carol 'busy'$/m);
  assert.match(out, /^\[alice\] nobody else answered: dave timed out$/m);
  assert.match(out, /^\[bob  \] INVITATION_CANCELLED alice 'never mind'$/m);
  assert.match(out, /^--- done ---$/m);
});
