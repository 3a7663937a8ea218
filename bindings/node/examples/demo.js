#!/usr/bin/env node
// The invitation flow on the embedded memory:// hub, from Node.js.
//
// alice invites bob and carol, and dave, who never logs in, with a 2 s
// timeout: bob's device rings and he accepts, carol refuses, dave times out.
// Then alice invites bob again and cancels, and reads her history (both
// invitations have ended) a page at a time. Every result and event is printed.
//
//   BECKON_LIBRARY=target/debug/libbeckon.so node bindings/node/examples/demo.js

'use strict';

const beckon = require('..');

const HUB = 'memory://demo-node';

function say(who, text) {
  console.log(`[${who.padEnd(5)}] ${text}`);
}

function describe(event) {
  switch (event.kindName) {
    case 'CONNECTION_STATE_CHANGED':
      return `${event.stateName} (${event.reasonName})`;
    case 'INVITATION_RECEIVED':
      return `from ${event.inviter}, ${event.secondsLeft} s left, data '${event.extendedData}'`;
    case 'INVITATION_USER_STATE_CHANGED':
      return `${event.userId} is now ${event.stateName}`;
    case 'INVITATION_ACCEPTED':
    case 'INVITATION_REFUSED':
      return `by ${event.invitee}, data '${event.extendedData}'`;
    case 'INVITATION_CANCELLED':
      return `by ${event.inviter}, data '${event.extendedData}'`;
    case 'INVITATION_TIMEOUT':
      return `inviter ${event.inviter}`;
    case 'INVITATION_RESPONSE_TIMEOUT':
      return `no answer from ${event.invitees.map((i) => i.userId).join(', ')}`;
    default:
      return '';
  }
}

/** A logged-in user whose every event is printed; `answer` says what they do when it rings. */
async function user(name, answer) {
  const client = new beckon.Client({ serverUrl: HUB });
  client.on('event', (event) => say(name, `event ${event.kindName}: ${describe(event)}`));
  client.on('invitationReceived', async (event) => {
    try {
      if (answer.now === 'accept') {
        await client.acceptInvitation(event.invitationId, { extendedData: 'see you' });
        say(name, 'accepted');
      } else if (answer.now === 'refuse') {
        await client.refuseInvitation(event.invitationId, { extendedData: 'busy' });
        say(name, 'refused');
      }
    } catch (error) {
      say(name, `answer failed: ${error.name}: ${error.message}`);
    }
  });
  await client.login(name);
  say(name, 'logged in');
  return client;
}

/** The next `name` event of `client`, or an error after `ms`. */
function next(client, name, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off(name, done);
      reject(new Error(`no ${name} event within ${ms} ms`));
    }, ms);
    function done(event) {
      clearTimeout(timer);
      resolve(event);
    }
    client.once(name, done);
  });
}

async function main() {
  const abi = beckon.abiVersion();
  console.log(`beckon ${beckon.version()} (ABI ${abi >>> 16}.${abi & 0xffff}) on ${HUB}\n`);
  const bobAnswer = { now: 'accept' };
  const carolAnswer = { now: 'refuse' };
  const alice = await user('alice', { now: null });
  const bob = await user('bob', bobAnswer);
  const carol = await user('carol', carolAnswer);

  try {
    console.log('\n--- alice invites bob, carol and dave (offline), 2 s timeout ---');
    const accepted = next(alice, 'invitationAccepted');
    const timedOut = next(alice, 'invitationResponseTimeout');
    const first = await alice.sendInvitation(['bob', 'carol', 'dave'], {
      timeoutSeconds: 2,
      extendedData: '{"call":"video"}',
      notification: { title: 'Incoming call', message: 'alice is calling' },
    });
    say('alice', `sent invitation ${first.invitationId}`);
    for (const offline of first.errorInvitees) say('alice', `    ${offline.userId}: ${offline.stateName}`);
    const heard = await accepted;
    say('alice', `heard: ${heard.invitee} accepted`);
    await timedOut;

    console.log('\n--- alice invites bob and carol again, then cancels ---');
    bobAnswer.now = null;
    carolAnswer.now = null;
    const ringing = next(bob, 'invitationReceived');
    const second = await alice.sendInvitation(['bob', 'carol'], { timeoutSeconds: 30 });
    say('alice', `sent invitation ${second.invitationId}`);
    await ringing;
    const bobCancelled = next(bob, 'invitationCancelled');
    const carolCancelled = next(carol, 'invitationCancelled');
    const cancel = await alice.cancelInvitation(second.invitationId, { extendedData: 'never mind' });
    say('alice', `cancelled (${cancel.errorInvitees.length} could not be)`);
    await Promise.all([bobCancelled, carolCancelled]);

    console.log("\n--- alice's history: the invitations she sent, newest first, a page of 1 at a time ---");
    let cursor = null;
    do {
      const page = await alice.queryInvitations({ role: beckon.HistoryRole.SENT, limit: 1, cursor });
      for (const s of page.invitations) {
        const states = s.invitees.map((i) => `${i.userId} ${i.stateName}`).join(', ');
        say('alice', `${s.invitationId}: ${states} (ended after ${s.endedMs - s.createdMs} ms)`);
      }
      cursor = page.nextCursor;
    } while (cursor !== null);

    console.log('\n--- errors are typed ---');
    try {
      await bob.acceptInvitation(second.invitationId);
    } catch (error) {
      say('bob', `${error.name} (code ${error.code}, ${error.codeName}): ${error.message}`);
    }
  } finally {
    await Promise.all([alice.close(), bob.close(), carol.close()]);
  }
  console.log('\n--- done ---');
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
