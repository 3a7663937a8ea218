// The public shapes: options, results and event details. Plain objects with
// camelCase fields, as the Node binding's, with states and kinds as names.

import type {
  ConnectionReason,
  ConnectionState,
  HistoryRole,
  InviteeState,
  PushOutcome,
  PushProvider,
} from './constants.js';

/** The WebSocket constructor the client uses (the browser's, or `ws` in Node). */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[]): WebSocketLike;
}

/** What the client needs of a WebSocket: the browser API (`ws` has it too). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount?: number;
  binaryType?: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: any }) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

export interface ClientOptions {
  /** Required: `ws://HOST:PORT` or `wss://HOST:PORT` of a beckon-server. */
  serverUrl: string;
  /** This device's id (1 to 64 of `[A-Za-z0-9_.@:+-]`); omitted: a random one per Client. */
  deviceId?: string | null;
  /** The WebSocket constructor; omitted: `globalThis.WebSocket` (in Node 20, pass the `ws` package's). */
  WebSocket?: WebSocketConstructor | null;
  /** How long a request (and a login) may wait for the server, in ms; omitted: 10000. */
  requestTimeoutMs?: number | null;
}

/** A user id with its per-invitee state. */
export interface InviteeStatus {
  readonly userId: string;
  readonly state: InviteeState;
}

export interface SendResult {
  /** 32 lowercase hex digits, made by the server; the handle for cancel, accept and refuse. */
  readonly invitationId: string;
  /** Invitees with no device online at send time (state OFFLINE). */
  readonly errorInvitees: readonly InviteeStatus[];
}

export interface CancelResult {
  /** Named invitees that were already final, with that state. */
  readonly errorInvitees: readonly InviteeStatus[];
}

/** One ended invitation of an `InvitationPage`. */
export interface InvitationSummary {
  readonly invitationId: string;
  readonly inviter: string;
  /** Every invitee, with its final state. */
  readonly invitees: readonly InviteeStatus[];
  /** When it was sent, in Unix milliseconds. */
  readonly createdMs: number;
  /** When it ended, in Unix milliseconds. */
  readonly endedMs: number;
  /** The server API sent it on the inviter's behalf. */
  readonly sentByServer: boolean;
}

/** One page of the user's ended invitations, newest sent first. */
export interface InvitationPage {
  readonly invitations: readonly InvitationSummary[];
  /** The `cursor` of the query for the next page; null on the last page. */
  readonly nextCursor: string | null;
}

/** What a device's notification shows; absent fields are "". */
export interface Notification {
  readonly title: string;
  readonly message: string;
  readonly resourceId: string;
  readonly payload: string;
}

export interface NotificationOptions {
  /** At most 256 bytes (UTF-8). */
  title?: string | null;
  /** At most 1 KiB. */
  message?: string | null;
  /** At most 64 bytes. */
  resourceId?: string | null;
  /** At most 4 KiB. */
  payload?: string | null;
}

export interface SendInvitationOptions {
  /** Required: 1 to 600 seconds (or the server's lower maximum). */
  timeoutSeconds: number;
  /** Text for the invitees, at most 8 KiB of UTF-8. */
  extendedData?: string | null;
  notification?: NotificationOptions | null;
  /** Close offline invitees at once instead of keeping the invitation pending for them. */
  onlineOnly?: boolean;
  /** How long this send may wait for the server, in ms; omitted: the client's `requestTimeoutMs`. */
  requestTimeoutMs?: number | null;
}

export interface CancelInvitationOptions {
  /** Cancel only for these invitees; omitted: for every invitee. */
  invitees?: readonly string[] | null;
  extendedData?: string | null;
  requestTimeoutMs?: number | null;
}

export interface AnswerOptions {
  extendedData?: string | null;
  requestTimeoutMs?: number | null;
}

export interface InvitationQuery {
  /** Sent, received, or both ('ANY', the default). Lowercase names are accepted too. */
  role?: HistoryRole | 'any' | 'sent' | 'received' | null;
  /** Only invitations sent at or after this (Unix ms); omitted or 0: no bound. */
  sinceMs?: number | null;
  /** Only invitations sent before this (Unix ms), after `sinceMs`; omitted or 0: no bound. */
  untilMs?: number | null;
  /** Invitations per page, 1 to 100; omitted or 0: 20. */
  limit?: number | null;
  /** Omitted or null for the first page; else the `nextCursor` of the page before. */
  cursor?: string | null;
  requestTimeoutMs?: number | null;
}

/** Where a device is rung by push while it is not connected (`setPushTarget`). */
export interface PushTarget {
  provider: PushProvider;
  token: string;
  /** APNs only. */
  topic?: string | null;
  /** APNs only: 'PRODUCTION' (default) or 'SANDBOX'. */
  environment?: 'PRODUCTION' | 'SANDBOX' | null;
  /** APNS_VOIP only. */
  alertToken?: string | null;
}

// ---- events ----------------------------------------------------------------

export interface ConnectionStateChangedEvent {
  readonly kind: 'CONNECTION_STATE_CHANGED';
  readonly state: ConnectionState;
  readonly reason: ConnectionReason;
}

export interface TokenWillExpireEvent {
  readonly kind: 'TOKEN_WILL_EXPIRE';
  readonly secondsLeft: number;
}

export interface InvitationReceivedEvent {
  readonly kind: 'INVITATION_RECEIVED';
  readonly invitationId: string;
  readonly inviter: string;
  /** Every invitee's user id. */
  readonly invitees: readonly string[];
  /** Every invitee with its state at delivery. */
  readonly inviteeStates: readonly InviteeStatus[];
  readonly extendedData: string;
  readonly notification: Notification | null;
  /** Seconds until the invitation's deadline, rounded up, when it was delivered. */
  readonly secondsLeft: number;
  /** The same as `secondsLeft`: how long this device may ring. */
  readonly timeoutSeconds: number;
}

export interface InvitationCancelledEvent {
  readonly kind: 'INVITATION_CANCELLED';
  readonly invitationId: string;
  readonly inviter: string;
  readonly extendedData: string;
}

export interface InvitationAcceptedEvent {
  readonly kind: 'INVITATION_ACCEPTED';
  readonly invitationId: string;
  readonly invitee: string;
  readonly extendedData: string;
}

export interface InvitationRefusedEvent {
  readonly kind: 'INVITATION_REFUSED';
  readonly invitationId: string;
  readonly invitee: string;
  readonly extendedData: string;
}

/** Invitee side: the invitation stopped ringing here, nobody answered in time. */
export interface InvitationTimeoutEvent {
  readonly kind: 'INVITATION_TIMEOUT';
  readonly invitationId: string;
  readonly inviter: string;
}

/** Inviter side: these invitees did not answer in time (one event for all of them). */
export interface InvitationResponseTimeoutEvent {
  readonly kind: 'INVITATION_RESPONSE_TIMEOUT';
  readonly invitationId: string;
  readonly invitees: readonly string[];
}

export interface InvitationUserStateChangedEvent {
  readonly kind: 'INVITATION_USER_STATE_CHANGED';
  readonly invitationId: string;
  readonly userId: string;
  readonly state: InviteeState;
  readonly extendedData: string;
}

/** Inviter side: what happened to the push for one device of an invitee that was offline at send. */
export interface InvitationPushResultEvent {
  readonly kind: 'INVITATION_PUSH_RESULT';
  readonly invitationId: string;
  readonly invitee: string;
  /** null for NO_TARGET. */
  readonly deviceId: string | null;
  /** null for NO_TARGET. */
  readonly provider: PushProvider | null;
  readonly outcome: PushOutcome;
  /** The provider's reason when the push failed; "" otherwise. */
  readonly reason: string;
}

/** Every event, discriminated by `kind`. */
export type BeckonEvent =
  | ConnectionStateChangedEvent
  | TokenWillExpireEvent
  | InvitationReceivedEvent
  | InvitationCancelledEvent
  | InvitationAcceptedEvent
  | InvitationRefusedEvent
  | InvitationTimeoutEvent
  | InvitationResponseTimeoutEvent
  | InvitationUserStateChangedEvent
  | InvitationPushResultEvent;

/** The event names a Client dispatches, with their details. */
export interface ClientEventMap {
  connectionStateChanged: ConnectionStateChangedEvent;
  tokenWillExpire: TokenWillExpireEvent;
  invitationReceived: InvitationReceivedEvent;
  invitationCancelled: InvitationCancelledEvent;
  invitationAccepted: InvitationAcceptedEvent;
  invitationRefused: InvitationRefusedEvent;
  invitationTimeout: InvitationTimeoutEvent;
  invitationResponseTimeout: InvitationResponseTimeoutEvent;
  invitationUserStateChanged: InvitationUserStateChangedEvent;
  invitationPushResult: InvitationPushResultEvent;
  /** Every event, after its own named one. */
  event: BeckonEvent;
}

export type ClientEventName = keyof ClientEventMap;
