'use strict';
// One Error subclass per C error code, all under BeckonError. An error has the
// code's number (`code`), its name (`codeName`) and the library's message,
// which names the argument at fault (`invitees[2]: ...`).

const { ErrorCode, errorCodeName } = require('./constants');

/** The base class of every error that carries a libbeckon error code. */
class BeckonError extends Error {
  /**
   * @param {string} message what went wrong (the library's message)
   * @param {{ code?: number, cause?: unknown }} [options]
   */
  constructor(message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const code = options.code ?? new.target.code ?? -1;
    Object.defineProperty(this, 'code', { value: code, enumerable: true });
    Object.defineProperty(this, 'codeName', { value: errorCodeName(code), enumerable: true });
  }

  get name() {
    return this.constructor.name;
  }

  /**
   * The error for a C result code: an instance of the subclass of that code,
   * or a plain BeckonError for a code this binding does not know.
   */
  static fromCode(code, message) {
    const Class = byCode.get(code);
    const text = message || errorCodeName(code);
    return Class ? new Class(text) : new BeckonError(text, { code });
  }
}

const byCode = new Map();

/** Makes the subclass for one code, named after it (NOT_PERMITTED -> NotPermittedError). */
function subclass(codeName) {
  const code = ErrorCode[codeName];
  const className =
    codeName
      .toLowerCase()
      .split('_')
      .map((word) => word[0].toUpperCase() + word.slice(1))
      .join('') + 'Error';
  // A computed key keeps the class's own `name` (its constructor.name).
  const Class = {
    [className]: class extends BeckonError {},
  }[className];
  Object.defineProperty(Class, 'code', { value: code });
  byCode.set(code, Class);
  return Class;
}

const InvalidArgumentError = subclass('INVALID_ARGUMENT');
const TooManyInviteesError = subclass('TOO_MANY_INVITEES');
const PayloadTooLargeError = subclass('PAYLOAD_TOO_LARGE');
const NotLoggedInError = subclass('NOT_LOGGED_IN');
const AuthFailedError = subclass('AUTH_FAILED');
const TokenExpiredError = subclass('TOKEN_EXPIRED');
const InvitationNotFoundError = subclass('INVITATION_NOT_FOUND');
const NotPermittedError = subclass('NOT_PERMITTED');
const AlreadyAnsweredError = subclass('ALREADY_ANSWERED');
const InvitationClosedError = subclass('INVITATION_CLOSED');
const NetworkError = subclass('NETWORK');
const RequestTimeoutError = subclass('REQUEST_TIMEOUT');
const RateLimitedError = subclass('RATE_LIMITED');
const ShutdownError = subclass('SHUTDOWN');
const ServerError = subclass('SERVER');
const InternalError = subclass('INTERNAL');
const WouldDeadlockError = subclass('WOULD_DEADLOCK');

module.exports = {
  BeckonError,
  InvalidArgumentError,
  TooManyInviteesError,
  PayloadTooLargeError,
  NotLoggedInError,
  AuthFailedError,
  TokenExpiredError,
  InvitationNotFoundError,
  NotPermittedError,
  AlreadyAnsweredError,
  InvitationClosedError,
  NetworkError,
  RequestTimeoutError,
  RateLimitedError,
  ShutdownError,
  ServerError,
  InternalError,
  WouldDeadlockError,
};
