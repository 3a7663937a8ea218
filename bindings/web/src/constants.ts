// The names and numbers of docs/SEMANTICS.md. Numbers are part of the C ABI
// and never change; the web client speaks in names (what the wire and the
// events carry), and keeps the numbers where the other bindings expose them
// (error codes).

/** Per-invitee states. On the wire they are the snake-case names. */
export const InviteeState = {
  INVITING: 'INVITING',
  ACCEPTED: 'ACCEPTED',
  REJECTED: 'REJECTED',
  CANCELLED: 'CANCELLED',
  OFFLINE: 'OFFLINE',
  RECEIVED: 'RECEIVED',
  TIMEOUT: 'TIMEOUT',
} as const;
export type InviteeState = (typeof InviteeState)[keyof typeof InviteeState];

/** The C ABI's number of each invitee state (ZEGOCLOUD ZIM's values). */
export const InviteeStateCode: { readonly [K in InviteeState]: number } = {
  INVITING: 0,
  ACCEPTED: 1,
  REJECTED: 2,
  CANCELLED: 3,
  OFFLINE: 4,
  RECEIVED: 5,
  TIMEOUT: 6,
};

/** Event kinds: the `kind` of every event detail. */
export const EventKind = {
  CONNECTION_STATE_CHANGED: 'CONNECTION_STATE_CHANGED',
  TOKEN_WILL_EXPIRE: 'TOKEN_WILL_EXPIRE',
  INVITATION_RECEIVED: 'INVITATION_RECEIVED',
  INVITATION_CANCELLED: 'INVITATION_CANCELLED',
  INVITATION_ACCEPTED: 'INVITATION_ACCEPTED',
  INVITATION_REFUSED: 'INVITATION_REFUSED',
  INVITATION_TIMEOUT: 'INVITATION_TIMEOUT',
  INVITATION_RESPONSE_TIMEOUT: 'INVITATION_RESPONSE_TIMEOUT',
  INVITATION_USER_STATE_CHANGED: 'INVITATION_USER_STATE_CHANGED',
  INVITATION_PUSH_RESULT: 'INVITATION_PUSH_RESULT',
} as const;
export type EventKind = (typeof EventKind)[keyof typeof EventKind];

/** Connection states. */
export const ConnectionState = {
  DISCONNECTED: 'DISCONNECTED',
  CONNECTING: 'CONNECTING',
  CONNECTED: 'CONNECTED',
  RECONNECTING: 'RECONNECTING',
} as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

/** Why the connection state changed. */
export const ConnectionReason = {
  LOGIN: 'LOGIN',
  LOGOUT: 'LOGOUT',
  NETWORK: 'NETWORK',
  KICKED_OUT: 'KICKED_OUT',
  TOKEN_EXPIRED: 'TOKEN_EXPIRED',
  SERVER_SHUTDOWN: 'SERVER_SHUTDOWN',
} as const;
export type ConnectionReason = (typeof ConnectionReason)[keyof typeof ConnectionReason];

/** Result codes, as in docs/SEMANTICS.md and the C ABI (`BECKON_ERROR_*`). */
export const ErrorCode = {
  OK: 0,
  INVALID_ARGUMENT: 1,
  TOO_MANY_INVITEES: 2,
  PAYLOAD_TOO_LARGE: 3,
  NOT_LOGGED_IN: 4,
  AUTH_FAILED: 5,
  TOKEN_EXPIRED: 6,
  INVITATION_NOT_FOUND: 7,
  NOT_PERMITTED: 8,
  ALREADY_ANSWERED: 9,
  INVITATION_CLOSED: 10,
  NETWORK: 11,
  REQUEST_TIMEOUT: 12,
  RATE_LIMITED: 13,
  SHUTDOWN: 14,
  SERVER: 15,
  INTERNAL: 16,
  WOULD_DEADLOCK: 17,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
export type ErrorCodeName = keyof typeof ErrorCode;

/** Push providers of `setPushTarget` and `invitationPushResult`. */
export const PushProvider = {
  APNS: 'APNS',
  APNS_VOIP: 'APNS_VOIP',
  FCM: 'FCM',
  WEBHOOK: 'WEBHOOK',
} as const;
export type PushProvider = (typeof PushProvider)[keyof typeof PushProvider];

/** What happened to one push (`invitationPushResult`). */
export const PushOutcome = {
  SENT: 'SENT',
  FAILED: 'FAILED',
  NO_TARGET: 'NO_TARGET',
} as const;
export type PushOutcome = (typeof PushOutcome)[keyof typeof PushOutcome];

/** Which ended invitations `queryInvitations` lists. */
export const HistoryRole = {
  ANY: 'ANY',
  SENT: 'SENT',
  RECEIVED: 'RECEIVED',
} as const;
export type HistoryRole = (typeof HistoryRole)[keyof typeof HistoryRole];

/** The protocol version of `hello` (docs/PROTOCOL.md, "Versioning"). */
export const PROTOCOL_VERSION = 1;
/** The WebSocket subprotocol the client offers. */
export const SUBPROTOCOL = 'beckon.v1';

/** Final states: they never change again. */
export function isTerminal(state: InviteeState): boolean {
  return state === 'ACCEPTED' || state === 'REJECTED' || state === 'CANCELLED' || state === 'TIMEOUT';
}
