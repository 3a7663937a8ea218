'use strict';
// Push targets and push results (ABI 2.2): bad targets throw at once naming
// target.<field>; a plain memory:// hub pushes through no provider; with a
// library built with the test-hooks feature, a hub with a scripted push
// outlet shows set/clear succeeding and the inviter's invitationPushResult
// events.

const test = require('node:test');
const assert = require('node:assert/strict');
const { randomBytes } = require('node:crypto');
const { beckon, hubUrl, until, record, clients } = require('./helpers');
const { koffi, T, library } = require('../lib/native');
const { PushProvider, ApnsEnvironment, PushOutcome, EventKind } = beckon;

const APNS = 'ab'.repeat(32);

test('the push constants', () => {
  assert.equal(EventKind.INVITATION_PUSH_RESULT, 10);
  assert.deepEqual(Object.values(PushProvider), [1, 2, 3, 4]);
  assert.deepEqual(Object.values(ApnsEnvironment), [0, 1]);
  assert.deepEqual(Object.values(PushOutcome), [1, 2, 3]);
  const { fn } = library();
  for (const [name, value] of Object.entries(PushProvider)) assert.equal(fn.beckon_push_provider_name(value), name);
  for (const [name, value] of Object.entries(PushOutcome)) assert.equal(fn.beckon_push_outcome_name(value), name);
});

test('bad targets throw at once, naming the field', async (t) => {
  const { loggedIn } = clients(t, hubUrl('push-bad'));
  const alice = await loggedIn('alice');
  const cases = [
    [undefined, beckon.InvalidArgumentError, /^target: is required/],
    [{ provider: PushProvider.FCM, token: '' }, beckon.InvalidArgumentError, /^target\.token: is empty/],
    [{ provider: PushProvider.FCM }, beckon.InvalidArgumentError, /^target\.token: is required/],
    [{ provider: PushProvider.FCM, token: 'a b' }, beckon.InvalidArgumentError, /^target\.token: ' ' is not allowed/],
    [{ provider: PushProvider.WEBHOOK, token: 'x'.repeat(4097) }, beckon.PayloadTooLargeError, /^target\.token: 4097/],
    [{ provider: PushProvider.APNS, token: 'zz' }, beckon.InvalidArgumentError, /^target\.token: an APNs device token/],
    [{ provider: PushProvider.FCM, token: 't', topic: 'com.example' }, beckon.InvalidArgumentError, /^target\.topic/],
    [
      { provider: PushProvider.FCM, token: 't', environment: ApnsEnvironment.SANDBOX },
      beckon.InvalidArgumentError,
      /^target\.environment/,
    ],
    [
      { provider: PushProvider.APNS, token: APNS, alertToken: APNS },
      beckon.InvalidArgumentError,
      /^target\.alert_token: only APNS_VOIP/,
    ],
    [{ provider: 9, token: 't' }, beckon.InvalidArgumentError, /^target\.provider: 9 is not a BECKON_PUSH_PROVIDER_/],
    [{ provider: 'FCM', token: 't' }, beckon.InvalidArgumentError, /^target\.provider: expected an integer/],
    [{ provider: PushProvider.FCM, token: 't', environment: 7 }, beckon.InvalidArgumentError, /^target\.environment: 7/],
    [{ provider: PushProvider.FCM, token: 't', tokn: 'x' }, beckon.InvalidArgumentError, /unknown option "tokn"/],
  ];
  for (const [target, error, message] of cases) {
    await assert.rejects(alice.setPushTarget(target), (e) => e instanceof error && message.test(e.message));
  }
  const loggedOut = new beckon.Client({ serverUrl: hubUrl('push-bad-out') });
  try {
    await assert.rejects(loggedOut.setPushTarget({ provider: PushProvider.FCM, token: 't' }), beckon.NotLoggedInError);
    await assert.rejects(loggedOut.clearPushTarget(), beckon.NotLoggedInError);
  } finally {
    await loggedOut.close();
  }
});

test('a memory hub pushes through nothing; clearing is fine', async (t) => {
  const { loggedIn } = clients(t, hubUrl('push-none'));
  const alice = await loggedIn('alice');
  await assert.rejects(
    alice.setPushTarget({ provider: PushProvider.APNS_VOIP, token: APNS, topic: 'com.example.calls' }),
    (e) => e instanceof beckon.InvalidArgumentError && /does not push through apns_voip/.test(e.message),
  );
  await alice.clearPushTarget();
});

/** The test hooks, or null when the library was built without them. */
function hooks() {
  return library().fn.testHooks;
}

function offline(h, hub, user, device, provider, token) {
  const target = { struct_size: koffi.sizeof(T.pushTarget), provider, token, topic: null, environment: 0, alert_token: null };
  assert.equal(h.beckon_test_offline_push_target(hub, user, device, target), 0, library().fn.beckon_last_error_message());
}

test('push results reach the inviter (test hooks)', async (t) => {
  const h = hooks();
  if (h === null) {
    assert.notEqual(process.env.BECKON_EXPECT_TEST_HOOKS, '1', 'BECKON_EXPECT_TEST_HOOKS=1 but the library was built without the test-hooks feature');
    t.skip('the library was built without the test-hooks feature (cargo build --features test-hooks)');
    return;
  }
  const name = `node-push-${process.pid}-${randomBytes(4).toString('hex')}`;
  assert.equal(h.beckon_test_memory_hub_create_with_push(name), 0);
  offline(h, name, 'bob', 'bob-phone', PushProvider.APNS_VOIP, APNS);
  offline(h, name, 'bob', 'bob-tablet', PushProvider.FCM, 'fail-token');
  const { loggedIn } = clients(t, `memory://${name}`);
  const alice = await loggedIn('alice', { deviceId: 'alice-phone' });
  const events = record(alice);
  const named = [];
  alice.on('invitationPushResult', (e) => named.push(e));

  // Alice's own phone: another token (a token rings one device of one user:
  // setting bob's would take it from him).
  await alice.setPushTarget({
    provider: PushProvider.APNS_VOIP,
    token: 'ef'.repeat(32),
    topic: 'com.example.calls',
    environment: ApnsEnvironment.SANDBOX,
    alertToken: 'cd'.repeat(32),
  });
  await alice.clearPushTarget();

  const { invitationId } = await alice.sendInvitation(['bob', 'erin'], { timeoutSeconds: 30 });
  await until(() => named.length >= 3, 5000, 'three push results');
  const byDevice = Object.fromEntries(named.map((e) => [`${e.invitee}/${e.deviceId}`, e]));
  assert.deepEqual(byDevice['bob/bob-phone'], {
    kind: EventKind.INVITATION_PUSH_RESULT,
    kindName: 'INVITATION_PUSH_RESULT',
    invitationId,
    invitee: 'bob',
    deviceId: 'bob-phone',
    provider: PushProvider.APNS_VOIP,
    providerName: 'APNS_VOIP',
    outcome: PushOutcome.SENT,
    outcomeName: 'SENT',
    reason: '',
  });
  const failed = byDevice['bob/bob-tablet'];
  assert.equal(failed.outcomeName, 'FAILED');
  assert.equal(failed.reason, 'ServiceUnavailable');
  const erin = byDevice['erin/null'];
  assert.equal(erin.provider, null);
  assert.equal(erin.outcomeName, 'NO_TARGET');
  assert.equal(named.length, 3);
  assert.equal(events.filter((e) => e.kindName === 'INVITATION_PUSH_RESULT').length, 3);
});
