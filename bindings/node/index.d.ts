// Type declarations of the `beckon` package: call-invitation signaling for
// Node.js over libbeckon's C ABI (include/beckon.h).

/// <reference types="node" />
import { EventEmitter } from 'node:events';

// ---------------------------------------------------------------------------
// Constants. The numeric values are part of the C ABI and never change.
// ---------------------------------------------------------------------------

/** Per-invitee states (`BECKON_INVITEE_*`); the values match ZIM's. */
export declare const InviteeState: {
  readonly INVITING: 0;
  readonly ACCEPTED: 1;
  readonly REJECTED: 2;
  readonly CANCELLED: 3;
  readonly OFFLINE: 4;
  readonly RECEIVED: 5;
  readonly TIMEOUT: 6;
};
export type InviteeState = (typeof InviteeState)[keyof typeof InviteeState];
export type InviteeStateName = keyof typeof InviteeState;

/** Event kinds (`BECKON_EVENT_*`). */
export declare const EventKind: {
  readonly CONNECTION_STATE_CHANGED: 1;
  readonly TOKEN_WILL_EXPIRE: 2;
  readonly INVITATION_RECEIVED: 3;
  readonly INVITATION_CANCELLED: 4;
  readonly INVITATION_ACCEPTED: 5;
  readonly INVITATION_REFUSED: 6;
  readonly INVITATION_TIMEOUT: 7;
  readonly INVITATION_RESPONSE_TIMEOUT: 8;
  readonly INVITATION_USER_STATE_CHANGED: 9;
  /** ABI 2.2. */
  readonly INVITATION_PUSH_RESULT: 10;
};
export type EventKind = (typeof EventKind)[keyof typeof EventKind];
export type EventKindName = keyof typeof EventKind;

/** Connection states (`BECKON_CONNECTION_*`). */
export declare const ConnectionState: {
  readonly DISCONNECTED: 0;
  readonly CONNECTING: 1;
  readonly CONNECTED: 2;
  readonly RECONNECTING: 3;
};
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];
export type ConnectionStateName = keyof typeof ConnectionState;

/** Why the connection state changed (`BECKON_REASON_*`). */
export declare const ConnectionReason: {
  readonly LOGIN: 0;
  readonly LOGOUT: 1;
  readonly NETWORK: 2;
  readonly KICKED_OUT: 3;
  readonly TOKEN_EXPIRED: 4;
  readonly SERVER_SHUTDOWN: 5;
};
export type ConnectionReason = (typeof ConnectionReason)[keyof typeof ConnectionReason];
export type ConnectionReasonName = keyof typeof ConnectionReason;

/** Result codes (`BECKON_OK`, `BECKON_ERROR_*`). */
export declare const ErrorCode: {
  readonly OK: 0;
  readonly INVALID_ARGUMENT: 1;
  readonly TOO_MANY_INVITEES: 2;
  readonly PAYLOAD_TOO_LARGE: 3;
  readonly NOT_LOGGED_IN: 4;
  readonly AUTH_FAILED: 5;
  readonly TOKEN_EXPIRED: 6;
  readonly INVITATION_NOT_FOUND: 7;
  readonly NOT_PERMITTED: 8;
  readonly ALREADY_ANSWERED: 9;
  readonly INVITATION_CLOSED: 10;
  readonly NETWORK: 11;
  readonly REQUEST_TIMEOUT: 12;
  readonly RATE_LIMITED: 13;
  readonly SHUTDOWN: 14;
  readonly SERVER: 15;
  readonly INTERNAL: 16;
  readonly WOULD_DEADLOCK: 17;
};
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
export type ErrorCodeName = keyof typeof ErrorCode;

/** Push providers (`BECKON_PUSH_PROVIDER_*`, ABI 2.2). */
export declare const PushProvider: {
  /** APNs alert pushes. */
  readonly APNS: 1;
  /** APNs VoIP pushes, for PushKit and CallKit. */
  readonly APNS_VOIP: 2;
  /** Firebase Cloud Messaging, high-priority data messages. */
  readonly FCM: 3;
  /** A signed HTTP POST to the app's own backend. */
  readonly WEBHOOK: 4;
};
export type PushProvider = (typeof PushProvider)[keyof typeof PushProvider];
export type PushProviderName = keyof typeof PushProvider;

/** APNs environments (`BECKON_APNS_*`, ABI 2.2). */
export declare const ApnsEnvironment: {
  readonly PRODUCTION: 0;
  /** The tokens of development builds. */
  readonly SANDBOX: 1;
};
export type ApnsEnvironment = (typeof ApnsEnvironment)[keyof typeof ApnsEnvironment];

/** What happened to one push (`BECKON_PUSH_*`, ABI 2.2). */
export declare const PushOutcome: {
  readonly SENT: 1;
  readonly FAILED: 2;
  readonly NO_TARGET: 3;
};
export type PushOutcome = (typeof PushOutcome)[keyof typeof PushOutcome];
export type PushOutcomeName = keyof typeof PushOutcome;

/** Where a device is rung by push while it is not connected (`Client.setPushTarget`). */
export interface PushTarget {
  readonly provider: PushProvider;
  /**
   * The APNs device token (hex; PushKit's for APNS_VOIP), the FCM registration
   * token, or for a webhook what the app's backend knows the device by.
   */
  readonly token: string;
  /** APNs only: the bundle id; omitted for the server's configured topic. */
  readonly topic?: string | null;
  /** APNs only; PRODUCTION when omitted. */
  readonly environment?: ApnsEnvironment;
  /** APNS_VOIP only: the device's regular APNs token, where stop pushes go as alerts. */
  readonly alertToken?: string | null;
}

/** Which of the user's ended invitations `Client.queryInvitations` lists (`BECKON_HISTORY_*`, ABI 2.3). */
export declare const HistoryRole: {
  /** Sent and received: the default. */
  readonly ANY: 0;
  /** Those the user sent (from a device, or the server API on its behalf). */
  readonly SENT: 1;
  /** Those the user was invited to. */
  readonly RECEIVED: 2;
};
export type HistoryRole = (typeof HistoryRole)[keyof typeof HistoryRole];

/** Log levels (`BECKON_LOG_*`), from quiet to chatty: `setLogHandler`'s `maxLevel`. */
export declare const LogLevel: {
  readonly OFF: 0;
  readonly ERROR: 1;
  readonly WARN: 2;
  readonly INFO: 3;
  readonly DEBUG: 4;
  readonly TRACE: 5;
};
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];
export type LogLevelName = keyof typeof LogLevel;

/**
 * The `BECKON_ABI_VERSION` this binding speaks, `(ABI_VERSION_MAJOR << 16) | ABI_VERSION_MINOR`
 * (2.3). Loading refuses a library of another major version or an older minor version.
 */
export declare const ABI_VERSION: number;
/** The `BECKON_ABI_VERSION_MAJOR` this binding speaks. */
export declare const ABI_VERSION_MAJOR: number;
/** The `BECKON_ABI_VERSION_MINOR` this binding speaks (a library may have a newer one). */
export declare const ABI_VERSION_MINOR: number;

// ---------------------------------------------------------------------------
// Errors: one class per code, all under BeckonError.
// ---------------------------------------------------------------------------

/** An error carrying a libbeckon error code and the library's message. */
export declare class BeckonError extends Error {
  constructor(message: string, options?: { code?: number; cause?: unknown });
  /** The numeric code (`ErrorCode`); -1 for an error made without one. */
  readonly code: number;
  /** The code's name, e.g. "NOT_PERMITTED" ("UNKNOWN" for a code this binding does not know). */
  readonly codeName: ErrorCodeName | 'UNKNOWN';
  /** The error for a code: an instance of its subclass, or a plain BeckonError. */
  static fromCode(code: number, message?: string): BeckonError;
}
/** NULL, empty, malformed or out-of-range input; the message names the field. */
export declare class InvalidArgumentError extends BeckonError {
  readonly code: 1;
  readonly codeName: 'INVALID_ARGUMENT';
}
/** More distinct invitees than the hub's limit. */
export declare class TooManyInviteesError extends BeckonError {
  readonly code: 2;
  readonly codeName: 'TOO_MANY_INVITEES';
}
/** Extended data or a notification field over its limit. */
export declare class PayloadTooLargeError extends BeckonError {
  readonly code: 3;
  readonly codeName: 'PAYLOAD_TOO_LARGE';
}
/** The operation needs a logged-in session. */
export declare class NotLoggedInError extends BeckonError {
  readonly code: 4;
  readonly codeName: 'NOT_LOGGED_IN';
}
/** Bad token, or a token for another user. */
export declare class AuthFailedError extends BeckonError {
  readonly code: 5;
  readonly codeName: 'AUTH_FAILED';
}
/** The token's expiry has passed. */
export declare class TokenExpiredError extends BeckonError {
  readonly code: 6;
  readonly codeName: 'TOKEN_EXPIRED';
}
/** Unknown invitation id, or forgotten after retention. */
export declare class InvitationNotFoundError extends BeckonError {
  readonly code: 7;
  readonly codeName: 'INVITATION_NOT_FOUND';
}
/** Not the inviter (cancel) or not an invitee (accept, refuse). */
export declare class NotPermittedError extends BeckonError {
  readonly code: 8;
  readonly codeName: 'NOT_PERMITTED';
}
/** This invitee already accepted or refused (possibly on another device). */
export declare class AlreadyAnsweredError extends BeckonError {
  readonly code: 9;
  readonly codeName: 'ALREADY_ANSWERED';
}
/** Cancelled or timed out for this invitee, or the invitation ended. */
export declare class InvitationClosedError extends BeckonError {
  readonly code: 10;
  readonly codeName: 'INVITATION_CLOSED';
}
/** The server cannot be reached, or the connection dropped mid-request. */
export declare class NetworkError extends BeckonError {
  readonly code: 11;
  readonly codeName: 'NETWORK';
}
/**
 * No answer from the server within the request timeout: the operation's
 * `requestTimeoutMs`, or else the client's.
 */
export declare class RequestTimeoutError extends BeckonError {
  readonly code: 12;
  readonly codeName: 'REQUEST_TIMEOUT';
}
/** The server refused the request under its rate limit. */
export declare class RateLimitedError extends BeckonError {
  readonly code: 13;
  readonly codeName: 'RATE_LIMITED';
}
/**
 * The client was closed (or logged out) before the operation's outcome was
 * delivered; the operation may still have been carried out at the hub.
 */
export declare class ShutdownError extends BeckonError {
  readonly code: 14;
  readonly codeName: 'SHUTDOWN';
}
/** The server failed to process the request. */
export declare class ServerError extends BeckonError {
  readonly code: 15;
  readonly codeName: 'SERVER';
}
/** A bug, including a caught panic; the message has the detail. */
export declare class InternalError extends BeckonError {
  readonly code: 16;
  readonly codeName: 'INTERNAL';
}
/**
 * `close()` refused by the library: the client was being closed from another
 * client's callback while a callback of this one was closing that other
 * client, and each would wait for the other. Nothing was done; the client is
 * still open: close it later, outside the callbacks.
 */
export declare class WouldDeadlockError extends BeckonError {
  readonly code: 17;
  readonly codeName: 'WOULD_DEADLOCK';
}

/**
 * libbeckon could not be loaded, or does not serve this binding's ABI (another
 * major version, or an older minor version), or lacks a function.
 */
export declare class LibraryLoadError extends Error {}

// ---------------------------------------------------------------------------
// Results and events: plain frozen objects, copied out of the library's data.
// ---------------------------------------------------------------------------

/** A user id with its per-invitee state. */
export interface InviteeStatus {
  readonly userId: string;
  readonly state: InviteeState;
  readonly stateName: InviteeStateName;
}

export interface SendResult {
  /** 128 random bits, printable; the handle for cancel, accept and refuse. */
  readonly invitationId: string;
  /** Invitees with no device online at send time (state OFFLINE). */
  readonly errorInvitees: readonly InviteeStatus[];
}

export interface CancelResult {
  /** Invitees that could not be cancelled (already in a terminal state), with that state. */
  readonly errorInvitees: readonly InviteeStatus[];
}

/** One ended invitation of an `InvitationPage` (ABI 2.3). */
export interface InvitationSummary {
  readonly invitationId: string;
  /** The user who sent it. */
  readonly inviter: string;
  /** Every invitee, with its final state. */
  readonly invitees: readonly InviteeStatus[];
  /** When it was sent, in Unix milliseconds. */
  readonly createdMs: number;
  /** When it ended (its last invitee reached a final state), in Unix milliseconds. */
  readonly endedMs: number;
  /** The server API sent it on the inviter's behalf. */
  readonly sentByServer: boolean;
}

/** What `Client.queryInvitations` resolves to: one page of the user's ended invitations (ABI 2.3). */
export interface InvitationPage {
  /** Newest sent first (those sent in the same millisecond in the order of their ids). */
  readonly invitations: readonly InvitationSummary[];
  /** The `cursor` of the query for the next page; null on the last page. */
  readonly nextCursor: string | null;
}

/** What an offline device's push notification shows; absent fields are "". */
export interface Notification {
  readonly title: string;
  readonly message: string;
  readonly resourceId: string;
  readonly payload: string;
}

interface EventBase<K extends EventKindName> {
  /** The numeric kind (`EventKind`). */
  readonly kind: (typeof EventKind)[K];
  /** The kind's name, e.g. "INVITATION_RECEIVED"; discriminates the union. */
  readonly kindName: K;
}

export interface ConnectionStateChangedEvent extends EventBase<'CONNECTION_STATE_CHANGED'> {
  readonly state: ConnectionState;
  readonly stateName: ConnectionStateName;
  readonly reason: ConnectionReason;
  readonly reasonName: ConnectionReasonName;
}

export interface TokenWillExpireEvent extends EventBase<'TOKEN_WILL_EXPIRE'> {
  readonly secondsLeft: number;
}

export interface InvitationReceivedEvent extends EventBase<'INVITATION_RECEIVED'> {
  readonly invitationId: string;
  readonly inviter: string;
  /** Every invitee of the invitation, with their states. */
  readonly invitees: readonly InviteeStatus[];
  readonly extendedData: string;
  readonly notification: Notification | null;
  readonly secondsLeft: number;
}

export interface InvitationCancelledEvent extends EventBase<'INVITATION_CANCELLED'> {
  readonly invitationId: string;
  readonly inviter: string;
  readonly extendedData: string;
}

export interface InvitationAcceptedEvent extends EventBase<'INVITATION_ACCEPTED'> {
  readonly invitationId: string;
  readonly invitee: string;
  readonly extendedData: string;
}

export interface InvitationRefusedEvent extends EventBase<'INVITATION_REFUSED'> {
  readonly invitationId: string;
  readonly invitee: string;
  readonly extendedData: string;
}

export interface InvitationTimeoutEvent extends EventBase<'INVITATION_TIMEOUT'> {
  readonly invitationId: string;
  readonly inviter: string;
}

export interface InvitationResponseTimeoutEvent extends EventBase<'INVITATION_RESPONSE_TIMEOUT'> {
  readonly invitationId: string;
  /** The invitees that timed out. */
  readonly invitees: readonly InviteeStatus[];
}

export interface InvitationUserStateChangedEvent extends EventBase<'INVITATION_USER_STATE_CHANGED'> {
  readonly invitationId: string;
  readonly userId: string;
  readonly state: InviteeState;
  readonly stateName: InviteeStateName;
  readonly extendedData: string;
}

/**
 * To the inviter (ABI 2.2): what happened to the push for one device of an
 * invitee that had no device online at send. `deviceId` and `provider` are
 * null for NO_TARGET (the invitee had no device with a push target).
 */
export interface InvitationPushResultEvent extends EventBase<'INVITATION_PUSH_RESULT'> {
  readonly invitationId: string;
  readonly invitee: string;
  readonly deviceId: string | null;
  readonly provider: PushProvider | null;
  readonly providerName: PushProviderName | null;
  readonly outcome: PushOutcome;
  readonly outcomeName: PushOutcomeName;
  /** The provider's reason when the push failed; "" otherwise. */
  readonly reason: string;
}

/** Every event, discriminated by `kindName` (or `kind`). */
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

/** The events a Client emits, by name, with their listener arguments. */
export interface ClientEvents {
  connectionStateChanged: [event: ConnectionStateChangedEvent];
  tokenWillExpire: [event: TokenWillExpireEvent];
  invitationReceived: [event: InvitationReceivedEvent];
  invitationCancelled: [event: InvitationCancelledEvent];
  invitationAccepted: [event: InvitationAcceptedEvent];
  invitationRefused: [event: InvitationRefusedEvent];
  invitationTimeout: [event: InvitationTimeoutEvent];
  invitationResponseTimeout: [event: InvitationResponseTimeoutEvent];
  invitationUserStateChanged: [event: InvitationUserStateChangedEvent];
  invitationPushResult: [event: InvitationPushResultEvent];
  /** Every event, after its own named one. */
  event: [event: BeckonEvent];
  /** The client has been freed; no event follows. */
  close: [];
}

// ---------------------------------------------------------------------------
// The client.
// ---------------------------------------------------------------------------

/** What `client.info()` tells, at the moment of the call. */
export interface ClientInfo {
  /** The state of the last connectionStateChanged event the client dispatched (DISCONNECTED before any). */
  readonly connectionState: ConnectionState;
  readonly connectionStateName: ConnectionStateName;
  /** The logged-in user; null unless a login has succeeded and no logout (or end of session) since. */
  readonly userId: string | null;
  /** The client's device id: `options.deviceId`, or the random one the library made. */
  readonly deviceId: string;
}

/** Where a client's callbacks run (`options.dispatch`). */
export type DispatchModeName = 'thread' | 'pool' | 'poll';

export interface ClientOptions {
  /** Required. `memory://NAME` for the in-process hub NAME; `ws://HOST:PORT` or `wss://...` for a server. */
  serverUrl: string;
  /** This device's id (same rule as user ids); omitted: a random one. */
  deviceId?: string | null;
  /**
   * Where callbacks run; JavaScript always sees them on its own thread.
   * "thread" (default): on the client's own library thread, forwarded to the
   * JavaScript thread. "pool": on a small pool of library threads shared by
   * every pool-mode client of the process (as many as the CPUs, 2 to 8),
   * forwarded the same way: for processes with many clients, each still
   * getting its callbacks one at a time and in order. "poll": inside `poll()`
   * on the JavaScript thread, driven by a timer every `pollIntervalMs`.
   */
  dispatch?: DispatchModeName;
  /** How long a request may wait for the server, in ms; omitted: 10000. */
  requestTimeoutMs?: number;
  /** Poll mode only: the automatic polling period in ms (default 10); 0 to call `poll()` yourself. */
  pollIntervalMs?: number;
}

export interface NotificationOptions {
  /** At most 256 bytes. */
  title?: string | null;
  /** At most 1 KiB. */
  message?: string | null;
  /** At most 64 bytes. */
  resourceId?: string | null;
  /** At most 4 KiB. */
  payload?: string | null;
}

export interface SendInvitationOptions {
  /** Required: 1 to 600 seconds. */
  timeoutSeconds: number;
  /** UTF-8 text for the invitees, at most 8 KiB. */
  extendedData?: string | null;
  notification?: NotificationOptions | null;
  /** Close offline invitees at once instead of keeping the invitation pending for them. */
  onlineOnly?: boolean;
  /**
   * How long this send may wait for the server, in ms (at least 1); omitted:
   * the client's `requestTimeoutMs`. Past it the promise rejects with
   * RequestTimeoutError. (Memory hubs answer at once.)
   */
  requestTimeoutMs?: number | null;
}

export interface CancelInvitationOptions {
  /** Cancel only for these invitees; omitted: for every invitee. */
  invitees?: readonly string[];
  extendedData?: string | null;
  /** How long this cancel may wait for the server, in ms; omitted: the client's. */
  requestTimeoutMs?: number | null;
}

/**
 * Which ended invitations `Client.queryInvitations` lists; every field is
 * optional. Unix-millisecond bounds are safe-integer Numbers or BigInts.
 */
export interface InvitationQuery {
  /** Sent, received, or both (`HistoryRole.ANY`, the default). */
  role?: HistoryRole | null;
  /** Only invitations sent at or after this (Unix ms); omitted or 0: no bound. */
  sinceMs?: number | bigint | null;
  /** Only invitations sent before this (Unix ms), after `sinceMs`; omitted or 0: no bound. */
  untilMs?: number | bigint | null;
  /** Invitations per page, 1 to 100; omitted or 0: 20. */
  limit?: number | null;
  /** Omitted, null or "" for the first page; else the `nextCursor` of the page before. */
  cursor?: string | null;
}

export interface AnswerOptions {
  extendedData?: string | null;
  /** How long this accept or refuse may wait for the server, in ms; omitted: the client's. */
  requestTimeoutMs?: number | null;
}

/**
 * One device of one user. Operations return promises that settle exactly
 * once; events arrive through the EventEmitter, in the order the client
 * observed them. Close every client (`close()`, `await using`): an open
 * client keeps the process alive unless `unref()`'d.
 */
export declare class Client extends EventEmitter<ClientEvents> {
  /** Throws InvalidArgumentError for bad options, LibraryLoadError if libbeckon cannot be loaded. */
  constructor(options: ClientOptions);

  readonly dispatch: DispatchModeName;
  readonly serverUrl: string;
  /** The device id: `options.deviceId`, or the random one the library made. Readable after close. */
  readonly deviceId: string;
  /** The logged-in user, or null. Throws ShutdownError once closing began. */
  readonly userId: string | null;
  /** The state of the last connectionStateChanged event dispatched. Throws ShutdownError once closing began. */
  readonly connectionState: ConnectionState;
  /** True once closing has begun; operations then reject with ShutdownError. */
  readonly closed: boolean;

  /** Connection state, logged-in user and device id, read together now. Throws ShutdownError once closing began. */
  info(): ClientInfo;

  /** Logs in; CONNECTING and CONNECTED events come before it resolves. */
  login(userId: string, token?: string | null): Promise<void>;
  /** Logs out; if this was the user's last device, its pending invitations are cancelled. */
  logout(): Promise<void>;
  /** Replaces the session's token before it expires. */
  renewToken(token: string): Promise<void>;
  /** Sends an invitation: every online device of every invitee rings. */
  sendInvitation(invitees: readonly string[], options: SendInvitationOptions): Promise<SendResult>;
  /** Cancels an invitation (inviter only) for all or some invitees. */
  cancelInvitation(invitationId: string, options?: CancelInvitationOptions): Promise<CancelResult>;
  /** Accepts an invitation this user was invited to. */
  acceptInvitation(invitationId: string, options?: AnswerOptions): Promise<void>;
  /** Refuses an invitation this user was invited to. */
  refuseInvitation(invitationId: string, options?: AnswerOptions): Promise<void>;
  /**
   * Rings this device by push while it is not connected (ABI 2.2). Kept by
   * the server past this connection; forgotten at an explicit logout() or
   * close(), so set it again after logging in anew.
   */
  setPushTarget(target: PushTarget): Promise<void>;
  /** Forgets this device's push target, if it has one (ABI 2.2). */
  clearPushTarget(): Promise<void>;
  /**
   * A page of this user's ended invitations, newest sent first (ABI 2.3),
   * from the server's history (by default each user's last 100, for 7 days).
   * For the page after, pass the page's `nextCursor` as `cursor` with the
   * same other fields. Rejects at once with InvalidArgumentError naming
   * `query.<field>` (an unknown role, a limit over 100, `untilMs` not after
   * `sinceMs`, a cursor the library did not make), or NotLoggedInError.
   */
  queryInvitations(query?: InvitationQuery): Promise<InvitationPage>;

  /**
   * Poll mode: runs the due callbacks on this thread, first waiting up to
   * `timeoutMs` (blocking JavaScript) for one. Returns how many ran.
   */
  poll(timeoutMs?: number): number;

  /**
   * Frees the client: pending operations settle (ShutdownError if their
   * outcome was not delivered), then the promise resolves; no event follows.
   * Idempotent. Rejects with WouldDeadlockError, the client left open, if the
   * library refuses (a poll-mode client closed from another client's callback
   * while a callback of this one closes that other client); a later `close()`
   * tries again.
   */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  /** Begins closing; a poll-mode client is freed before this returns (thread- and pool-mode ones asynchronously). */
  [Symbol.dispose](): void;

  /** Lets the process exit while this client is open. */
  unref(): this;
  /** Undoes `unref()`. */
  ref(): this;
}

// ---------------------------------------------------------------------------
// Functions.
// ---------------------------------------------------------------------------

export interface MemoryHubOptions {
  /** Logins need a token made with this secret; omitted: any token is accepted. */
  secret?: string | null;
  /** Distinct invitees per invitation, 1 to 1000; omitted: 32. */
  maxInvitees?: number;
  /** How long an ended invitation is remembered, in ms; omitted: 600000. */
  retentionMs?: number;
}

/** Creates the memory hub `name` before any client uses it. */
export declare function createMemoryHub(name: string, options?: MemoryHubOptions): void;

/** Makes a login token for `userId`, valid until `expiresAt` (a Date or Unix seconds). */
export declare function createToken(secret: string, userId: string, expiresAt: Date | number | bigint): string;

/** One record of the library's log. */
export interface LogRecord {
  readonly level: Exclude<LogLevel, 0>;
  /** The level's name, e.g. "WARN". */
  readonly levelName: Exclude<LogLevelName, 'OFF'>;
  /** Always "signaling". */
  readonly tag: string;
  /** The layer: "api", "client", "room", "hub", "log", ... */
  readonly subTag: string;
  readonly message: string;
}

export interface LogOptions {
  /** The most detailed level delivered (a LogLevel or its name); default INFO. OFF stops logging. */
  maxLevel?: LogLevel | LogLevelName;
}

/**
 * Sends the library's log records, up to `options.maxLevel`, to `handler` on
 * the JavaScript thread, in order; `null` stops logging. Process-wide: it
 * replaces the previous handler. Resolves once the replaced handler will never
 * be called again; calls apply in call order. The handler may call the
 * binding; its exceptions become uncaught exceptions. It does not keep the
 * process alive, and is removed when the event loop runs out of work.
 */
export declare function setLogHandler(
  handler: ((record: LogRecord) => void) | null,
  options?: LogOptions,
): Promise<void>;

/** The library's version, e.g. "0.1.0". */
export declare function version(): string;

/**
 * The loaded library's ABI version, `(major << 16) | minor`: always the major of
 * ABI_VERSION and a minor at least ABI_VERSION_MINOR (loading fails otherwise).
 */
export declare function abiVersion(): number;

/** Where the library was loaded from, and how it was found. */
export declare function libraryInfo(): { path: string; source: 'BECKON_LIBRARY' | 'bundled' | 'system' };

/** Counters of the binding's callback routing, for diagnostics and tests. */
export declare function diagnostics(): {
  /** Operations whose callback has not run yet. */
  pendingOperations: number;
  /** Open clients whose events are routed. */
  eventSinks: number;
  /** Callbacks that named no pending operation (always 0 unless the library misbehaves). */
  strayCallbacks: number;
  /** Reasons the event loop is kept alive (pending operations and setLogHandler calls, referenced clients). */
  keepAliveHolds: number;
};
