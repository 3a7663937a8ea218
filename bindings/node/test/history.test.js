'use strict';
// History (ABI 2.3): queryInvitations pages through the user's ended
// invitations, newest sent first, with a cursor; roles and time ranges
// filter; bad queries are refused at once, by the binding (types) or by the
// library (its rules), naming query.<field>; every promise settles once.

const test = require('node:test');
const assert = require('node:assert/strict');
const { beckon, hubUrl, within, nextEvent, clients, spyOnC } = require('./helpers');
const { library } = require('../lib/native');
const { HistoryRole, InviteeState, BeckonError, InvalidArgumentError, NotLoggedInError } = beckon;

const ROUNDS = 7;
const PAGE = 3;

/** Asserts `promise` rejects with an instance of `Class` (its code and name) whose message names `field`. */
async function rejectsWith(promise, Class, field) {
  const error = await within(
    promise.then(
      () => assert.fail(`expected ${Class.name}, but it succeeded`),
      (e) => e,
    ),
    5000,
    `a ${Class.name}`,
  );
  assert.ok(error instanceof Class, `expected ${Class.name}, got ${error && error.name}: ${error && error.message}`);
  assert.ok(error instanceof BeckonError);
  assert.equal(error.code, Class.code);
  assert.equal(error.name, Class.name);
  if (field !== undefined) {
    assert.ok(error.message.startsWith(`${field}:`), `"${error.message}" does not name ${field}`);
  }
  return error;
}

/**
 * alice invites bob ROUNDS times, one at a time; bob refuses, accepts, or
 * alice cancels while it rings, in turn, a few milliseconds after the send.
 * Returns the ids in sending order, each invitation's final state for bob,
 * the time before the first send, and for each id the times (the memory
 * hub's clock is this process's) around its send and around its end.
 */
async function inviteRounds(alice, bob) {
  const startedMs = Date.now();
  const sent = [];
  const finalState = new Map();
  const times = new Map();
  for (let i = 0; i < ROUNDS; i++) {
    const rings = nextEvent(bob, 'invitationReceived');
    const sendingMs = Date.now();
    const { invitationId } = await within(alice.sendInvitation(['bob'], { timeoutSeconds: 30 }), 5000, `send ${i}`);
    const sentMs = Date.now();
    assert.equal((await rings).invitationId, invitationId);
    sent.push(invitationId);
    // So that the end is in a later millisecond than the send.
    await new Promise((resolve) => setTimeout(resolve, 3));
    const endingMs = Date.now();
    if (i % 3 === 0) {
      await within(bob.refuseInvitation(invitationId, { extendedData: 'busy' }), 5000, `refuse ${i}`);
      finalState.set(invitationId, InviteeState.REJECTED);
    } else if (i % 3 === 1) {
      await within(bob.acceptInvitation(invitationId), 5000, `accept ${i}`);
      finalState.set(invitationId, InviteeState.ACCEPTED);
    } else {
      const cancelled = nextEvent(bob, 'invitationCancelled');
      const { errorInvitees } = await within(alice.cancelInvitation(invitationId), 5000, `cancel ${i}`);
      assert.deepEqual(errorInvitees, []);
      await cancelled;
      finalState.set(invitationId, InviteeState.CANCELLED);
    }
    times.set(invitationId, { sendingMs, sentMs, endingMs, endedMs: Date.now() });
  }
  return { sent, finalState, startedMs, times };
}

/** Every page of `client`'s history for `query`, `limit` at a time, following the cursors. */
async function allPages(client, query, limit) {
  const pages = [];
  let cursor;
  for (;;) {
    const page = await within(client.queryInvitations({ ...query, limit, cursor }), 5000, 'a page');
    pages.push(page);
    assert.ok(pages.length <= ROUNDS + 1, 'the cursors do not end');
    if (page.nextCursor === null) return pages;
    assert.equal(typeof page.nextCursor, 'string');
    assert.notEqual(page.nextCursor, '');
    cursor = page.nextCursor;
  }
}

/** The ids of a page's invitations. */
const ids = (page) => page.invitations.map((s) => s.invitationId);

test('the history roles are the ABI values', () => {
  assert.deepEqual(HistoryRole, { ANY: 0, SENT: 1, RECEIVED: 2 });
  assert.ok(Object.isFrozen(HistoryRole));
  assert.equal(beckon.ABI_VERSION_MINOR, 3, 'queryInvitations needs ABI 2.3');
});

for (const dispatch of ['thread', 'pool', 'poll']) {
  test(`[${dispatch}] paging, final states, roles and time ranges`, async (t) => {
    const { loggedIn } = clients(t, hubUrl('history'), { dispatch });
    const alice = await loggedIn('alice');
    const bob = await loggedIn('bob');

    // Nothing has ended yet: an empty last page.
    assert.deepEqual(await within(alice.queryInvitations(), 5000, 'an empty history'), {
      invitations: [],
      nextCursor: null,
    });

    const { sent, finalState, startedMs, times } = await inviteRounds(alice, bob);

    // Alice pages through her history, PAGE at a time: every invitation
    // once, newest sent first (those of one millisecond in id order, so the
    // order is checked by time and the ids as a set).
    const pages = await allPages(alice, {}, PAGE);
    assert.equal(pages.length, Math.ceil(ROUNDS / PAGE));
    for (const page of pages.slice(0, -1)) assert.equal(page.invitations.length, PAGE);
    assert.equal(pages.at(-1).invitations.length, ROUNDS - PAGE * (pages.length - 1));
    const listed = pages.flatMap((page) => page.invitations);
    assert.equal(listed.length, ROUNDS);
    assert.equal(new Set(ids({ invitations: listed })).size, ROUNDS, 'an invitation was listed twice');
    assert.deepEqual(new Set(ids({ invitations: listed })), new Set(sent));
    let previous = Infinity;
    for (const summary of listed) {
      assert.ok(summary.createdMs <= previous, `not newest first: ${summary.createdMs} after ${previous}`);
      previous = summary.createdMs;
      assert.equal(typeof summary.createdMs, 'number');
      assert.equal(typeof summary.endedMs, 'number');
      // Sent and ended when the test did so.
      const when = times.get(summary.invitationId);
      const shown = JSON.stringify({ summary, when });
      assert.ok(summary.createdMs >= when.sendingMs && summary.createdMs <= when.sentMs, shown);
      assert.ok(summary.endedMs >= when.endingMs && summary.endedMs <= when.endedMs, shown);
      const state = finalState.get(summary.invitationId);
      const stateName = Object.keys(InviteeState).find((k) => InviteeState[k] === state);
      assert.deepEqual(summary, {
        invitationId: summary.invitationId,
        inviter: 'alice',
        invitees: [{ userId: 'bob', state, stateName }],
        createdMs: summary.createdMs,
        endedMs: summary.endedMs,
        sentByServer: false,
      });
      assert.ok(Object.isFrozen(summary) && Object.isFrozen(summary.invitees) && Object.isFrozen(summary.invitees[0]));
    }
    assert.ok(Object.isFrozen(pages[0]) && Object.isFrozen(pages[0].invitations));
    // The last one sent is the newest: first on the first page (nothing else
    // shares its millisecond unless the sends were that fast).
    const newest = listed.filter((s) => s.createdMs === listed[0].createdMs).map((s) => s.invitationId);
    assert.ok(newest.includes(sent.at(-1)), 'the last invitation sent is not among the newest');

    // A cursor goes on from where its page ended; "" is the first page.
    const again = await alice.queryInvitations({ limit: PAGE, cursor: '' });
    assert.deepEqual(ids(again), ids(pages[0]));
    assert.equal(again.nextCursor, pages[0].nextCursor);
    const second = await alice.queryInvitations({ limit: PAGE, cursor: pages[0].nextCursor });
    assert.deepEqual(ids(second), ids(pages[1]));

    // Roles: bob sent none and received all; alice the other way round.
    assert.deepEqual(await bob.queryInvitations({ role: HistoryRole.SENT }), { invitations: [], nextCursor: null });
    const received = await bob.queryInvitations({ role: HistoryRole.RECEIVED, limit: 100 });
    assert.equal(received.nextCursor, null);
    assert.deepEqual(new Set(ids(received)), new Set(sent));
    assert.ok(received.invitations.every((s) => s.inviter === 'alice'));
    assert.deepEqual((await alice.queryInvitations({ role: HistoryRole.RECEIVED })).invitations, []);
    assert.deepEqual(new Set(ids(await alice.queryInvitations({ role: HistoryRole.SENT }))), new Set(sent));
    // Every default (ANY, a page of 20): all of them, with no cursor after.
    const whole = await bob.queryInvitations({ role: HistoryRole.ANY, limit: 0 });
    assert.equal(whole.invitations.length, ROUNDS);
    assert.equal(whole.nextCursor, null);
    assert.deepEqual(await bob.queryInvitations(), whole);
    // The received ones paged as well, PAGE at a time.
    const bobPages = await allPages(bob, { role: HistoryRole.RECEIVED }, PAGE);
    assert.deepEqual(new Set(bobPages.flatMap(ids)), new Set(sent));
    assert.equal(bobPages.flatMap(ids).length, ROUNDS);

    // Time ranges: sent at or after sinceMs, before untilMs (Numbers or BigInts).
    const oldest = listed.at(-1).createdMs;
    const latest = listed[0].createdMs;
    assert.deepEqual((await alice.queryInvitations({ sinceMs: 1, untilMs: oldest })).invitations, []);
    assert.deepEqual((await alice.queryInvitations({ untilMs: BigInt(startedMs - 60_000) })).invitations, []);
    assert.deepEqual((await alice.queryInvitations({ sinceMs: latest + 1 })).invitations, []);
    const inRange = await alice.queryInvitations({ sinceMs: BigInt(oldest), untilMs: latest + 1, limit: 100 });
    assert.deepEqual(new Set(ids(inRange)), new Set(sent));
    const first = await alice.queryInvitations({ untilMs: oldest + 1, limit: 100 });
    assert.ok(first.invitations.length >= 1);
    assert.ok(first.invitations.every((s) => s.createdMs === oldest));
    assert.ok(ids(first).includes(sent[0]));
    // A range far in the future, past 2^53 ms: as a BigInt.
    assert.deepEqual((await alice.queryInvitations({ sinceMs: 2n ** 60n, untilMs: 2n ** 64n - 1n })).invitations, []);
  });
}

test('bad queries are refused at once, naming the field; before login NOT_LOGGED_IN', async (t) => {
  const url = hubUrl('history-bad');
  const { client, loggedIn } = clients(t, url);
  const query = spyOnC(t, 'beckon_query_invitations');

  // The library's rules: the call returns the error, no callback runs.
  const fresh = client();
  await rejectsWith(fresh.queryInvitations(), NotLoggedInError);
  await rejectsWith(fresh.queryInvitations({ role: HistoryRole.SENT, limit: 3 }), NotLoggedInError);
  assert.equal(query.calls(), 2);

  const alice = await loggedIn('alice');
  const before = beckon.diagnostics();
  const librarySide = [
    [{ role: 3 }, 'query.role'],
    [{ role: 0x7fffffff }, 'query.role'],
    [{ limit: 101 }, 'query.limit'],
    [{ limit: 2 ** 32 - 1 }, 'query.limit'],
    [{ sinceMs: 10, untilMs: 5 }, 'query.until_ms'],
    [{ sinceMs: 10n, untilMs: 10n }, 'query.until_ms'],
    [{ sinceMs: 2 ** 40 }, undefined], // fine: no bound after it
    [{ cursor: 'not-a-cursor' }, 'query.cursor'],
    [{ cursor: '123-' }, 'query.cursor'],
  ];
  for (const [q, field] of librarySide) {
    if (field === undefined) {
      assert.deepEqual(await within(alice.queryInvitations(q), 5000, 'a page'), { invitations: [], nextCursor: null });
    } else {
      const error = await rejectsWith(alice.queryInvitations(q), InvalidArgumentError, field);
      assert.doesNotMatch(error.message, /sinceMs|untilMs/, 'a library message');
    }
  }
  assert.equal(query.calls(), 2 + librarySide.length, 'these reach the library, which judges them');

  // A struct_size the library does not accept (the binding always sets it
  // right, so the test changes it on the way to C).
  const { fn } = library();
  const original = fn.beckon_query_invitations;
  fn.beckon_query_invitations = (handle, q, cb, ud) => original(handle, { ...q, struct_size: 4 }, cb, ud);
  try {
    await rejectsWith(alice.queryInvitations(), InvalidArgumentError, 'query.struct_size');
  } finally {
    fn.beckon_query_invitations = original;
  }

  // Types and C fields: the binding refuses before the C call.
  const calls = query.calls();
  const bindingSide = [
    ['all', 'query'],
    [[1], 'query'],
    [{ roles: 1 }, 'query'],
    [{ role: 'SENT' }, 'query.role'],
    [{ role: -1 }, 'query.role'],
    [{ role: 1.5 }, 'query.role'],
    [{ role: 2 ** 31 }, 'query.role'],
    [{ limit: -1 }, 'query.limit'],
    [{ limit: 2 ** 32 }, 'query.limit'],
    [{ limit: '3' }, 'query.limit'],
    [{ sinceMs: -1 }, 'query.sinceMs'],
    [{ sinceMs: 1.5 }, 'query.sinceMs'],
    [{ sinceMs: 2 ** 53 }, 'query.sinceMs'],
    [{ sinceMs: '5' }, 'query.sinceMs'],
    [{ sinceMs: new Date() }, 'query.sinceMs'],
    [{ sinceMs: -1n }, 'query.sinceMs'],
    [{ untilMs: 2n ** 64n }, 'query.untilMs'],
    [{ untilMs: NaN }, 'query.untilMs'],
    [{ cursor: 5 }, 'query.cursor'],
    [{ cursor: 'a\0b' }, 'query.cursor'],
  ];
  for (const [q, field] of bindingSide) {
    await rejectsWith(alice.queryInvitations(q), InvalidArgumentError, field);
  }
  assert.equal(query.calls(), calls, 'none of these reached the library');

  // Refused at once: nothing is left pending, and no callback came.
  const after = beckon.diagnostics();
  assert.equal(after.pendingOperations, before.pendingOperations);
  assert.equal(after.strayCallbacks, 0);

  // Logged out: NOT_LOGGED_IN again; closed: ShutdownError without a C call.
  await alice.logout();
  await rejectsWith(alice.queryInvitations(), NotLoggedInError);
  await alice.close();
  const closedCalls = query.calls();
  await rejectsWith(alice.queryInvitations(), beckon.ShutdownError);
  assert.equal(query.calls(), closedCalls);
});

/** Wraps `promise` so that how often (and how) it settled is counted. */
function counted(promise, tally) {
  return promise.then(
    (value) => {
      tally.fulfilled += 1;
      return { ok: true, value };
    },
    (error) => {
      tally.rejected += 1;
      return { ok: false, error };
    },
  );
}

for (const dispatch of ['thread', 'pool', 'poll']) {
  test(`[${dispatch}] every query settles exactly once, also when the client closes with some in flight`, async (t) => {
    const { loggedIn } = clients(t, hubUrl('history-once'), { dispatch });
    const alice = await loggedIn('alice');
    const bob = await loggedIn('bob');
    const { sent } = await inviteRounds(alice, bob);
    const before = beckon.diagnostics();

    // Many at once, each with its own result.
    const n = 60;
    const tally = { fulfilled: 0, rejected: 0 };
    const queries = [];
    for (let i = 0; i < n; i++) {
      queries.push(counted(alice.queryInvitations({ limit: (i % ROUNDS) + 1 }), tally));
    }
    const results = await within(Promise.all(queries), 20000, `${n} pages`);
    assert.equal(tally.fulfilled, n);
    assert.equal(tally.rejected, 0);
    results.forEach((r, i) => {
      const limit = (i % ROUNDS) + 1;
      assert.equal(r.value.invitations.length, limit, `query ${i}`);
      assert.equal(r.value.nextCursor === null, limit === ROUNDS, `query ${i}`);
    });
    const after = beckon.diagnostics();
    assert.equal(after.pendingOperations, before.pendingOperations);
    assert.equal(after.strayCallbacks, 0);

    // Closed with queries in flight: each settles once, with its page or
    // ShutdownError.
    const tally2 = { fulfilled: 0, rejected: 0 };
    const flying = [];
    for (let i = 0; i < 40; i++) flying.push(counted(alice.queryInvitations({ limit: 100 }), tally2));
    await within(alice.close(), 10000, 'close');
    const outcomes = await within(Promise.all(flying), 10000, 'the queries in flight');
    assert.equal(tally2.fulfilled + tally2.rejected, flying.length, 'a promise settled twice or never');
    for (const outcome of outcomes) {
      if (outcome.ok) assert.deepEqual(new Set(ids(outcome.value)), new Set(sent));
      else assert.ok(outcome.error instanceof beckon.ShutdownError, `${outcome.error.name}: ${outcome.error.message}`);
    }
    // Nothing settles later either.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(tally2.fulfilled + tally2.rejected, flying.length);
    assert.equal(beckon.diagnostics().strayCallbacks, 0);
  });
}
