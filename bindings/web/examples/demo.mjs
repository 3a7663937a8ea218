// The demo flow with the web client, in Node (the same code runs in a
// browser, without the `ws` import): alice invites bob, carol and dave; bob
// accepts, carol refuses, dave does not answer and times out; then alice
// sends a second invitation and cancels it.
//
//   beckon-server serve --dev --store memory --listen 127.0.0.1:7600 --admin 127.0.0.1:7601
//   node examples/demo.mjs ws://127.0.0.1:7600
import WebSocket from 'ws';
import { Client } from '../dist/beckon.js';

const serverUrl = process.argv[2] ?? 'ws://127.0.0.1:7600';
const say = (who, text) => console.log(`[${who.padEnd(5)}] ${text}`);

function user(name, answer) {
  const client = new Client({ serverUrl, WebSocket });
  let answered = false; // only the first invitation: the second is cancelled while it rings
  client.on('event', (e) => {
    if (e.kind === 'CONNECTION_STATE_CHANGED') say(name, `connection ${e.state} (${e.reason})`);
    else if (e.kind === 'INVITATION_USER_STATE_CHANGED') say(name, `${e.userId} is now ${e.state}`);
    else say(name, `${e.kind} ${e.inviter ?? e.invitee ?? ''}${e.extendedData ? ` '${e.extendedData}'` : ''}`);
  });
  client.on('invitationReceived', async (e) => {
    say(name, `ringing: ${e.inviter} calls, ${e.secondsLeft} s left`);
    if (answered) return;
    answered = true;
    if (answer === 'accept') await client.acceptInvitation(e.invitationId, { extendedData: 'on my way' });
    if (answer === 'refuse') await client.refuseInvitation(e.invitationId, { extendedData: 'busy' });
  });
  return client;
}

const alice = user('alice');
const invitees = { bob: user('bob', 'accept'), carol: user('carol', 'refuse'), dave: user('dave') };
await alice.login('alice', 'dev');
for (const [name, client] of Object.entries(invitees)) await client.login(name, 'dev');

const over = new Promise((resolve) => alice.on('invitationResponseTimeout', resolve));
const sent = await alice.sendInvitation(['bob', 'carol', 'dave'], { timeoutSeconds: 3, extendedData: 'video call' });
say('alice', `sent invitation ${sent.invitationId}`);
const timedOut = await over;
say('alice', `nobody else answered: ${timedOut.invitees.join(', ')} timed out`);

const second = await alice.sendInvitation(['bob'], { timeoutSeconds: 30 });
const cancelled = new Promise((resolve) => invitees.bob.on('invitationCancelled', resolve));
await alice.cancelInvitation(second.invitationId, { extendedData: 'never mind' });
await cancelled;
say('alice', 'cancelled the second invitation');

for (const client of [alice, ...Object.values(invitees)]) await client.close();
console.log('--- done ---');
