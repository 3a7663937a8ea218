// One error class per code of docs/SEMANTICS.md, all under BeckonError, with
// the same names as the Node binding so code moves between them.

import { ErrorCode, type ErrorCodeName } from './constants.js';

const NAMES: { [code: number]: ErrorCodeName } = {};
for (const [name, code] of Object.entries(ErrorCode)) NAMES[code] = name as ErrorCodeName;

/** An error carrying a Beckon error code and a message naming the field or id involved. */
export class BeckonError extends Error {
  /** The numeric code (`ErrorCode`); -1 for an error made without one. */
  readonly code: number;
  /** The code's name, e.g. "NOT_PERMITTED" ("UNKNOWN" for a code this client does not know). */
  readonly codeName: ErrorCodeName | 'UNKNOWN';

  constructor(message: string, options?: { code?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = options?.code ?? -1;
    this.codeName = NAMES[this.code] ?? 'UNKNOWN';
    this.name = new.target.name;
  }

  /** The error for a code: an instance of its subclass, or a plain BeckonError. */
  static fromCode(code: number, message?: string): BeckonError {
    const make = CLASSES[code];
    const text = message ?? NAMES[code] ?? `error ${code}`;
    return make ? new make(text) : new BeckonError(text, { code });
  }
}

type Subclass = new (message: string, options?: { cause?: unknown }) => BeckonError;


/** Empty, malformed or out-of-range input; the message names the field. */
export class InvalidArgumentError extends BeckonError {
  declare readonly code: typeof ErrorCode.INVALID_ARGUMENT;
  declare readonly codeName: 'INVALID_ARGUMENT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.INVALID_ARGUMENT, cause: options?.cause });
  }
}

/** More distinct invitees than the server's limit. */
export class TooManyInviteesError extends BeckonError {
  declare readonly code: typeof ErrorCode.TOO_MANY_INVITEES;
  declare readonly codeName: 'TOO_MANY_INVITEES';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.TOO_MANY_INVITEES, cause: options?.cause });
  }
}

/** Extended data or a notification field over its limit, or a request over the server's frame limit. */
export class PayloadTooLargeError extends BeckonError {
  declare readonly code: typeof ErrorCode.PAYLOAD_TOO_LARGE;
  declare readonly codeName: 'PAYLOAD_TOO_LARGE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.PAYLOAD_TOO_LARGE, cause: options?.cause });
  }
}

/** The operation needs a logged-in session. */
export class NotLoggedInError extends BeckonError {
  declare readonly code: typeof ErrorCode.NOT_LOGGED_IN;
  declare readonly codeName: 'NOT_LOGGED_IN';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.NOT_LOGGED_IN, cause: options?.cause });
  }
}

/** Bad token, or a token for another user. */
export class AuthFailedError extends BeckonError {
  declare readonly code: typeof ErrorCode.AUTH_FAILED;
  declare readonly codeName: 'AUTH_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.AUTH_FAILED, cause: options?.cause });
  }
}

/** The token's expiry has passed. */
export class TokenExpiredError extends BeckonError {
  declare readonly code: typeof ErrorCode.TOKEN_EXPIRED;
  declare readonly codeName: 'TOKEN_EXPIRED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.TOKEN_EXPIRED, cause: options?.cause });
  }
}

/** Unknown invitation id, or forgotten after retention. */
export class InvitationNotFoundError extends BeckonError {
  declare readonly code: typeof ErrorCode.INVITATION_NOT_FOUND;
  declare readonly codeName: 'INVITATION_NOT_FOUND';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.INVITATION_NOT_FOUND, cause: options?.cause });
  }
}

/** Not the inviter (cancel) or not an invitee (accept, refuse); or an 11th device. */
export class NotPermittedError extends BeckonError {
  declare readonly code: typeof ErrorCode.NOT_PERMITTED;
  declare readonly codeName: 'NOT_PERMITTED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.NOT_PERMITTED, cause: options?.cause });
  }
}

/** This invitee already accepted or refused (possibly on another device). */
export class AlreadyAnsweredError extends BeckonError {
  declare readonly code: typeof ErrorCode.ALREADY_ANSWERED;
  declare readonly codeName: 'ALREADY_ANSWERED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.ALREADY_ANSWERED, cause: options?.cause });
  }
}

/** Cancelled or timed out for this invitee, or the invitation ended. */
export class InvitationClosedError extends BeckonError {
  declare readonly code: typeof ErrorCode.INVITATION_CLOSED;
  declare readonly codeName: 'INVITATION_CLOSED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.INVITATION_CLOSED, cause: options?.cause });
  }
}

/** The server cannot be reached, or the session could not be restored. */
export class NetworkError extends BeckonError {
  declare readonly code: typeof ErrorCode.NETWORK;
  declare readonly codeName: 'NETWORK';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.NETWORK, cause: options?.cause });
  }
}

/** No answer from the server within the request timeout. */
export class RequestTimeoutError extends BeckonError {
  declare readonly code: typeof ErrorCode.REQUEST_TIMEOUT;
  declare readonly codeName: 'REQUEST_TIMEOUT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.REQUEST_TIMEOUT, cause: options?.cause });
  }
}

/** The server refused the request under its rate limit or open-invitation quota. */
export class RateLimitedError extends BeckonError {
  declare readonly code: typeof ErrorCode.RATE_LIMITED;
  declare readonly codeName: 'RATE_LIMITED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.RATE_LIMITED, cause: options?.cause });
  }
}

/** The client was closed or logged out before the outcome was delivered (it may still have been carried out). */
export class ShutdownError extends BeckonError {
  declare readonly code: typeof ErrorCode.SHUTDOWN;
  declare readonly codeName: 'SHUTDOWN';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.SHUTDOWN, cause: options?.cause });
  }
}

/** The server failed to process the request, or answered with a code this client does not know. */
export class ServerError extends BeckonError {
  declare readonly code: typeof ErrorCode.SERVER;
  declare readonly codeName: 'SERVER';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.SERVER, cause: options?.cause });
  }
}

/** A bug; the message has the detail. */
export class InternalError extends BeckonError {
  declare readonly code: typeof ErrorCode.INTERNAL;
  declare readonly codeName: 'INTERNAL';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.INTERNAL, cause: options?.cause });
  }
}

/** Never raised by the web client (a C ABI matter); here so every code has its class. */
export class WouldDeadlockError extends BeckonError {
  declare readonly code: typeof ErrorCode.WOULD_DEADLOCK;
  declare readonly codeName: 'WOULD_DEADLOCK';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.WOULD_DEADLOCK, cause: options?.cause });
  }
}

const CLASSES: { [code: number]: Subclass } = {
  1: InvalidArgumentError,
  2: TooManyInviteesError,
  3: PayloadTooLargeError,
  4: NotLoggedInError,
  5: AuthFailedError,
  6: TokenExpiredError,
  7: InvitationNotFoundError,
  8: NotPermittedError,
  9: AlreadyAnsweredError,
  10: InvitationClosedError,
  11: NetworkError,
  12: RequestTimeoutError,
  13: RateLimitedError,
  14: ShutdownError,
  15: ServerError,
  16: InternalError,
  17: WouldDeadlockError,
};

/** The error a server's `{code, message}` stands for; an unknown code is SERVER, with the number. */
export function fromWire(code: number, message: string): BeckonError {
  if (code !== 0 && CLASSES[code]) return BeckonError.fromCode(code, message);
  return new ServerError(`server error ${code}: ${message}`);
}
