// Compiled (never run) by test.sh with `tsc --noEmit`: checks that index.d.ts
// types the documented usage, and that misuse is a type error (each
// `@ts-expect-error` fails the compile if the line below it type-checks).

import beckon = require('beckon');
import {
  ApnsEnvironment,
  BeckonError,
  BeckonEvent,
  Client,
  ClientInfo,
  ConnectionState,
  DispatchModeName,
  ErrorCode,
  EventKind,
  HistoryRole,
  InvitationPage,
  InvitationQuery,
  InvitationSummary,
  InviteeState,
  InviteeStatus,
  LogLevel,
  LogRecord,
  PushOutcome,
  PushProvider,
  NotPermittedError,
  SendResult,
  WouldDeadlockError,
  createMemoryHub,
  createToken,
  setLogHandler,
} from 'beckon';

async function flow(): Promise<void> {
  createMemoryHub('types', { secret: 's3cret', maxInvitees: 100, retentionMs: 1000 });
  const token: string = createToken('s3cret', 'alice', new Date(Date.now() + 60_000));
  createToken('s3cret', 'alice', 1_900_000_000);

  const alice = new Client({ serverUrl: 'memory://types', dispatch: 'thread', requestTimeoutMs: 5000 });
  const bob = new Client({ serverUrl: 'memory://types', dispatch: 'poll', pollIntervalMs: 5 });
  const carol = new Client({ serverUrl: 'memory://types', dispatch: 'pool' });
  const mode: DispatchModeName = carol.dispatch;
  const modes: readonly ('thread' | 'pool' | 'poll')[] = [alice.dispatch, bob.dispatch, mode];
  void modes;
  // @ts-expect-error: the dispatch mode is read-only.
  carol.dispatch = 'thread';
  await carol.close();

  alice.on('connectionStateChanged', (e) => {
    const name: 'DISCONNECTED' | 'CONNECTING' | 'CONNECTED' | 'RECONNECTING' = e.stateName;
    const reason: number = e.reason;
    void name;
    void reason;
  });
  bob.on('invitationReceived', (e) => {
    const who: string = e.inviter;
    const all: readonly InviteeStatus[] = e.invitees;
    const title: string | undefined = e.notification?.title;
    void bob.acceptInvitation(e.invitationId, { extendedData: who + all.length + title });
  });
  alice.on('invitationUserStateChanged', (e) => {
    if (e.state === InviteeState.ACCEPTED && e.stateName === 'ACCEPTED') return;
  });
  alice.on('event', (e: BeckonEvent) => {
    // The union narrows on kindName.
    if (e.kindName === 'INVITATION_RESPONSE_TIMEOUT') {
      const timedOut: readonly InviteeStatus[] = e.invitees;
      void timedOut;
    }
    if (e.kind === EventKind.TOKEN_WILL_EXPIRE) {
      // @ts-expect-error: a TOKEN_WILL_EXPIRE event has no invitationId.
      void e.invitationId;
    }
  });
  alice.once('close', () => {});

  await alice.login('alice', token);
  await bob.login('bob');
  const sent: SendResult = await alice.sendInvitation(['bob'], {
    timeoutSeconds: 30,
    extendedData: '{"call":"video"}',
    notification: { title: 'Incoming call', message: 'alice is calling' },
    onlineOnly: false,
    requestTimeoutMs: 2000,
  });
  const id: string = sent.invitationId;
  const { errorInvitees } = await alice.cancelInvitation(id, {
    invitees: ['bob'],
    extendedData: 'bye',
    requestTimeoutMs: 1500,
  });
  const first: number | undefined = errorInvitees[0]?.state;
  void first;
  await bob.refuseInvitation(id);
  await bob.acceptInvitation(id, { requestTimeoutMs: 500 });
  await bob.refuseInvitation(id, { extendedData: 'busy', requestTimeoutMs: null });
  await alice.renewToken(token);
  await bob.setPushTarget({
    provider: PushProvider.APNS_VOIP,
    token: 'ab'.repeat(32),
    topic: 'com.example.calls',
    environment: ApnsEnvironment.SANDBOX,
    alertToken: 'cd'.repeat(32),
  });
  await bob.setPushTarget({ provider: PushProvider.FCM, token: 'fcm-token' });
  await bob.clearPushTarget();
  alice.on('invitationPushResult', (e) => {
    const outcome: PushOutcome = e.outcome;
    const device: string | null = e.deviceId;
    const provider: PushProvider | null = e.provider;
    if (e.outcomeName === 'FAILED') console.log(e.invitee, e.reason);
    void outcome;
    void device;
    void provider;
  });
  const page: InvitationPage = await alice.queryInvitations({ role: HistoryRole.SENT, limit: 3 });
  const summary: InvitationSummary | undefined = page.invitations[0];
  if (summary !== undefined) {
    const ms: number = summary.endedMs - summary.createdMs;
    const states: readonly InviteeStatus[] = summary.invitees;
    const byServer: boolean = summary.sentByServer;
    void [ms, states, byServer, summary.invitationId, summary.inviter];
  }
  const cursor: string | null = page.nextCursor;
  const query: InvitationQuery = { sinceMs: 1_700_000_000_000, untilMs: 2n ** 60n, cursor };
  await alice.queryInvitations(query);
  await bob.queryInvitations();
  await bob.queryInvitations({ role: HistoryRole.RECEIVED, cursor: '' });
  // @ts-expect-error: nextCursor may be null.
  const notNullCursor: string = page.nextCursor;
  void notNullCursor;
  // @ts-expect-error: the role is a HistoryRole value, not a name.
  await bob.queryInvitations({ role: 'SENT' });
  // @ts-expect-error: no such query field.
  await bob.queryInvitations({ roles: HistoryRole.SENT });
  // @ts-expect-error: the bounds are Unix milliseconds, not Dates.
  await bob.queryInvitations({ sinceMs: new Date() });
  // @ts-expect-error: the page is read-only.
  page.nextCursor = null;
  await alice.logout();
  const ran: number = bob.poll(0);
  void ran;

  try {
    await alice.cancelInvitation(id);
  } catch (error) {
    if (error instanceof NotPermittedError) {
      const code: 8 = error.code;
      void code;
    } else if (error instanceof BeckonError && error.code === ErrorCode.SHUTDOWN) {
      const name: string = error.codeName;
      void name;
    }
  }

  const info: ClientInfo = alice.info();
  const state: ConnectionState = info.connectionState;
  const stateName: 'DISCONNECTED' | 'CONNECTING' | 'CONNECTED' | 'RECONNECTING' = info.connectionStateName;
  const device: string = alice.deviceId;
  const user: string | null = alice.userId;
  if (alice.connectionState === ConnectionState.CONNECTED && info.userId !== null) {
    const loggedIn: string = info.userId;
    void loggedIn;
  }
  // @ts-expect-error: userId may be null.
  const notNull: string = alice.userId;
  // @ts-expect-error: the state is read-only.
  alice.connectionState = ConnectionState.CONNECTED;
  void [state, stateName, device, user, notNull];
  const major: number = beckon.ABI_VERSION_MAJOR + beckon.ABI_VERSION_MINOR;
  void major;

  await setLogHandler(
    (record: LogRecord) => {
      const level: 1 | 2 | 3 | 4 | 5 = record.level;
      const text: string = `${record.levelName} ${record.tag}/${record.subTag}: ${record.message}`;
      void [level, text];
    },
    { maxLevel: LogLevel.DEBUG },
  );
  await setLogHandler(() => {}, { maxLevel: 'TRACE' });
  await setLogHandler(null);
  // @ts-expect-error: no such level.
  await setLogHandler(() => {}, { maxLevel: 'LOUD' });
  // @ts-expect-error: the handler is required (null to stop).
  await setLogHandler();

  alice.unref().ref();
  try {
    await alice.close();
  } catch (error) {
    if (error instanceof WouldDeadlockError) {
      const code: 17 = error.code;
      void code;
    }
  }
  bob[Symbol.dispose]();
  await bob[Symbol.asyncDispose]();
  const version: string = beckon.version();
  const abi: number = beckon.abiVersion();
  void version;
  void abi;

  // @ts-expect-error: serverUrl is required.
  new Client({});
  // @ts-expect-error: dispatch is "thread", "pool" or "poll".
  new Client({ serverUrl: 'memory://types', dispatch: 'threads' });
  // @ts-expect-error: dispatch is a name, not the C constant.
  new Client({ serverUrl: 'memory://types', dispatch: 2 });
  // @ts-expect-error: timeoutSeconds is required.
  await alice.sendInvitation(['bob'], {});
  // @ts-expect-error: the timeout is a number of milliseconds.
  await bob.acceptInvitation(id, { requestTimeoutMs: '500' });
  // @ts-expect-error: invitees are strings.
  await alice.sendInvitation([1], { timeoutSeconds: 5 });
  // @ts-expect-error: no such event.
  alice.on('invitationRecieved', () => {});
  // @ts-expect-error: the provider is a PushProvider value, not a name.
  await bob.setPushTarget({ provider: 'FCM', token: 't' });
  // @ts-expect-error: a target needs a token.
  await bob.setPushTarget({ provider: PushProvider.FCM });
  // @ts-expect-error: listeners receive the typed event.
  alice.on('invitationAccepted', (e: { kind: 3 }) => void e);
}

void flow;
