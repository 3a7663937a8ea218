// Compiled with tsc --noEmit against dist/beckon.d.ts (test.sh): the public
// types say what the contract says, and misuse does not compile.
import {
  Client,
  BeckonError,
  ErrorCode,
  InviteeState,
  ConnectionState,
  InvitationClosedError,
  type BeckonEvent,
  type SendResult,
  type InvitationReceivedEvent,
} from '../../dist/beckon.js';

async function demo(WebSocketImpl: any): Promise<void> {
  const client = new Client({ serverUrl: 'ws://127.0.0.1:9000', WebSocket: WebSocketImpl, requestTimeoutMs: 5000 });
  const off = client.on('invitationReceived', (event: InvitationReceivedEvent) => {
    const id: string = event.invitationId;
    const users: readonly string[] = event.invitees;
    const seconds: number = event.secondsLeft + event.timeoutSeconds;
    void client.acceptInvitation(id, { extendedData: `${users.length} ${seconds}` });
  });
  client.addEventListener('connectionStateChanged', (e) => {
    const detail = (e as CustomEvent<BeckonEvent>).detail;
    if (detail.kind === 'CONNECTION_STATE_CHANGED' && detail.state === ConnectionState.CONNECTED) {
      const reason: 'LOGIN' | 'LOGOUT' | 'NETWORK' | 'KICKED_OUT' | 'TOKEN_EXPIRED' | 'SERVER_SHUTDOWN' = detail.reason;
      void reason;
    }
  });
  client.on('event', (event) => {
    if (event.kind === 'INVITATION_USER_STATE_CHANGED' && event.state === InviteeState.ACCEPTED) {
      const who: string = event.userId;
      void who;
    }
  });
  await client.login('alice', 'token');
  const sent: SendResult = await client.sendInvitation(['bob'], {
    timeoutSeconds: 30,
    extendedData: 'video',
    notification: { title: 't', message: 'm', payload: 'p', resourceId: 'r' },
    onlineOnly: false,
  });
  for (const { userId, state } of sent.errorInvitees) console.log(userId, state === 'OFFLINE');
  try {
    await client.cancelInvitation(sent.invitationId, { invitees: ['bob'], extendedData: '' });
  } catch (error) {
    if (error instanceof InvitationClosedError) {
      const code: 10 = error.code;
      void code;
    }
    if (error instanceof BeckonError && error.code === ErrorCode.NOT_PERMITTED) console.log(error.codeName);
  }
  const page = await client.queryInvitations({ role: 'SENT', limit: 10 });
  console.log(page.nextCursor, page.invitations[0]?.invitees[0]?.state);
  await client.refuseInvitation(sent.invitationId);
  await client.renewToken('t2');
  const state: string = client.connectionState;
  const user: string | null = client.userId;
  console.log(state, user, client.deviceId);
  await client.logout();
  await client.close();
  off();
  // @ts-expect-error timeoutSeconds is required
  await client.sendInvitation(['bob'], {});
  // @ts-expect-error no such event
  client.on('invitationExploded', () => {});
  // @ts-expect-error the details are read-only
  client.on('invitationAccepted', (e) => (e.invitee = 'x'));
}
void demo;
