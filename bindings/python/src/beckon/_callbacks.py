"""From C callbacks to Python: trampolines, the pending-operation table, sinks.

How callbacks are kept alive
----------------------------
The C functions that ctypes calls back are a handful of module-level
``CFUNCTYPE`` objects (one per callback type), made once and never released:
the library may still be inside one when a client is freed, and a ctypes thunk
must outlive every call into it. What changes per call is the ``user_data``
handed to C: a small integer token. For an operation it is the key of a
:class:`PendingOperation` in a process-wide table, inserted *before* the C
call (the callback may run on the dispatcher thread before the call returns)
and removed by the callback's single run, or at once when the C call returns
an error (then the callback never runs). So whatever an operation holds (its
future, its event loop) is released exactly when its one callback has run,
and a long-lived process does not grow with the number of operations. For an
event handler the token names a client; the table holds the client's event
router weakly, so that an unreferenced client can still be collected.

Threads
-------
Trampolines run on the client's dispatcher thread (a pool thread shared with
other clients in pool mode, or the polling thread inside ``poll``), with the
GIL taken by ctypes. Every C call (``ctypes.CDLL``) releases the GIL, so a
callback that frees a client never holds up the callbacks that free waits
for on other threads. Trampolines never let an exception escape into C: a
failure to convert a result fails the operation with :class:`InternalError`
(so it still completes exactly once), and an exception raised by an
application handler is logged on the ``beckon`` logger.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from . import _native
from ._errors import InternalError, error_for
from ._types import (
    CancelResult,
    ConnectionReason,
    ConnectionState,
    ConnectionStateChanged,
    Event,
    EventKind,
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
    SendResult,
    TokenWillExpire,
)

if TYPE_CHECKING:
    from ctypes import _Pointer

log = logging.getLogger("beckon")

_T = TypeVar("_T")
_T_contra = TypeVar("_T_contra", contravariant=True)


def decode(raw: bytes | None) -> str:
    """Text from the library (always UTF-8; NULL reads as "")."""
    return raw.decode("utf-8", errors="replace") if raw else ""


def last_error_message() -> str:
    """``beckon_last_error_message()``, read right after the failing call on this thread."""
    return decode(_native.library().beckon_last_error_message())


def check(code: int) -> None:
    """Raises the exception of a non-zero code returned by a C call on this thread."""
    if code != 0:
        raise error_for(code, last_error_message())


# --------------------------------------------------------------------------
# Which client's callbacks this thread is running (to refuse self-deadlocks)
# --------------------------------------------------------------------------

_running = threading.local()


def _enter(client_token: int) -> None:
    stack: list[int] | None = getattr(_running, "stack", None)
    if stack is None:
        stack = _running.stack = []
    stack.append(client_token)


def _leave() -> None:
    _running.stack.pop()


def in_callback_of(client_token: int) -> bool:
    """Whether this thread is inside a callback or event handler of that client."""
    stack: list[int] | None = getattr(_running, "stack", None)
    return bool(stack) and client_token in stack  # type: ignore[operator]


# --------------------------------------------------------------------------
# Sinks: where an operation's outcome goes
# --------------------------------------------------------------------------


class Sink(Protocol[_T_contra]):
    """Receives an operation's outcome exactly once."""

    def resolve(self, value: _T_contra) -> None: ...

    def fail(self, error: BaseException) -> None: ...


class FutureSink(Generic[_T]):
    """Completes a ``concurrent.futures.Future`` on the dispatcher thread."""

    __slots__ = ("future",)

    def __init__(self, future: Any) -> None:
        self.future = future

    def resolve(self, value: _T) -> None:
        self.future.set_result(value)

    def fail(self, error: BaseException) -> None:
        self.future.set_exception(error)


def _settle(future: asyncio.Future[Any], value: object, error: BaseException | None) -> None:
    # Runs on the event loop's thread. A future the application cancelled (it
    # stopped awaiting) simply drops the outcome.
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class LoopSink(Generic[_T]):
    """Completes an ``asyncio.Future`` by hopping to its loop with ``call_soon_threadsafe``."""

    __slots__ = ("loop", "future")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[_T]) -> None:
        self.loop = loop
        self.future = future

    def _hop(self, value: object, error: BaseException | None) -> None:
        try:
            self.loop.call_soon_threadsafe(_settle, self.future, value, error)
        except RuntimeError:
            # The loop is closed: nobody can await the outcome any more.
            log.debug("beckon: an outcome arrived after its event loop closed; dropped")

    def resolve(self, value: _T) -> None:
        self._hop(value, None)

    def fail(self, error: BaseException) -> None:
        self._hop(None, error)


# --------------------------------------------------------------------------
# The table of operations in flight
# --------------------------------------------------------------------------


class PendingOperation:
    """What an accepted operation needs until its single callback: its sink."""

    __slots__ = ("client_token", "sink")

    def __init__(self, client_token: int, sink: Sink[Any]) -> None:
        self.client_token = client_token
        self.sink = sink


_tokens = itertools.count(1)
_operations: dict[int, PendingOperation] = {}
_operations_lock = threading.Lock()


def new_token() -> int:
    """A fresh, never reused ``user_data`` value (never 0, which C hands back as NULL)."""
    return next(_tokens)


def register(token: int, operation: PendingOperation) -> None:
    with _operations_lock:
        _operations[token] = operation


def discard(token: int) -> None:
    """Forgets an operation whose C call failed (its callback will never run)."""
    with _operations_lock:
        _operations.pop(token, None)


def _take(token: int | None) -> PendingOperation | None:
    with _operations_lock:
        return _operations.pop(token or 0, None)


def pending_count() -> int:
    """How many operations wait for their callback, over every client of the process."""
    with _operations_lock:
        return len(_operations)


def _finish(
    user_data: int | None, error: int, message: bytes | None, value: Callable[[], object]
) -> None:
    operation = _take(user_data)
    if operation is None:
        # A second call for one token would break the C ABI's promise.
        log.error("beckon: a callback arrived for an unknown operation (token %r)", user_data)
        return
    _enter(operation.client_token)
    try:
        if error != 0:
            outcome_error: BaseException = error_for(error, decode(message))
        else:
            try:
                outcome = value()
            except Exception as bug:  # noqa: BLE001 - must still complete once
                log.exception("beckon: could not convert an operation's result")
                outcome_error = InternalError(f"the Python binding failed to read a result: {bug}")
            else:
                operation.sink.resolve(outcome)
                return
        operation.sink.fail(outcome_error)
    except BaseException:  # noqa: BLE001 - nothing may unwind into C
        log.exception("beckon: completing an operation failed")
    finally:
        _leave()


def statuses(array: _Pointer[_native.InviteeState] | None, count: int) -> tuple[InviteeStatus, ...]:
    """Copies a C ``beckon_invitee`` array."""
    if not array or count == 0:
        return ()
    return tuple(
        InviteeStatus(decode(array[i].user_id), InviteeState.of(array[i].state))
        for i in range(count)
    )


def _on_result(user_data: int | None, result: _Pointer[_native.Result]) -> None:
    r = result.contents
    _finish(user_data, r.error, r.error_message, lambda: None)


def _on_send(user_data: int | None, result: _Pointer[_native.SendResult]) -> None:
    r = result.contents
    _finish(
        user_data,
        r.error,
        r.error_message,
        lambda: SendResult(
            decode(r.invitation_id), statuses(r.error_invitees, r.error_invitee_count)
        ),
    )


def _on_cancel(user_data: int | None, result: _Pointer[_native.CancelResult]) -> None:
    r = result.contents
    _finish(
        user_data,
        r.error,
        r.error_message,
        lambda: CancelResult(statuses(r.error_invitees, r.error_invitee_count)),
    )


def page(r: _native.InvitationPageResult) -> InvitationPage:
    """Copies a C ``beckon_invitation_page_result`` (valid only during its callback)."""
    array = r.invitations
    summaries: list[InvitationSummary] = []
    if array:
        for i in range(r.invitation_count):
            s = array[i]
            summaries.append(
                InvitationSummary(
                    decode(s.invitation_id),
                    decode(s.inviter),
                    statuses(s.invitees, s.invitee_count),
                    int(s.created_ms),
                    int(s.ended_ms),
                    s.sent_by_server != 0,
                )
            )
    return InvitationPage(tuple(summaries), decode(r.next_cursor) or None)


def _on_page(user_data: int | None, result: _Pointer[_native.InvitationPageResult]) -> None:
    r = result.contents
    # The conversion runs inside _finish, before this returns: the C memory is
    # still valid.
    _finish(user_data, r.error, r.error_message, lambda: page(r))


# The C function pointers handed to the library: made once, never released.
RESULT_CALLBACK = _native.ResultCallback(_on_result)
SEND_CALLBACK = _native.SendCallback(_on_send)
CANCEL_CALLBACK = _native.CancelCallback(_on_cancel)
PAGE_CALLBACK = _native.InvitationPageCallback(_on_page)


# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------


class EventRouter(Protocol):
    """The receiving end of a client's events (held weakly by the table below)."""

    def deliver(self, event: Event) -> None: ...


_routers: dict[int, weakref.ReferenceType[EventRouter]] = {}
_routers_lock = threading.Lock()


def register_router(token: int, router: EventRouter) -> None:
    with _routers_lock:
        _routers[token] = weakref.ref(router)


def unregister_router(token: int) -> None:
    with _routers_lock:
        _routers.pop(token, None)


def router_count() -> int:
    with _routers_lock:
        return len(_routers)


def convert_event(e: _native.Event) -> Event | None:
    """Copies a C ``beckon_event`` into its Python class (None for an unknown kind)."""
    kind = e.kind
    if kind == EventKind.CONNECTION_STATE_CHANGED:
        return ConnectionStateChanged(
            ConnectionState.of(e.connection_state), ConnectionReason.of(e.connection_reason)
        )
    if kind == EventKind.TOKEN_WILL_EXPIRE:
        return TokenWillExpire(int(e.seconds_left))
    if kind == EventKind.INVITATION_RECEIVED:
        note = None
        if e.notification:
            n = e.notification.contents
            note = Notification(
                decode(n.title), decode(n.message), decode(n.resource_id), decode(n.payload)
            )
        return InvitationReceived(
            decode(e.invitation_id),
            decode(e.inviter),
            statuses(e.invitees, e.invitee_count),
            decode(e.extended_data),
            note,
            int(e.seconds_left),
        )
    if kind == EventKind.INVITATION_CANCELLED:
        return InvitationCancelled(
            decode(e.invitation_id), decode(e.inviter), decode(e.extended_data)
        )
    if kind == EventKind.INVITATION_ACCEPTED:
        return InvitationAccepted(
            decode(e.invitation_id), decode(e.user_id), decode(e.extended_data)
        )
    if kind == EventKind.INVITATION_REFUSED:
        return InvitationRefused(
            decode(e.invitation_id), decode(e.user_id), decode(e.extended_data)
        )
    if kind == EventKind.INVITATION_TIMEOUT:
        return InvitationTimeout(decode(e.invitation_id), decode(e.inviter))
    if kind == EventKind.INVITATION_RESPONSE_TIMEOUT:
        timed_out = statuses(e.invitees, e.invitee_count)
        return InvitationResponseTimeout(
            decode(e.invitation_id), tuple(s.user_id for s in timed_out)
        )
    if kind == EventKind.INVITATION_USER_STATE_CHANGED:
        return InvitationUserStateChanged(
            decode(e.invitation_id),
            decode(e.user_id),
            InviteeState.of(e.state),
            decode(e.extended_data),
        )
    if kind == EventKind.INVITATION_PUSH_RESULT:
        device = decode(e.device_id)
        return InvitationPushResult(
            decode(e.invitation_id),
            decode(e.user_id),
            device or None,
            PushProvider.of(e.push_provider) if e.push_provider else None,
            PushOutcome.of(e.push_outcome),
            decode(e.push_reason),
        )
    return None


def _on_event(user_data: int | None, event: _Pointer[_native.Event]) -> None:
    token = user_data or 0
    try:
        with _routers_lock:
            ref = _routers.get(token)
        router = ref() if ref is not None else None
        if router is None:
            return
        converted = convert_event(event.contents)
        if converted is None:
            log.warning("beckon: dropped an event of unknown kind %d", event.contents.kind)
            return
        _enter(token)
        try:
            router.deliver(converted)
        finally:
            _leave()
    except BaseException:  # noqa: BLE001 - nothing may unwind into C
        log.exception("beckon: delivering an event failed")


EVENT_CALLBACK = _native.EventCallback(_on_event)


# --------------------------------------------------------------------------
# The process-wide log handler
# --------------------------------------------------------------------------

LogHandler = Callable[[LogLevel, str, str, str], None]

# Each installed handler is the table entry under the user_data token handed to
# the library with the one LOG_CALLBACK trampoline (made once, never
# released). Every record comes back with the token of the installation it
# was made for, so a record never reaches another handler than its own; an
# entry is dropped once beckon_set_log_config has replaced it (the library
# never calls it again after that), which releases the application's callable.
_log_lock = threading.Lock()  # guards what follows; never held across a C call
_log_handlers: dict[int, LogHandler] = {}
_log_installed = 0  # the token the library holds now (0: none)
_log_deferred: tuple[LogHandler | None, LogLevel, LogDelivery] | None = None
# Held across beckon_set_log_config, so that _log_installed follows the
# library's order of installation.
_log_replacing = threading.Lock()
# Per thread: how deeply it is inside a log handler call, and whether it is
# reporting a log handler's exception.
_log_thread = threading.local()


def in_log_handler() -> bool:
    """Whether this thread is running the log handler (on the library's log thread)."""
    return getattr(_log_thread, "depth", 0) > 0


def _on_log(
    user_data: int | None,
    level: int,
    tag: bytes | None,
    sub_tag: bytes | None,
    message: bytes | None,
) -> None:
    try:
        with _log_lock:
            handler = _log_handlers.get(user_data or 0)
        if handler is None:
            return
        level_enum = (
            LogLevel(level) if LogLevel.ERROR <= level <= LogLevel.TRACE else LogLevel.TRACE
        )
        _log_thread.depth = getattr(_log_thread, "depth", 0) + 1
        try:
            handler(level_enum, decode(tag), decode(sub_tag), decode(message))
        finally:
            _log_thread.depth -= 1
    except BaseException:  # noqa: BLE001 - nothing may unwind into C
        # Reported as other callback errors are, unless this very report got
        # back here (a logging handler that calls beckon, directly delivered).
        if getattr(_log_thread, "reporting", False):
            return
        _log_thread.reporting = True
        try:
            log.exception("beckon: the log handler raised")
        except BaseException:  # noqa: BLE001
            pass
        finally:
            _log_thread.reporting = False


LOG_CALLBACK = _native.LogCallback(_on_log)


def has_log_handler() -> bool:
    """Whether a Python log handler is installed."""
    with _log_lock:
        return _log_installed != 0


def log_handler_count() -> int:
    """How many handlers the table holds (the installed one, or none, between calls)."""
    with _log_lock:
        return len(_log_handlers)


def _install(handler: LogHandler | None, max_level: LogLevel, delivery: LogDelivery) -> None:
    """One ``beckon_set_log_config`` (``_log_replacing`` held) and its bookkeeping."""
    global _log_installed
    lib = _native.library()
    token = 0
    if handler is not None and max_level != LogLevel.OFF:
        token = new_token()
        with _log_lock:
            # Before the call: the library may log through it at once.
            _log_handlers[token] = handler
    config = _native.LogConfig(
        struct_size=ctypes.sizeof(_native.LogConfig),
        max_level=int(max_level) if token else int(LogLevel.OFF),
        delivery=int(delivery),
        reserved=0,
        handler=LOG_CALLBACK if token else _native.LogCallback(),  # NULL: stop logging
        user_data=token or None,
    )
    # The GIL is released during the call (ctypes.CDLL): it returns once the
    # handler it replaces is not running, which may need the GIL to finish.
    code = lib.beckon_set_log_config(ctypes.byref(config))
    message = last_error_message() if code != 0 else ""
    with _log_lock:
        if code != 0:
            _log_handlers.pop(token, None)
        else:
            # The replaced handler will never be called again: release it.
            replaced, _log_installed = _log_installed, token
            _log_handlers.pop(replaced, None)
    if code != 0:
        raise error_for(code, message)


def set_log_handler(
    handler: LogHandler | None, max_level: LogLevel, delivery: LogDelivery
) -> None:
    """Installs (or with None removes) the process-wide log handler.

    Returns once the handler it replaces is not running and will not be called
    again. Called from inside the log handler while another thread is
    replacing it (that thread's C call may be waiting for this very handler
    call to return), the request is handed to that thread, which makes it
    right after its own, and this returns at once.
    """
    global _log_deferred
    with _log_lock:
        acquired = _log_replacing.acquire(blocking=False)
        if not acquired and in_log_handler():
            _log_deferred = (handler, max_level, delivery)
            return
    if not acquired:
        _log_replacing.acquire()
    error: BaseException | None = None
    try:
        _install(handler, max_level, delivery)
    except BaseException as failure:  # noqa: BLE001 - raised below, after the deferred ones
        error = failure
    while True:
        with _log_lock:
            deferred, _log_deferred = _log_deferred, None
            if deferred is None:
                _log_replacing.release()
                break
        try:
            _install(*deferred)
        except BaseException:  # noqa: BLE001 - its caller has returned already
            log.exception("beckon: installing a log handler set from inside the log handler failed")
    if error is not None:
        raise error
