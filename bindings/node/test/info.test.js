'use strict';
// A client's identity and state: info(), deviceId, userId, connectionState.

const test = require('node:test');
const assert = require('node:assert/strict');
const { beckon, hubUrl, within, nextEvent, clients } = require('./helpers');

const { ConnectionState } = beckon;

for (const dispatch of ['thread', 'pool', 'poll']) {
  test(`[${dispatch}] before login, after login and after logout`, async (t) => {
    const { client } = clients(t, hubUrl('info'), { dispatch });
    const amy = client({ deviceId: 'amy-phone' });
    assert.deepEqual(amy.info(), {
      connectionState: ConnectionState.DISCONNECTED,
      connectionStateName: 'DISCONNECTED',
      userId: null,
      deviceId: 'amy-phone',
    });
    assert.ok(Object.isFrozen(amy.info()));
    assert.equal(amy.deviceId, 'amy-phone');
    assert.equal(amy.userId, null);
    assert.equal(amy.connectionState, ConnectionState.DISCONNECTED);

    await within(amy.login('amy'), 5000, 'the login');
    // The CONNECTED event is dispatched before the login settles.
    assert.deepEqual(amy.info(), {
      connectionState: ConnectionState.CONNECTED,
      connectionStateName: 'CONNECTED',
      userId: 'amy',
      deviceId: 'amy-phone',
    });
    assert.equal(amy.userId, 'amy');
    assert.equal(amy.connectionState, ConnectionState.CONNECTED);

    const disconnected = nextEvent(amy, 'connectionStateChanged', (e) => e.stateName === 'DISCONNECTED');
    await within(amy.logout(), 5000, 'the logout');
    await disconnected;
    assert.equal(amy.info().connectionStateName, 'DISCONNECTED');
    assert.equal(amy.userId, null);
    assert.equal(amy.connectionState, ConnectionState.DISCONNECTED);
    assert.equal(amy.deviceId, 'amy-phone');
  });
}

test('a random device id is told, and differs per client', async (t) => {
  const { client } = clients(t, hubUrl('info-random'));
  const first = client();
  const second = client();
  assert.equal(typeof first.deviceId, 'string');
  assert.ok(first.deviceId.length > 0);
  assert.equal(first.info().deviceId, first.deviceId);
  assert.notEqual(second.deviceId, first.deviceId);
  await within(first.login('ben'), 5000, 'the login');
  assert.equal(first.info().deviceId, first.deviceId);
});

test('the state is the one the listeners have been told', async (t) => {
  const { client } = clients(t, hubUrl('info-told'));
  const cat = client({ deviceId: 'cat-tab' });
  const seen = [];
  cat.on('connectionStateChanged', (event) => seen.push([event.stateName, cat.info()]));
  const disconnected = nextEvent(cat, 'connectionStateChanged', (e) => e.stateName === 'DISCONNECTED');
  await within(cat.login('cat'), 5000, 'the login');
  await within(cat.logout(), 5000, 'the logout');
  await disconnected;
  assert.deepEqual(
    seen.slice(0, 2).map(([name]) => name),
    ['CONNECTING', 'CONNECTED'],
  );
  assert.equal(seen.at(-1)[0], 'DISCONNECTED');
  for (const [name, info] of seen) {
    assert.equal(info.connectionStateName, name);
    assert.equal(info.deviceId, 'cat-tab');
  }
  assert.equal(seen[1][1].userId, 'cat');
});

test('poll mode: the state changes only as poll() dispatches the events', async (t) => {
  const { client } = clients(t, hubUrl('info-poll'), { dispatch: 'poll', pollIntervalMs: 0 });
  const dan = client();
  let done = false;
  const login = dan.login('dan').then(() => {
    done = true;
  });
  // Nothing is dispatched until polled: the app has been told nothing yet.
  assert.equal(dan.connectionState, ConnectionState.DISCONNECTED);
  const deadline = Date.now() + 5000;
  while (!done && Date.now() < deadline) {
    dan.poll(50);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await within(login, 1000, 'the login');
  assert.equal(dan.connectionState, ConnectionState.CONNECTED);
  assert.equal(dan.userId, 'dan');
});

for (const dispatch of ['thread', 'pool', 'poll']) {
  test(`[${dispatch}] a closed client throws ShutdownError but keeps its device id`, async () => {
    const eve = new beckon.Client({ serverUrl: hubUrl('info-closed'), deviceId: 'eve-pc', dispatch });
    await within(eve.login('eve'), 5000, 'the login');
    const closing = eve.close();
    // Closing has begun: the handle is never used again, even before the free ends.
    for (const read of [() => eve.info(), () => eve.userId, () => eve.connectionState]) {
      assert.throws(read, (error) => error instanceof beckon.ShutdownError && /closed/.test(error.message));
    }
    await within(closing, 5000, 'the close');
    assert.throws(() => eve.info(), beckon.ShutdownError);
    assert.equal(eve.deviceId, 'eve-pc');
  });
}
