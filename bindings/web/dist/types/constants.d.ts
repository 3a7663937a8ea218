/** Per-invitee states. On the wire they are the snake-case names. */
export declare const InviteeState: {
    readonly INVITING: "INVITING";
    readonly ACCEPTED: "ACCEPTED";
    readonly REJECTED: "REJECTED";
    readonly CANCELLED: "CANCELLED";
    readonly OFFLINE: "OFFLINE";
    readonly RECEIVED: "RECEIVED";
    readonly TIMEOUT: "TIMEOUT";
};
export type InviteeState = (typeof InviteeState)[keyof typeof InviteeState];
/** The C ABI's number of each invitee state (ZEGOCLOUD ZIM's values). */
export declare const InviteeStateCode: {
    readonly [K in InviteeState]: number;
};
/** Event kinds: the `kind` of every event detail. */
export declare const EventKind: {
    readonly CONNECTION_STATE_CHANGED: "CONNECTION_STATE_CHANGED";
    readonly TOKEN_WILL_EXPIRE: "TOKEN_WILL_EXPIRE";
    readonly INVITATION_RECEIVED: "INVITATION_RECEIVED";
    readonly INVITATION_CANCELLED: "INVITATION_CANCELLED";
    readonly INVITATION_ACCEPTED: "INVITATION_ACCEPTED";
    readonly INVITATION_REFUSED: "INVITATION_REFUSED";
    readonly INVITATION_TIMEOUT: "INVITATION_TIMEOUT";
    readonly INVITATION_RESPONSE_TIMEOUT: "INVITATION_RESPONSE_TIMEOUT";
    readonly INVITATION_USER_STATE_CHANGED: "INVITATION_USER_STATE_CHANGED";
    readonly INVITATION_PUSH_RESULT: "INVITATION_PUSH_RESULT";
};
export type EventKind = (typeof EventKind)[keyof typeof EventKind];
/** Connection states. */
export declare const ConnectionState: {
    readonly DISCONNECTED: "DISCONNECTED";
    readonly CONNECTING: "CONNECTING";
    readonly CONNECTED: "CONNECTED";
    readonly RECONNECTING: "RECONNECTING";
};
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];
/** Why the connection state changed. */
export declare const ConnectionReason: {
    readonly LOGIN: "LOGIN";
    readonly LOGOUT: "LOGOUT";
    readonly NETWORK: "NETWORK";
    readonly KICKED_OUT: "KICKED_OUT";
    readonly TOKEN_EXPIRED: "TOKEN_EXPIRED";
    readonly SERVER_SHUTDOWN: "SERVER_SHUTDOWN";
};
export type ConnectionReason = (typeof ConnectionReason)[keyof typeof ConnectionReason];
/** Result codes, as in docs/SEMANTICS.md and the C ABI (`BECKON_ERROR_*`). */
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
/** Push providers of `setPushTarget` and `invitationPushResult`. */
export declare const PushProvider: {
    readonly APNS: "APNS";
    readonly APNS_VOIP: "APNS_VOIP";
    readonly FCM: "FCM";
    readonly WEBHOOK: "WEBHOOK";
};
export type PushProvider = (typeof PushProvider)[keyof typeof PushProvider];
/** What happened to one push (`invitationPushResult`). */
export declare const PushOutcome: {
    readonly SENT: "SENT";
    readonly FAILED: "FAILED";
    readonly NO_TARGET: "NO_TARGET";
};
export type PushOutcome = (typeof PushOutcome)[keyof typeof PushOutcome];
/** Which ended invitations `queryInvitations` lists. */
export declare const HistoryRole: {
    readonly ANY: "ANY";
    readonly SENT: "SENT";
    readonly RECEIVED: "RECEIVED";
};
export type HistoryRole = (typeof HistoryRole)[keyof typeof HistoryRole];
/** The protocol version of `hello` (docs/PROTOCOL.md, "Versioning"). */
export declare const PROTOCOL_VERSION = 1;
/** The WebSocket subprotocol the client offers. */
export declare const SUBPROTOCOL = "beckon.v1";
/** Final states: they never change again. */
export declare function isTerminal(state: InviteeState): boolean;
