import { ErrorCode, type ErrorCodeName } from './constants.js';
/** An error carrying a Beckon error code and a message naming the field or id involved. */
export declare class BeckonError extends Error {
    /** The numeric code (`ErrorCode`); -1 for an error made without one. */
    readonly code: number;
    /** The code's name, e.g. "NOT_PERMITTED" ("UNKNOWN" for a code this client does not know). */
    readonly codeName: ErrorCodeName | 'UNKNOWN';
    constructor(message: string, options?: {
        code?: number;
        cause?: unknown;
    });
    /** The error for a code: an instance of its subclass, or a plain BeckonError. */
    static fromCode(code: number, message?: string): BeckonError;
}
/** Empty, malformed or out-of-range input; the message names the field. */
export declare class InvalidArgumentError extends BeckonError {
    readonly code: typeof ErrorCode.INVALID_ARGUMENT;
    readonly codeName: 'INVALID_ARGUMENT';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** More distinct invitees than the server's limit. */
export declare class TooManyInviteesError extends BeckonError {
    readonly code: typeof ErrorCode.TOO_MANY_INVITEES;
    readonly codeName: 'TOO_MANY_INVITEES';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** Extended data or a notification field over its limit, or a request over the server's frame limit. */
export declare class PayloadTooLargeError extends BeckonError {
    readonly code: typeof ErrorCode.PAYLOAD_TOO_LARGE;
    readonly codeName: 'PAYLOAD_TOO_LARGE';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** The operation needs a logged-in session. */
export declare class NotLoggedInError extends BeckonError {
    readonly code: typeof ErrorCode.NOT_LOGGED_IN;
    readonly codeName: 'NOT_LOGGED_IN';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** Bad token, or a token for another user. */
export declare class AuthFailedError extends BeckonError {
    readonly code: typeof ErrorCode.AUTH_FAILED;
    readonly codeName: 'AUTH_FAILED';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** The token's expiry has passed. */
export declare class TokenExpiredError extends BeckonError {
    readonly code: typeof ErrorCode.TOKEN_EXPIRED;
    readonly codeName: 'TOKEN_EXPIRED';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** Unknown invitation id, or forgotten after retention. */
export declare class InvitationNotFoundError extends BeckonError {
    readonly code: typeof ErrorCode.INVITATION_NOT_FOUND;
    readonly codeName: 'INVITATION_NOT_FOUND';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** Not the inviter (cancel) or not an invitee (accept, refuse); or an 11th device. */
export declare class NotPermittedError extends BeckonError {
    readonly code: typeof ErrorCode.NOT_PERMITTED;
    readonly codeName: 'NOT_PERMITTED';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** This invitee already accepted or refused (possibly on another device). */
export declare class AlreadyAnsweredError extends BeckonError {
    readonly code: typeof ErrorCode.ALREADY_ANSWERED;
    readonly codeName: 'ALREADY_ANSWERED';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** Cancelled or timed out for this invitee, or the invitation ended. */
export declare class InvitationClosedError extends BeckonError {
    readonly code: typeof ErrorCode.INVITATION_CLOSED;
    readonly codeName: 'INVITATION_CLOSED';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** The server cannot be reached, or the session could not be restored. */
export declare class NetworkError extends BeckonError {
    readonly code: typeof ErrorCode.NETWORK;
    readonly codeName: 'NETWORK';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** No answer from the server within the request timeout. */
export declare class RequestTimeoutError extends BeckonError {
    readonly code: typeof ErrorCode.REQUEST_TIMEOUT;
    readonly codeName: 'REQUEST_TIMEOUT';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** The server refused the request under its rate limit or open-invitation quota. */
export declare class RateLimitedError extends BeckonError {
    readonly code: typeof ErrorCode.RATE_LIMITED;
    readonly codeName: 'RATE_LIMITED';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** The client was closed or logged out before the outcome was delivered (it may still have been carried out). */
export declare class ShutdownError extends BeckonError {
    readonly code: typeof ErrorCode.SHUTDOWN;
    readonly codeName: 'SHUTDOWN';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** The server failed to process the request, or answered with a code this client does not know. */
export declare class ServerError extends BeckonError {
    readonly code: typeof ErrorCode.SERVER;
    readonly codeName: 'SERVER';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** A bug; the message has the detail. */
export declare class InternalError extends BeckonError {
    readonly code: typeof ErrorCode.INTERNAL;
    readonly codeName: 'INTERNAL';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** Never raised by the web client (a C ABI matter); here so every code has its class. */
export declare class WouldDeadlockError extends BeckonError {
    readonly code: typeof ErrorCode.WOULD_DEADLOCK;
    readonly codeName: 'WOULD_DEADLOCK';
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** The error a server's `{code, message}` stands for; an unknown code is SERVER, with the number. */
export declare function fromWire(code: number, message: string): BeckonError;
