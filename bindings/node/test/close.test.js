'use strict';
// close() when the library refuses to free the client (ABI 2.1's
// BECKON_ERROR_WOULD_DEADLOCK): the promise rejects with WouldDeadlockError
// and the client stays open.
//
// The library returns WOULD_DEADLOCK when a client is freed from another
// client's callback while a callback of the first is itself freeing that
// other one. Two binding clients cannot get there: thread- and pool-mode
// clients are freed on koffi's worker threads, never inside a callback, and
// the callbacks that run nested inside a poll-mode client's free only settle
// promises (whose continuations run later) while its events are dropped. So
// the real case below pairs a binding client with a client made with the C
// functions directly, whose own callback calls the binding's close(); the
// other cases stand in for the library with a stub.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { beckon, hubUrl, within, nextEvent, clients } = require('./helpers');
const { koffi, T, library } = require('../lib/native');
const { DispatchMode } = require('../lib/constants');

/** A poll-mode client made with the C functions, freed after the test if still live. */
function rawPollClient(t, url) {
  const fn = library().fn;
  const out = [null];
  const code = fn.beckon_client_new(
    {
      struct_size: koffi.sizeof(T.clientConfig),
      server_url: url,
      device_id: null,
      dispatch_mode: DispatchMode.POLL,
      request_timeout_ms: 0,
    },
    out,
  );
  assert.equal(code, 0, fn.beckon_last_error_message());
  return out[0];
}

test('[poll] a real WOULD_DEADLOCK: close() rejects with WouldDeadlockError, the client stays open, a later close() works', async (t) => {
  const url = hubUrl('deadlock');
  const fn = library().fn;
  const { loggedIn } = clients(t, url);
  const bob = await loggedIn('bob');
  const alice = new beckon.Client({ serverUrl: url, dispatch: 'poll', pollIntervalMs: 0 });
  t.after(() => alice.close());

  // `raw` has a login callback queued (memory hubs complete logins at once);
  // it runs, with SHUTDOWN, nested inside raw's free below.
  const raw = rawPollClient(t, url);
  let rawFreed = false;
  let refused = null;
  const rawCallback = koffi.register((_userData, result) => {
    assert.equal(koffi.decode(result, T.result).error, beckon.ErrorCode.SHUTDOWN);
    // raw's callback frees alice, whose callback is freeing raw: each would
    // wait for the other.
    refused = alice.close();
    refused.catch(() => {}); // examined below
  }, T.resultCallback);
  t.after(() => koffi.unregister(rawCallback));
  assert.equal(fn.beckon_client_login(raw, 'raw', null, rawCallback, null), 0);

  // alice's listener (run inside alice's poll) frees raw.
  alice.once('connectionStateChanged', () => {
    assert.equal(fn.beckon_client_free(raw), 0);
    rawFreed = true;
  });
  const login = alice.login('alice');
  const deadline = Date.now() + 5000;
  while (!rawFreed && Date.now() < deadline) alice.poll(50);
  assert.ok(rawFreed, "alice's listener did not run");
  assert.ok(refused instanceof Promise, "raw's callback did not run");

  const error = await within(
    refused.then(
      () => assert.fail('close() resolved'),
      (e) => e,
    ),
    5000,
    'the refused close',
  );
  assert.ok(error instanceof beckon.WouldDeadlockError, `${error}`);
  assert.ok(error instanceof beckon.BeckonError);
  assert.equal(error.code, 17);
  assert.equal(error.codeName, 'WOULD_DEADLOCK');
  assert.match(error.message, /would wait for each other/, "the library's own message");

  // Still open: operations work, and the events of the login went on.
  assert.equal(alice.closed, false);
  while (Date.now() < deadline && alice.poll(20) > 0);
  await within(login, 5000, "alice's login");
  assert.equal(alice.userId, 'alice');
  const rings = nextEvent(bob, 'invitationReceived');
  const sent = alice.sendInvitation(['bob'], { timeoutSeconds: 30 });
  while (Date.now() < deadline && alice.poll(20) === 0);
  assert.equal((await within(rings, 5000, 'the ring')).inviter, 'alice');
  assert.ok((await within(sent, 5000, 'the send')).invitationId);

  // Closed outside the callbacks, it is freed.
  let closeEvents = 0;
  alice.on('close', () => (closeEvents += 1));
  await within(alice.close(), 5000, 'the second close');
  assert.equal(alice.closed, true);
  assert.equal(closeEvents, 1);
  await assert.rejects(alice.login('alice'), beckon.ShutdownError);
});

/** Makes beckon_client_free return `code` without freeing, until restored. */
function refuseFrees(t, code) {
  const fn = library().fn;
  const original = fn.beckon_client_free;
  let refusals = 0;
  const stub = () => {
    refusals += 1;
    return code;
  };
  stub.async = (_handle, done) => {
    refusals += 1;
    setImmediate(() => done(null, code));
  };
  fn.beckon_client_free = stub;
  const restore = () => {
    fn.beckon_client_free = original;
  };
  t.after(restore);
  return { restore, refusals: () => refusals };
}

for (const dispatch of ['thread', 'pool', 'poll']) {
  test(`[${dispatch}] a close() the library refuses rejects with its error; the client stays open and usable`, async (t) => {
    const url = hubUrl('refusedclose');
    const { loggedIn } = clients(t, url, { dispatch });
    const alice = await loggedIn('alice');
    const bob = await loggedIn('bob');
    let closeEvents = 0;
    alice.on('close', () => (closeEvents += 1));

    const stub = refuseFrees(t, beckon.ErrorCode.WOULD_DEADLOCK);
    const closing = alice.close();
    if (dispatch === 'poll') {
      // Freed (or not) on this thread, before close() returns.
      assert.equal(alice.closed, false, 'open again at once');
    } else {
      assert.equal(alice.closed, true, 'closing has begun');
      assert.equal(alice.close(), closing, 'idempotent while it runs');
    }
    await assert.rejects(within(closing, 5000, 'the close'), (error) => {
      assert.ok(error instanceof beckon.WouldDeadlockError, `${error}`);
      assert.equal(error.codeName, 'WOULD_DEADLOCK');
      assert.ok(error.message.length > 0);
      return true;
    });
    assert.equal(stub.refusals(), 1);
    assert.equal(alice.closed, false, 'open again');
    assert.equal(closeEvents, 0);
    assert.equal(alice.userId, 'alice');
    const rings = nextEvent(bob, 'invitationReceived');
    await within(alice.sendInvitation(['bob'], { timeoutSeconds: 30 }), 5000, 'a send after the refused close');
    await rings;

    // The next close() tries again.
    stub.restore();
    await within(alice.close(), 5000, 'the close');
    assert.equal(alice.closed, true);
    assert.equal(closeEvents, 1);
    assert.equal(beckon.diagnostics().strayCallbacks, 0);
  });
}

test('Symbol.dispose of a client whose free is refused: an uncaught WouldDeadlockError, the client open', () => {
  const child = spawnSync(
    process.execPath,
    [
      '-e',
      `
      const beckon = require('.');
      const fn = require('./lib/native').library().fn;
      const original = fn.beckon_client_free;
      process.on('uncaughtException', (e) => {
        console.log(e.name, alice.closed);
        fn.beckon_client_free = original;
        alice.close().then(() => console.log('closed', alice.closed));
      });
      const alice = new beckon.Client({ serverUrl: 'memory://node-dispose-${process.pid}', dispatch: 'poll' });
      alice.login('alice').then(() => {
        fn.beckon_client_free = () => beckon.ErrorCode.WOULD_DEADLOCK;
        alice[Symbol.dispose]();
      });
      `,
    ],
    { cwd: path.join(__dirname, '..'), env: process.env, encoding: 'utf8', timeout: 20000 },
  );
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(child.stdout.trim().split('\n'), ['WouldDeadlockError false', 'closed true']);
});
