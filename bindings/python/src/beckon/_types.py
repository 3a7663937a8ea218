"""Values of the Beckon API as Python types: enumerations, results, events.

The numeric values of every enumeration are the C ABI's (``BECKON_*`` in
``include/beckon.h``) and never change. A value this binding does not know
(from a newer library) still converts: it becomes a pseudo-member named
``UNKNOWN_<value>`` instead of raising inside a callback.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, TypeVar

_E = TypeVar("_E", bound="_OpenIntEnum")


class _OpenIntEnum(enum.IntEnum):
    """An IntEnum that maps unknown values to ``UNKNOWN_<value>`` pseudo-members."""

    @classmethod
    def _missing_(cls, value: object) -> _OpenIntEnum | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        return member

    @classmethod
    def of(cls: type[_E], value: int) -> _E:
        """The member for ``value`` (a pseudo-member if the value is unknown)."""
        return cls(value)


class ErrorCode(_OpenIntEnum):
    """``beckon_error``: the result code of every operation (docs/SEMANTICS.md)."""

    OK = 0
    INVALID_ARGUMENT = 1
    TOO_MANY_INVITEES = 2
    PAYLOAD_TOO_LARGE = 3
    NOT_LOGGED_IN = 4
    AUTH_FAILED = 5
    TOKEN_EXPIRED = 6
    INVITATION_NOT_FOUND = 7
    NOT_PERMITTED = 8
    ALREADY_ANSWERED = 9
    INVITATION_CLOSED = 10
    NETWORK = 11
    REQUEST_TIMEOUT = 12
    RATE_LIMITED = 13
    SHUTDOWN = 14
    SERVER = 15
    INTERNAL = 16
    WOULD_DEADLOCK = 17


class InviteeState(_OpenIntEnum):
    """One invitee's state in an invitation (``BECKON_INVITEE_*``; ZIM's values)."""

    INVITING = 0
    """Sent, not yet delivered to any device of this invitee."""
    ACCEPTED = 1
    """This invitee accepted (terminal)."""
    REJECTED = 2
    """This invitee refused (terminal)."""
    CANCELLED = 3
    """The inviter cancelled for this invitee (terminal)."""
    OFFLINE = 4
    """No device of this invitee was online when the invitation was sent."""
    RECEIVED = 5
    """Delivered to at least one device of this invitee."""
    TIMEOUT = 6
    """No answer before the deadline (terminal)."""

    @property
    def is_terminal(self) -> bool:
        """Whether the state can no longer change."""
        return self in (
            InviteeState.ACCEPTED,
            InviteeState.REJECTED,
            InviteeState.CANCELLED,
            InviteeState.TIMEOUT,
        )


class EventKind(_OpenIntEnum):
    """``BECKON_EVENT_*``: which event a :class:`Event` is."""

    CONNECTION_STATE_CHANGED = 1
    TOKEN_WILL_EXPIRE = 2
    INVITATION_RECEIVED = 3
    INVITATION_CANCELLED = 4
    INVITATION_ACCEPTED = 5
    INVITATION_REFUSED = 6
    INVITATION_TIMEOUT = 7
    INVITATION_RESPONSE_TIMEOUT = 8
    INVITATION_USER_STATE_CHANGED = 9
    INVITATION_PUSH_RESULT = 10
    """(To the inviter) what happened to a push (ABI 2.2)."""


class ConnectionState(_OpenIntEnum):
    """``BECKON_CONNECTION_*``."""

    DISCONNECTED = 0
    CONNECTING = 1
    CONNECTED = 2
    RECONNECTING = 3


class ConnectionReason(_OpenIntEnum):
    """``BECKON_REASON_*``: why the connection state changed."""

    LOGIN = 0
    LOGOUT = 1
    NETWORK = 2
    KICKED_OUT = 3
    TOKEN_EXPIRED = 4
    SERVER_SHUTDOWN = 5


class PushProvider(_OpenIntEnum):
    """``BECKON_PUSH_PROVIDER_*``: the service a push target is reached through."""

    APNS = 1
    """APNs alert pushes."""
    APNS_VOIP = 2
    """APNs VoIP pushes, for PushKit and CallKit (the server adds ``.voip`` to the topic)."""
    FCM = 3
    """Firebase Cloud Messaging, high-priority data messages."""
    WEBHOOK = 4
    """A signed HTTP POST to the app's own backend."""


class ApnsEnvironment(enum.IntEnum):
    """``BECKON_APNS_*``: which APNs servers a device token belongs to."""

    PRODUCTION = 0
    SANDBOX = 1
    """The tokens of development builds."""


class PushOutcome(_OpenIntEnum):
    """``BECKON_PUSH_*``: what happened to one push."""

    SENT = 1
    """The provider took it."""
    FAILED = 2
    """The provider refused it or could not be reached; ``reason`` says why."""
    NO_TARGET = 3
    """The invitee was offline and none of its devices has a push target."""


class HistoryRole(enum.IntEnum):
    """``BECKON_HISTORY_*``: which ended invitations a history query lists (ABI 2.3).

    See :meth:`beckon.Client.query_invitations`.
    """

    ANY = 0
    """Sent and received: the default."""
    SENT = 1
    """Those the user sent (from a device, or the server API on its behalf)."""
    RECEIVED = 2
    """Those the user was invited to."""


class DispatchMode(enum.IntEnum):
    """Where a client's callbacks and event handlers run.

    ``THREAD`` (the default): on a thread the client owns, one at a time.
    ``POLL``: only inside :meth:`beckon.Client.poll`, on the polling thread.
    ``POOL``: on a small pool of library threads shared by every pool-mode
    client of the process (as many as the CPUs, 2 to 8), still one at a time
    and in order per client: for processes with many clients.
    """

    THREAD = 0
    POLL = 1
    POOL = 2


class LogLevel(enum.IntEnum):
    """``BECKON_LOG_*``: how much the library logs (``OFF`` stops logging)."""

    OFF = 0
    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4
    TRACE = 5


class LogDelivery(enum.IntEnum):
    """``BECKON_LOG_DIRECT`` / ``BECKON_LOG_QUEUED``: how log records reach the handler.

    ``QUEUED`` (the binding's default): records are queued and the handler runs
    on one library thread (``beckon-log``), one record at a time, in order,
    outside every lock of the library, so it may take its time and call
    beckon. At most 10,000 records wait; beyond that they are dropped and a
    ``WARN`` record with sub-tag ``"log"`` says how many.
    ``DIRECT``: the handler runs at once on the thread that logs, possibly while
    the library holds internal locks: it must be quick and never call beckon.
    """

    DIRECT = 0
    QUEUED = 1


# --------------------------------------------------------------------------
# Inputs and results
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    """What an offline device's push notification shows.

    Limits (UTF-8 bytes): ``title`` 256, ``message`` 1 KiB, ``resource_id`` 64,
    ``payload`` 4 KiB. Carried to invitees in :class:`InvitationReceived`.
    """

    title: str = ""
    message: str = ""
    resource_id: str = ""
    payload: str = ""


@dataclass(frozen=True, slots=True)
class PushTarget:
    """Where this device is rung by push while it is not connected.

    See :meth:`beckon.Client.set_push_target`. ``token`` is the APNs device
    token (hex; PushKit's for ``APNS_VOIP``), the FCM registration token, or
    for a webhook what the app's backend knows the device by. ``topic`` (the
    bundle id; None for the server's) and ``environment`` are for APNs only;
    ``alert_token`` (the device's regular APNs token, where stop pushes go as
    alerts) for ``APNS_VOIP`` only.
    """

    provider: PushProvider
    token: str
    topic: str | None = None
    environment: ApnsEnvironment = ApnsEnvironment.PRODUCTION
    alert_token: str | None = None


@dataclass(frozen=True, slots=True)
class InviteeStatus:
    """A user id with its per-invitee state."""

    user_id: str
    state: InviteeState


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of :meth:`beckon.Client.send_invitation`.

    ``error_invitees`` lists the invitees no device of which was online at send
    time (state ``OFFLINE``); unless the invitation was ``online_only`` it still
    rings for them if they log in before the deadline.
    """

    invitation_id: str
    error_invitees: tuple[InviteeStatus, ...] = ()


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What :meth:`beckon.Client.info` tells about a client, at the moment of the call."""

    connection_state: ConnectionState
    """The state of the last :class:`ConnectionStateChanged` this client
    dispatched (``DISCONNECTED`` before any): the state its handlers have been told."""
    user_id: str | None
    """The logged-in user; None unless a login has succeeded and no logout (or
    end of session) has happened since."""
    device_id: str
    """This client's device id: the one given at creation, or the random one
    the library made."""


@dataclass(frozen=True, slots=True)
class CancelResult:
    """The outcome of :meth:`beckon.Client.cancel_invitation`.

    ``error_invitees`` lists the invitees that could not be cancelled because
    they were already in a terminal state, with that state.
    """

    error_invitees: tuple[InviteeStatus, ...] = ()


@dataclass(frozen=True, slots=True)
class InvitationSummary:
    """One ended invitation of an :class:`InvitationPage` (ABI 2.3)."""

    invitation_id: str
    inviter: str
    """The user who sent it."""
    invitees: tuple[InviteeStatus, ...]
    """Every invitee with its final state."""
    created_ms: int
    """When it was sent, in Unix milliseconds."""
    ended_ms: int
    """When it ended (its last invitee reached a final state), in Unix milliseconds."""
    sent_by_server: bool
    """Whether the server API sent it on the inviter's behalf."""


@dataclass(frozen=True, slots=True)
class InvitationPage:
    """The outcome of :meth:`beckon.Client.query_invitations`: one page of ended invitations.

    ``invitations`` are newest sent first (those sent in the same millisecond
    by descending id). ``next_cursor`` is the ``cursor`` that asks
    for the next page, or None on the last page.
    """

    invitations: tuple[InvitationSummary, ...] = ()
    next_cursor: str | None = None


# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of every event a client receives; ``kind`` says which one."""

    kind: ClassVar[EventKind]


@dataclass(frozen=True, slots=True)
class ConnectionStateChanged(Event):
    """The client's connection changed state (login, logout, kicked out, ...)."""

    kind: ClassVar[EventKind] = EventKind.CONNECTION_STATE_CHANGED
    state: ConnectionState
    reason: ConnectionReason


@dataclass(frozen=True, slots=True)
class TokenWillExpire(Event):
    """The session's token expires in ``seconds_left``: renew it."""

    kind: ClassVar[EventKind] = EventKind.TOKEN_WILL_EXPIRE
    seconds_left: int


@dataclass(frozen=True, slots=True)
class InvitationReceived(Event):
    """This device rings: ``inviter`` invites this user (and ``invitees``)."""

    kind: ClassVar[EventKind] = EventKind.INVITATION_RECEIVED
    invitation_id: str
    inviter: str
    invitees: tuple[InviteeStatus, ...]
    extended_data: str
    notification: Notification | None
    seconds_left: int


@dataclass(frozen=True, slots=True)
class InvitationCancelled(Event):
    """The inviter cancelled the invitation for this user: stop ringing."""

    kind: ClassVar[EventKind] = EventKind.INVITATION_CANCELLED
    invitation_id: str
    inviter: str
    extended_data: str


@dataclass(frozen=True, slots=True)
class InvitationAccepted(Event):
    """(To the inviter) ``invitee`` accepted."""

    kind: ClassVar[EventKind] = EventKind.INVITATION_ACCEPTED
    invitation_id: str
    invitee: str
    extended_data: str


@dataclass(frozen=True, slots=True)
class InvitationRefused(Event):
    """(To the inviter) ``invitee`` refused."""

    kind: ClassVar[EventKind] = EventKind.INVITATION_REFUSED
    invitation_id: str
    invitee: str
    extended_data: str


@dataclass(frozen=True, slots=True)
class InvitationTimeout(Event):
    """(To an invitee) the invitation timed out before this user answered."""

    kind: ClassVar[EventKind] = EventKind.INVITATION_TIMEOUT
    invitation_id: str
    inviter: str


@dataclass(frozen=True, slots=True)
class InvitationResponseTimeout(Event):
    """(To the inviter) ``invitees`` did not answer before the deadline."""

    kind: ClassVar[EventKind] = EventKind.INVITATION_RESPONSE_TIMEOUT
    invitation_id: str
    invitees: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InvitationUserStateChanged(Event):
    """(To every participant) ``user_id`` is now in ``state``."""

    kind: ClassVar[EventKind] = EventKind.INVITATION_USER_STATE_CHANGED
    invitation_id: str
    user_id: str
    state: InviteeState
    extended_data: str


@dataclass(frozen=True, slots=True)
class InvitationPushResult(Event):
    """(To the inviter) what happened to the push for one device of ``invitee``.

    One per device pushed (``SENT`` or ``FAILED`` with the provider's
    ``reason``), or one ``NO_TARGET`` (``device_id`` and ``provider`` None)
    when the invitee had no device online and none with a push target.
    """

    kind: ClassVar[EventKind] = EventKind.INVITATION_PUSH_RESULT
    invitation_id: str
    invitee: str
    device_id: str | None
    provider: PushProvider | None
    outcome: PushOutcome
    reason: str
