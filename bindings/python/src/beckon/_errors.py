"""Exceptions: one class per ``beckon_error`` code, under :class:`BeckonError`.

Every error the library reports, at once (a C call that returns a code) or
later (the code in a callback's result), is raised as the class of its code,
with the library's message, which names the offending argument
(``invitees[2]: byte 3 is outside [A-Za-z0-9_.@:+-]``). Input that this binding
can judge before calling the library raises the same classes with messages of
the same form; a wrong *type* raises :class:`ArgumentTypeError`, which is both
an :class:`InvalidArgumentError` and a :class:`TypeError`.
"""

from __future__ import annotations

from typing import ClassVar

from ._types import ErrorCode


class BeckonError(Exception):
    """Base class of every error reported by Beckon.

    Attributes:
        code: the :class:`ErrorCode` (the C ``beckon_error`` value).
        message: the library's message ("" when it gave none).
    """

    code: ErrorCode
    _default_code: ClassVar[ErrorCode] = ErrorCode.INTERNAL

    def __init__(self, message: str = "", code: ErrorCode | int | None = None) -> None:
        self.code = ErrorCode.of(int(code)) if code is not None else self._default_code
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        name = self.code.name
        return f"{name}: {self.message}" if self.message else name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={int(self.code)})"

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message, int(self.code)))


class InvalidArgumentError(BeckonError, ValueError):
    """NULL, empty, malformed or out-of-range input; the message names the field."""

    _default_code = ErrorCode.INVALID_ARGUMENT


class ArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument of the wrong Python type (caught before calling the library)."""


class TooManyInviteesError(BeckonError, ValueError):
    """More distinct invitees than the hub's limit."""

    _default_code = ErrorCode.TOO_MANY_INVITEES


class PayloadTooLargeError(BeckonError, ValueError):
    """Extended data or a notification field over its limit."""

    _default_code = ErrorCode.PAYLOAD_TOO_LARGE


class NotLoggedInError(BeckonError):
    """The operation needs a logged-in session."""

    _default_code = ErrorCode.NOT_LOGGED_IN


class AuthFailedError(BeckonError):
    """Bad token, or a token for another user."""

    _default_code = ErrorCode.AUTH_FAILED


class TokenExpiredError(BeckonError):
    """The token's expiry has passed."""

    _default_code = ErrorCode.TOKEN_EXPIRED


class InvitationNotFoundError(BeckonError):
    """Unknown invitation id, or forgotten after retention."""

    _default_code = ErrorCode.INVITATION_NOT_FOUND


class NotPermittedError(BeckonError):
    """Not the inviter (cancel) or not an invitee (accept, refuse)."""

    _default_code = ErrorCode.NOT_PERMITTED


class AlreadyAnsweredError(BeckonError):
    """This invitee already accepted or refused (possibly on another device)."""

    _default_code = ErrorCode.ALREADY_ANSWERED


class InvitationClosedError(BeckonError):
    """Cancelled or timed out for this invitee, or the invitation ended."""

    _default_code = ErrorCode.INVITATION_CLOSED


class NetworkError(BeckonError):
    """The server cannot be reached, or the connection dropped mid-request."""

    _default_code = ErrorCode.NETWORK


class RequestTimeoutError(BeckonError):
    """No answer from the server within the client's request timeout."""

    _default_code = ErrorCode.REQUEST_TIMEOUT


class RateLimitedError(BeckonError):
    """The server refused the request under its rate limit."""

    _default_code = ErrorCode.RATE_LIMITED


class ShutdownError(BeckonError):
    """The client was closed (or logged out) before the operation completed.

    Also raised by any method of a client that is already closed. Note that the
    operation may have been carried out at the hub: SHUTDOWN means "outcome not
    delivered", not "not done".
    """

    _default_code = ErrorCode.SHUTDOWN


class ServerError(BeckonError):
    """The server failed to process the request."""

    _default_code = ErrorCode.SERVER


class InternalError(BeckonError):
    """A bug in the library, including a caught panic; the message has the detail."""

    _default_code = ErrorCode.INTERNAL


class WouldDeadlockError(BeckonError, RuntimeError):
    """The call would wait for a callback that is itself waiting for the caller.

    Raised by :meth:`beckon.Client.close` called from another client's callback
    while a callback of this client is itself closing that other client: the
    two would wait for each other forever. Nothing was done: the client is
    still open and usable; close it later, outside the callbacks.
    """

    _default_code = ErrorCode.WOULD_DEADLOCK


#: The exception class of each error code.
ERROR_CLASSES: dict[ErrorCode, type[BeckonError]] = {
    ErrorCode.INVALID_ARGUMENT: InvalidArgumentError,
    ErrorCode.TOO_MANY_INVITEES: TooManyInviteesError,
    ErrorCode.PAYLOAD_TOO_LARGE: PayloadTooLargeError,
    ErrorCode.NOT_LOGGED_IN: NotLoggedInError,
    ErrorCode.AUTH_FAILED: AuthFailedError,
    ErrorCode.TOKEN_EXPIRED: TokenExpiredError,
    ErrorCode.INVITATION_NOT_FOUND: InvitationNotFoundError,
    ErrorCode.NOT_PERMITTED: NotPermittedError,
    ErrorCode.ALREADY_ANSWERED: AlreadyAnsweredError,
    ErrorCode.INVITATION_CLOSED: InvitationClosedError,
    ErrorCode.NETWORK: NetworkError,
    ErrorCode.REQUEST_TIMEOUT: RequestTimeoutError,
    ErrorCode.RATE_LIMITED: RateLimitedError,
    ErrorCode.SHUTDOWN: ShutdownError,
    ErrorCode.SERVER: ServerError,
    ErrorCode.INTERNAL: InternalError,
    ErrorCode.WOULD_DEADLOCK: WouldDeadlockError,
}


def error_for(code: int, message: str) -> BeckonError:
    """The exception for a non-zero ``beckon_error`` code and its message.

    A code this binding does not know becomes a plain :class:`BeckonError`
    carrying that code.
    """
    known = ErrorCode.of(code)
    cls = ERROR_CLASSES.get(known, BeckonError)
    return cls(message, known)
