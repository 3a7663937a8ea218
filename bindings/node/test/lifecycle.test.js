'use strict';
// Exactly once: every operation's promise settles once, including when the
// client is closed with work in flight; close, dispose, ref/unref.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { beckon, hubUrl, within, record, until, clients, spyOnC } = require('./helpers');

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
  test(`[${dispatch}] many operations in flight: each settles exactly once with its own result`, async (t) => {
    const url = hubUrl('many');
    const { loggedIn } = clients(t, url, { dispatch });
    const alice = await loggedIn('alice');
    const bob = await loggedIn('bob');
    const before = beckon.diagnostics();
    const n = 150;
    const tally = { fulfilled: 0, rejected: 0 };
    const sends = [];
    for (let i = 0; i < n; i++) {
      sends.push(counted(alice.sendInvitation(['bob'], { timeoutSeconds: 60, extendedData: `n${i}` }), tally));
    }
    const results = await within(Promise.all(sends), 20000, `${n} send results`);
    assert.equal(tally.fulfilled, n);
    assert.equal(tally.rejected, 0);
    const ids = results.map((r) => r.value.invitationId);
    assert.equal(new Set(ids).size, n, 'every send got its own invitation id');

    // Answer all of them at once: half accepted, half refused; plus answers
    // that must fail (a second answer to each of the first ten).
    const answers = ids.map((id, i) =>
      counted(i % 2 ? bob.refuseInvitation(id) : bob.acceptInvitation(id, { extendedData: `a${i}` }), tally),
    );
    const second = ids.slice(0, 10).map((id) => counted(bob.refuseInvitation(id), tally));
    const answered = await within(Promise.all(answers), 20000, 'the answers');
    const again = await within(Promise.all(second), 20000, 'the second answers');
    assert.ok(answered.every((r) => r.ok));
    assert.ok(again.every((r) => !r.ok && r.error instanceof beckon.AlreadyAnsweredError));
    assert.equal(tally.fulfilled, 2 * n);
    assert.equal(tally.rejected, 10);
    const after = beckon.diagnostics();
    assert.equal(after.pendingOperations, before.pendingOperations);
    assert.equal(after.strayCallbacks, 0);
  });

  test(`[${dispatch}] close with work in flight: every promise settles once, with a result or ShutdownError`, async (t) => {
    const url = hubUrl('inflight');
    const { loggedIn, client } = clients(t, url, { dispatch });
    await loggedIn('bob');
    const alice = client();
    const tally = { fulfilled: 0, rejected: 0 };
    const ops = [counted(alice.login('alice'), tally)];
    for (let i = 0; i < 60; i++) {
      ops.push(counted(alice.sendInvitation(['bob', 'carol'], { timeoutSeconds: 60 }), tally));
    }
    ops.push(counted(alice.logout(), tally));
    const closing = alice.close();
    assert.equal(alice.closed, true);
    assert.equal(alice.close(), closing, 'close is idempotent');
    // Nothing reaches C once closing began.
    const send = spyOnC(t, 'beckon_send_invitation');
    const late = counted(alice.sendInvitation(['bob'], { timeoutSeconds: 5 }), tally);
    await within(closing, 10000, 'close');
    const outcomes = await within(Promise.all([...ops, late]), 10000, 'every operation');
    assert.equal(tally.fulfilled + tally.rejected, ops.length + 1, 'a promise settled twice or never');
    for (const outcome of outcomes) {
      if (!outcome.ok) {
        assert.ok(
          outcome.error instanceof beckon.ShutdownError || outcome.error instanceof beckon.NotLoggedInError,
          `unexpected ${outcome.error.name}: ${outcome.error.message}`,
        );
      }
    }
    assert.equal(outcomes.at(-1).ok, false);
    assert.ok(outcomes.at(-1).error instanceof beckon.ShutdownError);
    assert.equal(send.calls(), 0);

    // Again on a client whose first results were delivered before the close:
    // those stay fulfilled, the rest settle once each.
    const carol = client();
    await within(carol.login('carol'), 5000, "carol's login");
    const tally2 = { fulfilled: 0, rejected: 0 };
    const more = [];
    for (let i = 0; i < 60; i++) {
      more.push(counted(carol.sendInvitation(['bob'], { timeoutSeconds: 60 }), tally2));
    }
    const first = await within(more[0], 5000, 'the first send');
    assert.ok(first.ok, first.error && first.error.message);
    await within(carol.close(), 10000, "carol's close");
    const rest = await within(Promise.all(more), 10000, "carol's operations");
    assert.equal(tally2.fulfilled + tally2.rejected, 60);
    for (const outcome of rest) {
      if (outcome.ok) assert.ok(outcome.value.invitationId.length > 0);
      else assert.ok(outcome.error instanceof beckon.ShutdownError, outcome.error.message);
    }
    assert.equal(beckon.diagnostics().strayCallbacks, 0);
    await until(() => beckon.diagnostics().pendingOperations === 0, 5000, 'no pending operation');
  });

  test(`[${dispatch}] close from inside an event listener`, async (t) => {
    const url = hubUrl('closeinside');
    const { loggedIn } = clients(t, url, { dispatch });
    const alice = await loggedIn('alice');
    const bob = await loggedIn('bob');
    let closedFromListener = null;
    const pendingAccept = [];
    bob.on('invitationReceived', (e) => {
      // An operation started in the listener, then the client closed under it.
      pendingAccept.push(bob.acceptInvitation(e.invitationId).then(
        () => 'ok',
        (error) => error.name,
      ));
      closedFromListener = bob.close();
    });
    const closeEvent = new Promise((resolve) => bob.once('close', resolve));
    await within(alice.sendInvitation(['bob'], { timeoutSeconds: 30 }), 5000, 'send');
    await within(closeEvent, 5000, "bob's close event");
    assert.ok(closedFromListener instanceof Promise);
    await within(closedFromListener, 5000, 'close');
    const [outcome] = await within(Promise.all(pendingAccept), 5000, 'the accept');
    assert.ok(outcome === 'ok' || outcome === 'ShutdownError', outcome);
    await assert.rejects(bob.login('bob'), beckon.ShutdownError);
  });
}

test('dispose: asyncDispose frees; dispose frees a poll-mode client at once', async (t) => {
  const url = hubUrl('dispose');
  const { loggedIn } = clients(t, url);
  await loggedIn('bob');
  const a = new beckon.Client({ serverUrl: url });
  await a.login('alice');
  const closed = new Promise((resolve) => a.once('close', resolve));
  await a[Symbol.asyncDispose]();
  await within(closed, 1000, 'the close event');
  assert.equal(a.closed, true);

  const p = new beckon.Client({ serverUrl: url, dispatch: 'poll', pollIntervalMs: 0 });
  const login = p.login('alice');
  let closeEvents = 0;
  p.on('close', () => (closeEvents += 1));
  p[Symbol.dispose]();
  assert.equal(closeEvents, 1, 'a poll-mode dispose is synchronous');
  await assert.rejects(login, beckon.ShutdownError);

  const t2 = new beckon.Client({ serverUrl: url });
  const login2 = t2.login('carol');
  t2[Symbol.dispose]();
  assert.equal(t2.closed, true);
  await assert.rejects(t2.logout(), beckon.ShutdownError);
  const settled = await within(
    login2.then(
      () => 'ok',
      (e) => e.name,
    ),
    5000,
    'the login',
  );
  assert.ok(settled === 'ok' || settled === 'ShutdownError', settled);
});

test('logout resolves after its DISCONNECTED event; operations then need a new login', async (t) => {
  const url = hubUrl('logout');
  const { loggedIn } = clients(t, url);
  const alice = await loggedIn('alice');
  const events = record(alice);
  const atResolve = await within(
    alice.logout().then(() => events.map((e) => `${e.stateName}:${e.reasonName}`)),
    5000,
    'logout',
  );
  assert.deepEqual(atResolve, ['DISCONNECTED:LOGOUT']);
  await assert.rejects(alice.sendInvitation(['bob'], { timeoutSeconds: 5 }), beckon.NotLoggedInError);
  await within(alice.login('alice'), 5000, 'login again');
});

/** Runs a small script in a child process with the same library. */
function runChild(source, timeout = 20000) {
  return spawnSync(process.execPath, ['-e', source], {
    cwd: path.join(__dirname, '..'),
    env: process.env,
    encoding: 'utf8',
    timeout,
  });
}

test('an open client keeps the process alive; unref() lets it exit', () => {
  const child = runChild(`
    const beckon = require('.');
    const c = new beckon.Client({ serverUrl: 'memory://node-unref-${process.pid}' });
    c.login('alice').then(() => { console.log('logged in'); c.unref(); });
  `);
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim(), 'logged in');

  const held = runChild(
    `
    const beckon = require('.');
    const c = new beckon.Client({ serverUrl: 'memory://node-held-${process.pid}' });
    c.login('alice').then(() => console.log('logged in'));
  `,
    1500,
  );
  assert.equal(held.signal, 'SIGTERM', 'the process exited although a client was open');
  assert.equal(held.stdout.trim(), 'logged in');
});

test("a listener's exception is an uncaught exception in JavaScript, and the client goes on", () => {
  const child = runChild(`
    const beckon = require('.');
    const url = 'memory://node-throw-${process.pid}';
    const errors = [];
    process.on('uncaughtException', (e) => errors.push(e.message));
    (async () => {
      const alice = new beckon.Client({ serverUrl: url });
      const bob = new beckon.Client({ serverUrl: url });
      bob.on('invitationReceived', () => { throw new Error('listener failed'); });
      const accepted = new Promise((r) => alice.once('invitationAccepted', r));
      let answered;
      bob.on('event', (e) => {
        if (e.kindName === 'INVITATION_RECEIVED') answered = bob.acceptInvitation(e.invitationId);
      });
      await alice.login('alice');
      await bob.login('bob');
      await alice.sendInvitation(['bob'], { timeoutSeconds: 30 });
      await accepted;
      // alice may hear of the accept before bob's own result arrives: closing
      // bob first would reject it with ShutdownError.
      await answered;
      await alice.close();
      await bob.close();
      console.log(JSON.stringify(errors));
    })();
  `);
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), ['listener failed']);
});

test("thread-mode clients are capped below koffi's async call slots; closing them all at once settles everything", async () => {
  const { koffi } = require('../lib/native');
  const url = hubUrl('cap');
  const made = [];
  let refused;
  try {
    for (let i = 0; i < 5000; i++) made.push(new beckon.Client({ serverUrl: url }));
  } catch (error) {
    refused = error;
  }
  try {
    assert.ok(refused instanceof RangeError, `expected a RangeError, got ${refused}`);
    assert.match(refused.message, /dispatch "poll"/);
    assert.equal(made.length, koffi.config().max_async_calls - 8);
    // Poll-mode clients take no slot.
    made.push(new beckon.Client({ serverUrl: url, dispatch: 'poll' }));

    await within(Promise.all(made.map((c, i) => c.login(`u${i}`))), 20000, 'every login');
    // Each user invites the next one, so every client has results and events
    // in flight while all of them close at once.
    const ops = made.map((c, i) =>
      c.sendInvitation([`u${(i + 1) % made.length}`], { timeoutSeconds: 30 }).then(
        (r) => (r.invitationId.length > 0 ? 'ok' : 'empty id'),
        (e) => e.name,
      ),
    );
    await within(Promise.all(made.map((c) => c.close())), 20000, 'every close');
    const outcomes = await within(Promise.all(ops), 5000, 'every send');
    assert.ok(
      outcomes.every((o) => o === 'ok' || o === 'ShutdownError'),
      [...new Set(outcomes)].join(', '),
    );
    const after = beckon.diagnostics();
    assert.equal(after.strayCallbacks, 0);
    assert.equal(after.pendingOperations, 0);
    // With the others closed, a thread-mode client can be opened again.
    const again = new beckon.Client({ serverUrl: url });
    await again.close();
  } finally {
    await Promise.all(made.map((c) => c.close()));
  }
});
