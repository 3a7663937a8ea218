export { Client } from './client.js';
export { ConnectionReason, ConnectionState, ErrorCode, EventKind, HistoryRole, InviteeState, InviteeStateCode, PROTOCOL_VERSION, PushOutcome, PushProvider, SUBPROTOCOL, type ErrorCodeName, } from './constants.js';
export { AlreadyAnsweredError, AuthFailedError, BeckonError, InternalError, InvalidArgumentError, InvitationClosedError, InvitationNotFoundError, NetworkError, NotLoggedInError, NotPermittedError, PayloadTooLargeError, RateLimitedError, RequestTimeoutError, ServerError, ShutdownError, TokenExpiredError, TooManyInviteesError, WouldDeadlockError, } from './errors.js';
export type * from './types.js';
/** This client's version. */
export declare const VERSION = "0.1.0";
