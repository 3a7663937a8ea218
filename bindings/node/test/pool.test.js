'use strict';
// Pool mode: the callbacks of many clients run on a few library threads shared
// by all, and reach JavaScript on its own thread as thread mode's do; each
// client's still one at a time and in order. Threads are counted in
// /proc/self/task (library threads included).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { beckon, hubUrl, within, nextEvent, record, clients } = require('./helpers');
const { koffi } = require('../lib/native');

/** The most threads the library's pool runs (as many as the CPUs, 2 to 8). */
const POOL_MAX_THREADS = 8;
/** koffi's slots that close() keeps for its frees (lib/client.js). */
const RESERVE = 8;
const hasTasks = fs.existsSync('/proc/self/task');

function threadCount() {
  return fs.readdirSync('/proc/self/task').length;
}

/** Settles to 'ok' or the error's class name, never rejects. */
function outcome(promise) {
  return promise.then(
    () => 'ok',
    (error) => error.name,
  );
}

test('150 pairs in pool mode, more than thread mode allows: every send, accept and event once, on a few threads', { skip: !hasTasks }, async (t) => {
  const url = hubUrl('pool-many');
  const { client, loggedIn } = clients(t, url, { dispatch: 'pool' });
  // Warm the library (its runtime and the pool) with one pool client first.
  const warm = await loggedIn('warm');
  assert.equal(warm.dispatch, 'pool');
  const pairs = 150;
  assert.ok(2 * pairs > koffi.config().max_async_calls - RESERVE, 'more clients than thread mode allows');
  const before = threadCount();

  const inviters = [];
  const invitees = [];
  const rings = new Array(pairs).fill(0);
  const answered = [];
  for (let i = 0; i < pairs; i++) {
    const inviter = client();
    const invitee = client();
    inviters.push(inviter);
    invitees.push(invitee);
    // The invitee accepts from its listener (on the JavaScript thread, while
    // a pool thread waits for it).
    answered.push(
      new Promise((resolve) => {
        invitee.on('invitationReceived', (e) => {
          rings[i] += 1;
          if (rings[i] === 1) resolve(outcome(invitee.acceptInvitation(e.invitationId, { extendedData: 'yes' })));
        });
      }),
    );
  }
  const events = inviters.map((c) => record(c));
  await within(
    Promise.all([...inviters.map((c, i) => c.login(`caller${i}`)), ...invitees.map((c, i) => c.login(`callee${i}`))]),
    10000,
    'every login',
  );
  const after = threadCount();
  assert.ok(
    after - before <= POOL_MAX_THREADS,
    `${2 * pairs} pool clients added ${after - before} threads (${before} -> ${after})`,
  );

  const heard = inviters.map((c) => nextEvent(c, 'invitationAccepted', () => true, 10000));
  const sent = await within(
    Promise.all(inviters.map((c, i) => c.sendInvitation([`callee${i}`], { timeoutSeconds: 30 }))),
    10000,
    'every send',
  );
  assert.deepEqual(await within(Promise.all(answered), 10000, 'every accept'), new Array(pairs).fill('ok'));
  const accepted = await within(Promise.all(heard), 10000, 'every INVITATION_ACCEPTED');
  for (let i = 0; i < pairs; i++) {
    assert.equal(accepted[i].invitationId, sent[i].invitationId);
    assert.equal(accepted[i].invitee, `callee${i}`);
    assert.equal(accepted[i].extendedData, 'yes');
  }
  // A second delivery of anything would arrive within a few turns.
  await new Promise((resolve) => setTimeout(resolve, 50));
  for (let i = 0; i < pairs; i++) {
    assert.equal(rings[i], 1, `callee${i} rang ${rings[i]} times`);
    assert.equal(events[i].filter((e) => e.kindName === 'INVITATION_ACCEPTED').length, 1, `caller${i}`);
  }
  const d = beckon.diagnostics();
  assert.equal(d.strayCallbacks, 0);
  assert.equal(d.pendingOperations, 0);
});

test('[pool] callbacks reach JavaScript through its event loop: none while it runs, each in a turn of its own', async (t) => {
  const { client } = clients(t, hubUrl('pool-loop'), { dispatch: 'pool' });
  const alice = client();
  const events = record(alice);
  let settled = false;
  const login = alice.login('alice').then(() => {
    settled = true;
  });
  // The library is done long before this loop ends, but JavaScript is busy:
  // the pool thread waits for it instead of running JavaScript itself.
  const end = Date.now() + 100;
  while (Date.now() < end);
  assert.equal(events.length, 0);
  assert.equal(settled, false);
  await within(login, 5000, 'the login');
  assert.deepEqual(
    events.map((e) => e.stateName),
    ['CONNECTING', 'CONNECTED'],
  );

  // Promise jobs queued by one callback run before the next callback.
  const bob = client();
  const order = [];
  bob.on('connectionStateChanged', (e) => {
    order.push(e.stateName);
    queueMicrotask(() => order.push(`then ${e.stateName}`));
  });
  const bobLogin = bob.login('bob').then(() => order.push('login'));
  await within(bobLogin, 5000, "bob's login");
  assert.deepEqual(order, ['CONNECTING', 'then CONNECTING', 'CONNECTED', 'then CONNECTED', 'login']);
});

test('[pool] a client closes itself from its own listener and from its own continuation', async (t) => {
  const url = hubUrl('pool-self');
  const alice = new beckon.Client({ serverUrl: url, dispatch: 'pool' });
  let closing = null;
  alice.on('connectionStateChanged', (e) => {
    if (e.stateName === 'CONNECTED') closing = alice.close();
  });
  let closeEvents = 0;
  const closed = new Promise((resolve) =>
    alice.on('close', () => {
      closeEvents += 1;
      resolve();
    }),
  );
  const login = outcome(alice.login('alice'));
  await within(closed, 5000, 'the close event');
  assert.ok(closing instanceof Promise);
  await within(closing, 5000, 'close');
  const settled = await within(login, 5000, 'the login');
  assert.ok(settled === 'ok' || settled === 'ShutdownError', settled);
  await assert.rejects(alice.logout(), beckon.ShutdownError);
  assert.equal(closeEvents, 1);

  // From a continuation of one of its own operations, with more in flight.
  const { loggedIn } = clients(t, url, { dispatch: 'pool' });
  await loggedIn('bob');
  const carol = await loggedIn('carol');
  const more = [];
  const closedCarol = carol.sendInvitation(['bob'], { timeoutSeconds: 30 }).then(() => {
    for (let i = 0; i < 5; i++) more.push(outcome(carol.sendInvitation(['ghost'], { timeoutSeconds: 30 })));
    return carol.close();
  });
  await within(closedCarol, 5000, "carol's close");
  const outcomes = await within(Promise.all(more), 5000, 'the later sends');
  assert.equal(outcomes.length, 5);
  assert.ok(
    outcomes.every((o) => o === 'ok' || o === 'ShutdownError'),
    [...new Set(outcomes)].join(', '),
  );
  await assert.rejects(carol.logout(), beckon.ShutdownError);
  assert.equal(beckon.diagnostics().strayCallbacks, 0);
});

test('[pool] a listener closes another pool client with work in flight', async (t) => {
  const url = hubUrl('pool-other');
  const { loggedIn } = clients(t, url, { dispatch: 'pool' });
  const alice = await loggedIn('alice');
  const bob = await loggedIn('bob');
  let closing = null;
  alice.on('invitationReceived', () => {
    if (closing === null) closing = bob.close();
  });
  // Offline "ghost" first: alice's ring (and bob's close) can only follow.
  const inFlight = [];
  for (let i = 0; i < 20; i++) inFlight.push(outcome(bob.sendInvitation(['ghost'], { timeoutSeconds: 30 })));
  inFlight.push(outcome(bob.sendInvitation(['alice'], { timeoutSeconds: 30 })));
  const outcomes = await within(Promise.all(inFlight), 5000, "bob's sends");
  assert.ok(
    outcomes.every((o) => o === 'ok' || o === 'ShutdownError'),
    [...new Set(outcomes)].join(', '),
  );
  assert.ok(closing instanceof Promise);
  await within(closing, 5000, "bob's close");
  assert.equal(alice.userId, 'alice');
  assert.equal(beckon.diagnostics().strayCallbacks, 0);
});

test("pool-mode clients share a fixed share of koffi's slots: thread mode allows that many fewer, no matter how many pool clients", async () => {
  const url = hubUrl('pool-cap');
  const max = koffi.config().max_async_calls;
  const open = async (options, limit) => {
    const made = [];
    let refused = null;
    try {
      for (let i = 0; i < limit; i++) made.push(new beckon.Client({ serverUrl: url, ...options }));
    } catch (error) {
      refused = error;
    }
    return { made, refused };
  };
  const all = [];
  try {
    const pool = await open({ dispatch: 'pool' }, 300);
    all.push(...pool.made);
    assert.equal(pool.refused, null, 'pool-mode clients take no slot each');
    const threads = await open({}, 5000);
    all.push(...threads.made);
    assert.ok(threads.refused instanceof RangeError, `expected a RangeError, got ${threads.refused}`);
    assert.equal(threads.made.length, max - RESERVE - POOL_MAX_THREADS);
    assert.match(threads.refused.message, /pool-mode/);
    // Logged in and inviting one another while all of them close at once.
    await within(Promise.all(all.map((c, i) => c.login(`u${i}`))), 20000, 'every login');
    const ops = all.map((c, i) => outcome(c.sendInvitation([`u${(i + 1) % all.length}`], { timeoutSeconds: 30 })));
    await within(Promise.all(all.map((c) => c.close())), 20000, 'every close');
    const outcomes = await within(Promise.all(ops), 5000, 'every send');
    assert.ok(
      outcomes.every((o) => o === 'ok' || o === 'ShutdownError'),
      [...new Set(outcomes)].join(', '),
    );
    all.length = 0;

    // Thread-mode clients holding every slot but the frees': no room for the pool.
    const full = await open({}, 5000);
    all.push(...full.made);
    assert.equal(full.made.length, max - RESERVE);
    assert.throws(
      () => new beckon.Client({ serverUrl: url, dispatch: 'pool' }),
      (error) => error instanceof RangeError && /pool-mode clients need 8/.test(error.message),
    );
    // Poll-mode clients still take none.
    all.push(new beckon.Client({ serverUrl: url, dispatch: 'poll' }));
    await within(Promise.all(all.map((c) => c.close())), 20000, 'every close');
    // With them closed, a pool-mode client opens again.
    const again = new beckon.Client({ serverUrl: url, dispatch: 'pool' });
    all.push(again);
    await within(again.login('again'), 5000, 'a login');
  } finally {
    await within(Promise.all(all.map((c) => c.close())), 20000, 'closing the rest');
  }
  const d = beckon.diagnostics();
  assert.equal(d.strayCallbacks, 0);
  assert.equal(d.pendingOperations, 0);
});
