"""Beckon: call-invitation signaling, for Python.

A thin layer over libbeckon's C ABI (``include/beckon.h``) through ctypes: no
compiler is needed, and there is no second implementation. An app invites
users to a call; every device of every invitee rings; each invitee accepts or
refuses; the inviter hears each answer, or that nobody answered in time::

    import beckon

    with beckon.Client("memory://demo") as alice, beckon.Client("memory://demo") as bob:
        bob.add_event_handler(lambda event: print("bob:", event))
        alice.login("alice").result(timeout=5)
        bob.login("bob").result(timeout=5)
        sent = alice.send_invitation(["bob"], timeout=30).result(timeout=5)
        print("invitation", sent.invitation_id)

The library is found through ``$BECKON_LIBRARY`` (a full path), else the copy
bundled in the wheel, else the system loader; it is loaded on first use (or by
:func:`load_library`) and must serve ABI :data:`ABI_VERSION` (2.3): the same
major version, and an equal or newer minor version.
"""

from __future__ import annotations

import atexit

from . import _callbacks
from ._client import Client, EventHandler, EventStream, OperationFuture
from ._errors import (
    ERROR_CLASSES,
    AlreadyAnsweredError,
    ArgumentTypeError,
    AuthFailedError,
    BeckonError,
    InternalError,
    InvalidArgumentError,
    InvitationClosedError,
    InvitationNotFoundError,
    NetworkError,
    NotLoggedInError,
    NotPermittedError,
    PayloadTooLargeError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    ShutdownError,
    TokenExpiredError,
    TooManyInviteesError,
    WouldDeadlockError,
)
from ._library import (
    LogDeliveryName,
    LogHandler,
    abi_version,
    error_description,
    error_name,
    event_kind_name,
    invitee_state_name,
    library_path,
    load_library,
    log_to_logging,
    memory_hub_create,
    set_log_handler,
    token_create,
    version,
)
from ._native import (
    ABI_VERSION,
    ABI_VERSION_MAJOR,
    ABI_VERSION_MINOR,
    LIBRARY_ENV,
    AbiVersionError,
    LibraryLoadError,
)
from ._types import (
    ApnsEnvironment,
    CancelResult,
    ClientInfo,
    ConnectionReason,
    ConnectionState,
    ConnectionStateChanged,
    DispatchMode,
    ErrorCode,
    Event,
    EventKind,
    HistoryRole,
    InvitationAccepted,
    InvitationCancelled,
    InvitationPage,
    InvitationPushResult,
    InvitationReceived,
    InvitationRefused,
    InvitationResponseTimeout,
    InvitationSummary,
    InvitationTimeout,
    InvitationUserStateChanged,
    InviteeState,
    InviteeStatus,
    LogDelivery,
    LogLevel,
    Notification,
    PushOutcome,
    PushProvider,
    PushTarget,
    SendResult,
    TokenWillExpire,
)

#: The version of this Python package (the library's own is :func:`version`).
__version__ = "0.1.0"


def _quiet_at_exit() -> None:
    # Python's finalization must not meet a library thread calling back into
    # it: stop logging while the interpreter is still whole. (Clients still
    # open are closed by their own finalizers, which also run at exit.)
    if _callbacks.has_log_handler():
        try:
            set_log_handler(None)
        except BeckonError:
            pass


atexit.register(_quiet_at_exit)

__all__ = [
    "ABI_VERSION",
    "ABI_VERSION_MAJOR",
    "ABI_VERSION_MINOR",
    "AbiVersionError",
    "ApnsEnvironment",
    "AlreadyAnsweredError",
    "ArgumentTypeError",
    "AuthFailedError",
    "BeckonError",
    "CancelResult",
    "Client",
    "ClientInfo",
    "ConnectionReason",
    "ConnectionState",
    "ConnectionStateChanged",
    "DispatchMode",
    "ERROR_CLASSES",
    "ErrorCode",
    "Event",
    "EventHandler",
    "EventKind",
    "EventStream",
    "HistoryRole",
    "InternalError",
    "InvalidArgumentError",
    "InvitationAccepted",
    "InvitationCancelled",
    "InvitationPage",
    "InvitationPushResult",
    "InvitationClosedError",
    "InvitationNotFoundError",
    "InvitationReceived",
    "InvitationRefused",
    "InvitationResponseTimeout",
    "InvitationSummary",
    "InvitationTimeout",
    "InvitationUserStateChanged",
    "InviteeState",
    "InviteeStatus",
    "LIBRARY_ENV",
    "LibraryLoadError",
    "LogDelivery",
    "LogDeliveryName",
    "LogHandler",
    "LogLevel",
    "NetworkError",
    "NotLoggedInError",
    "NotPermittedError",
    "Notification",
    "OperationFuture",
    "PayloadTooLargeError",
    "PushOutcome",
    "PushProvider",
    "PushTarget",
    "RateLimitedError",
    "RequestTimeoutError",
    "SendResult",
    "ServerError",
    "ShutdownError",
    "TokenExpiredError",
    "TokenWillExpire",
    "TooManyInviteesError",
    "WouldDeadlockError",
    "abi_version",
    "error_description",
    "error_name",
    "event_kind_name",
    "invitee_state_name",
    "library_path",
    "load_library",
    "log_to_logging",
    "memory_hub_create",
    "set_log_handler",
    "token_create",
    "version",
]
