'use strict';
// The numeric values of the C ABI's enumerations (include/beckon.h). They are
// part of the ABI and never change; the names are the C names without their
// prefix, as `beckon_*_name()` returns them.

const freeze = Object.freeze;

/** Per-invitee states (`BECKON_INVITEE_*`); the values match ZIM's. */
const InviteeState = freeze({
  INVITING: 0,
  ACCEPTED: 1,
  REJECTED: 2,
  CANCELLED: 3,
  OFFLINE: 4,
  RECEIVED: 5,
  TIMEOUT: 6,
});

/** Event kinds (`BECKON_EVENT_*`). */
const EventKind = freeze({
  CONNECTION_STATE_CHANGED: 1,
  TOKEN_WILL_EXPIRE: 2,
  INVITATION_RECEIVED: 3,
  INVITATION_CANCELLED: 4,
  INVITATION_ACCEPTED: 5,
  INVITATION_REFUSED: 6,
  INVITATION_TIMEOUT: 7,
  INVITATION_RESPONSE_TIMEOUT: 8,
  INVITATION_USER_STATE_CHANGED: 9,
  INVITATION_PUSH_RESULT: 10, // ABI 2.2
});

/** Push providers (`BECKON_PUSH_PROVIDER_*`, ABI 2.2). */
const PushProvider = freeze({
  APNS: 1,
  APNS_VOIP: 2,
  FCM: 3,
  WEBHOOK: 4,
});

/** APNs environments (`BECKON_APNS_*`, ABI 2.2). */
const ApnsEnvironment = freeze({ PRODUCTION: 0, SANDBOX: 1 });

/** What happened to a push (`BECKON_PUSH_*`, ABI 2.2). */
const PushOutcome = freeze({ SENT: 1, FAILED: 2, NO_TARGET: 3 });

/** Which of the user's ended invitations `queryInvitations` lists (`BECKON_HISTORY_*`, ABI 2.3). */
const HistoryRole = freeze({ ANY: 0, SENT: 1, RECEIVED: 2 });

/** Connection states (`BECKON_CONNECTION_*`). */
const ConnectionState = freeze({
  DISCONNECTED: 0,
  CONNECTING: 1,
  CONNECTED: 2,
  RECONNECTING: 3,
});

/** Why the connection state changed (`BECKON_REASON_*`). */
const ConnectionReason = freeze({
  LOGIN: 0,
  LOGOUT: 1,
  NETWORK: 2,
  KICKED_OUT: 3,
  TOKEN_EXPIRED: 4,
  SERVER_SHUTDOWN: 5,
});

/** Result codes (`BECKON_OK`, `BECKON_ERROR_*`). */
const ErrorCode = freeze({
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
});

/** `BECKON_DISPATCH_*`: where a client's callbacks run. */
const DispatchMode = freeze({ THREAD: 0, POLL: 1, POOL: 2 });

/** `BECKON_INVITATION_ONLINE_ONLY`, a flag of the invitation config. */
const INVITATION_ONLINE_ONLY = 1;

/** Log levels (`BECKON_LOG_*`), from quiet to chatty. */
const LogLevel = freeze({
  OFF: 0,
  ERROR: 1,
  WARN: 2,
  INFO: 3,
  DEBUG: 4,
  TRACE: 5,
});

/** `BECKON_LOG_QUEUED`: log records reach the handler on the library's log thread, outside its locks. */
const LOG_QUEUED = 1;

/** The reverse of a constants table: value -> name, "UNKNOWN" otherwise. */
function namer(table) {
  const names = new Map(Object.entries(table).map(([name, value]) => [value, name]));
  return (value) => names.get(value) ?? 'UNKNOWN';
}

module.exports = {
  InviteeState,
  EventKind,
  ConnectionState,
  ConnectionReason,
  ErrorCode,
  DispatchMode,
  PushProvider,
  ApnsEnvironment,
  PushOutcome,
  HistoryRole,
  INVITATION_ONLINE_ONLY,
  LogLevel,
  LOG_QUEUED,
  inviteeStateName: namer(InviteeState),
  eventKindName: namer(EventKind),
  connectionStateName: namer(ConnectionState),
  connectionReasonName: namer(ConnectionReason),
  errorCodeName: namer(ErrorCode),
  pushProviderName: namer(PushProvider),
  pushOutcomeName: namer(PushOutcome),
  logLevelName: namer(LogLevel),
};
