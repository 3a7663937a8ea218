"""The client: one device of one user, over ``beckon_client``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Generic, TypeVar

from . import _callbacks, _checks, _native
from ._callbacks import FutureSink, LoopSink, PendingOperation, Sink, log
from ._errors import (
    ArgumentTypeError,
    BeckonError,
    InternalError,
    InvalidArgumentError,
    ShutdownError,
    error_for,
)
from ._types import (
    CancelResult,
    ClientInfo,
    ConnectionState,
    DispatchMode,
    ErrorCode,
    Event,
    EventKind,
    HistoryRole,
    InvitationPage,
    Notification,
    PushTarget,
    SendResult,
)

_T = TypeVar("_T")

#: A function that receives events on the client's dispatcher thread.
EventHandler = Callable[[Event], None]

# One C poll call waits at most this long, so that close() from another
# thread never waits long for a poller to let go of the client.
_POLL_SLICE_MS = 100
_MAX_POLL_MS = 3_600_000


class OperationFuture(concurrent.futures.Future[_T]):
    """The outcome of one operation, completed exactly once by the library.

    A ``concurrent.futures.Future`` that is already running: it cannot be
    cancelled (the operation is under way at the hub). It completes on the
    client's dispatcher thread (or inside :meth:`Client.poll`), so callbacks
    added with ``add_done_callback`` run there too.

    Waiting for it (``result()``, ``exception()``) from inside one of the same
    client's callbacks or event handlers would wait forever, because its own
    callback runs after the current one: that raises ``RuntimeError`` instead.
    """

    def __init__(self, client_token: int) -> None:
        super().__init__()
        self._beckon_client = client_token
        self.set_running_or_notify_cancel()

    def _refuse_self_wait(self) -> None:
        if not self.done() and _callbacks.in_callback_of(self._beckon_client):
            raise RuntimeError(
                "waiting for a beckon operation inside a callback of the same client would "
                "deadlock: its result is delivered after the current callback returns "
                "(use add_done_callback, or the *_async methods)"
            )

    def result(self, timeout: float | None = None) -> _T:
        """The operation's result, raising its :class:`~beckon.BeckonError` on failure."""
        self._refuse_self_wait()
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The operation's error, or None if it succeeded."""
        self._refuse_self_wait()
        return super().exception(timeout)


class _Call(Generic[_T]):
    """A checked operation, ready to start: ``start(client_ptr, user_data) -> code``."""

    __slots__ = ("start",)

    def __init__(self, start: Callable[[int, int], int]) -> None:
        self.start = start


class _Handle:
    """The ``beckon_client *`` with the bookkeeping that makes closing safe.

    Each C call that takes the pointer runs inside :meth:`use`. :meth:`close`
    marks the handle closed, waits until no *other* thread is inside a call
    (calls are short: the memory transport never blocks on a callback), then
    frees. The closing thread's own calls are not waited for: the C ABI allows
    a callback, running inside ``beckon_client_poll``, to free its client.

    A free the library refuses with WOULD_DEADLOCK (from another client's
    callback, while a callback of this client is freeing that other client)
    did nothing: the pointer is put back and the handle is open again.
    """

    __slots__ = ("_ptr", "_users", "_changed", "_closing", "_freed", "__weakref__")

    def __init__(self, ptr: int) -> None:
        self._ptr: int | None = ptr
        self._users: dict[int, int] = {}
        self._changed = threading.Condition(threading.Lock())
        self._closing = False  # a thread is inside beckon_client_free
        self._freed = False

    @property
    def closed(self) -> bool:
        """Closed, or being freed (C calls are refused)."""
        return self._ptr is None

    @property
    def freed(self) -> bool:
        """``beckon_client_free`` has returned (other than WOULD_DEADLOCK)."""
        return self._freed

    @contextmanager
    def use(self) -> Iterator[int]:
        me = threading.get_ident()
        with self._changed:
            ptr = self._ptr
            if ptr is None:
                raise ShutdownError("client: is closed")
            self._users[me] = self._users.get(me, 0) + 1
        try:
            yield ptr
        finally:
            with self._changed:
                left = self._users[me] - 1
                if left:
                    self._users[me] = left
                else:
                    del self._users[me]
                self._changed.notify_all()

    def close(self, wait: bool = True) -> bool:
        """Frees the client once; False if it was already closed.

        A second caller waits (if ``wait``) until the first one's free is over,
        so that "no callback runs after close() returns" holds for both; the
        caller passes ``wait=False`` from inside one of the client's callbacks,
        where waiting for the free would wait for itself. If the first free is
        refused (WOULD_DEADLOCK), a waiting caller tries the free itself.

        Raises :class:`WouldDeadlockError` (the handle is open again) or, for
        any other error of the free, that error (the handle stays closed).
        """
        me = threading.get_ident()
        with self._changed:
            while self._closing:
                if not wait:
                    return False
                self._changed.wait()
            ptr = self._ptr
            if ptr is None:
                return False
            self._ptr = None
            self._closing = True
            self._changed.wait_for(lambda: all(t == me for t in self._users))
        code = 0
        message = ""
        try:
            # Outside the lock: pending callbacks run (with SHUTDOWN) during the
            # free, and they may call into this client (and see it closed).
            lib = _native.library()
            code = lib.beckon_client_free(ptr)
            if code != 0:
                message = _callbacks.last_error_message()
        finally:
            with self._changed:
                self._closing = False
                if code == ErrorCode.WOULD_DEADLOCK:
                    self._ptr = ptr  # nothing was done: still live
                else:
                    self._freed = True
                self._changed.notify_all()
        if code != 0:
            raise error_for(code, message)
        return True


def _close_unreferenced(handle: _Handle, token: int) -> None:
    # weakref.finalize callback: the Client was collected (or the interpreter
    # exits) without close(). It must not refer to the Client itself, nor raise.
    try:
        if handle.close(wait=not _callbacks.in_callback_of(token)):
            log.debug("beckon: closed a client that was not closed explicitly")
    except BeckonError as error:
        # WOULD_DEADLOCK: collected inside another client's callback that is
        # being freed by one of this client's; nobody can free it later.
        log.error("beckon: a client that was not closed explicitly could not be closed: %s", error)
    _callbacks.unregister_router(token)


class _Router:
    """Fans a client's events out to its handlers and async streams."""

    __slots__ = ("_lock", "_handlers", "_streams", "_ended", "__weakref__")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: list[EventHandler] = []
        self._streams: weakref.WeakSet[EventStream] = weakref.WeakSet()
        self._ended = False

    def add_handler(self, handler: EventHandler) -> None:
        with self._lock:
            self._handlers.append(handler)

    def remove_handler(self, handler: EventHandler) -> bool:
        with self._lock:
            try:
                self._handlers.remove(handler)
            except ValueError:
                return False
            return True

    def add_stream(self, stream: EventStream) -> None:
        with self._lock:
            if not self._ended:
                self._streams.add(stream)
                return
        stream._finish()  # the client closed meanwhile: an empty stream

    def remove_stream(self, stream: EventStream) -> None:
        with self._lock:
            self._streams.discard(stream)

    def deliver(self, event: Event) -> None:
        with self._lock:
            handlers = list(self._handlers)
            streams = list(self._streams)
        for handler in handlers:
            try:
                handler(event)
            except Exception:  # noqa: BLE001 - one handler must not stop the others
                log.exception("beckon: an event handler raised on %r", event)
        for stream in streams:
            stream._push(event)

    def end(self) -> None:
        with self._lock:
            self._ended = True
            streams = list(self._streams)
            self._streams = weakref.WeakSet()
        for stream in streams:
            stream._finish()


_END: Any = object()


class EventStream:
    """An asynchronous iterator over a client's events (see :meth:`Client.events`).

    Events are queued on the event loop that created the stream, hopping from
    the library's dispatcher thread with ``loop.call_soon_threadsafe``. The
    queue has no bound, like the library's own: keep reading, or close the
    stream. Iteration ends when the stream is closed (at once), or when its
    client is closed (after the events that came before the close).
    """

    def __init__(
        self,
        router: _Router,
        loop: asyncio.AbstractEventLoop,
        kinds: frozenset[EventKind] | None,
    ) -> None:
        self._router = router
        self._loop = loop
        self._kinds = kinds
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._ended = False
        router.add_stream(self)

    # Called on the dispatcher thread.
    def _push(self, event: Event) -> None:
        if self._kinds is not None and event.kind not in self._kinds:
            return
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)
        except RuntimeError:
            # The loop is closed: nobody will read this stream again.
            self._router.remove_stream(self)

    # Called by Client.close, on any thread.
    def _finish(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, _END)
        except RuntimeError:
            pass

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        if self._ended:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is _END:
            self._ended = True
            raise StopAsyncIteration
        return event

    async def get(self, timeout: float | None = None) -> Event:
        """The next event.

        Raises ``TimeoutError`` after ``timeout`` seconds, ``StopAsyncIteration``
        once the stream has ended.
        """
        return await asyncio.wait_for(self.__anext__(), timeout)

    def close(self) -> None:
        """Stops receiving events; iteration ends at once (queued events are dropped)."""
        self._router.remove_stream(self)
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(_END)  # wakes a reader waiting in another task

    async def aclose(self) -> None:
        """As :meth:`close` (for ``contextlib.aclosing`` and friends)."""
        self.close()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.close()


class Client:
    """One device of one user, connected to a Beckon hub.

    Configuration is by keyword::

        with beckon.Client("memory://app", device_id="phone-1") as client:
            client.login("alice").result(timeout=5)
            sent = client.send_invitation(["bob"], timeout=30).result(timeout=5)

    Every operation returns an :class:`OperationFuture` (the ``*_async``
    variants are coroutines) that completes exactly once: with the result,
    with the operation's :class:`~beckon.BeckonError`, or with
    :class:`~beckon.ShutdownError` if the client is closed first. Input errors
    that can be judged at once, and ``NotLoggedInError``, are raised by the
    call itself, and then nothing is started.

    Callbacks, done-callbacks of the futures and event handlers run one at a
    time, in order, on a thread the client owns (``DispatchMode.THREAD``), on
    one of a few library threads shared by every pool-mode client of the
    process (``DispatchMode.POOL``, for processes with many clients), or only
    inside :meth:`poll` (``DispatchMode.POLL``). Every method may be called
    from any thread, including from those callbacks.

    Closing (``close()``, leaving the ``with`` block, or the client being
    garbage collected) logs out, completes every pending operation with
    ``ShutdownError`` and ends the event streams; when it returns, none of the
    client's callbacks is running or will run.

    Args:
        server_url: ``memory://NAME`` for the in-process hub NAME, or
            ``ws://HOST:PORT`` / ``wss://HOST:PORT`` for a Beckon server.
        device_id: this device's id (user-id rules); None for a random one.
        dispatch: where callbacks run (see above).
        request_timeout: seconds a request may wait for the server (default 10).
        on_event: an event handler to add at once (see :meth:`add_event_handler`).
    """

    def __init__(
        self,
        server_url: str,
        *,
        device_id: str | None = None,
        dispatch: DispatchMode = DispatchMode.THREAD,
        request_timeout: float | None = None,
        on_event: EventHandler | None = None,
    ) -> None:
        url = _checks.nonempty_text(server_url, "server_url")
        device = None if device_id is None else _checks.user_id(device_id, "device_id")
        if not isinstance(dispatch, DispatchMode):
            if isinstance(dispatch, bool) or not isinstance(dispatch, int):
                raise ArgumentTypeError(
                    f"dispatch: expected beckon.DispatchMode, got {type(dispatch).__name__}"
                )
            # An unknown int is the library's to refuse (INVALID_ARGUMENT).
        timeout_ms = (
            0
            if request_timeout is None
            else _checks.milliseconds(
                request_timeout, "request_timeout", low_ms=1, high_ms=_checks.U32_MAX
            )
        )
        if on_event is not None and not callable(on_event):
            raise ArgumentTypeError(f"on_event: expected a callable, got {type(on_event).__name__}")

        lib = _native.library()
        config = _native.ClientConfig(
            struct_size=ctypes.sizeof(_native.ClientConfig),
            server_url=url,
            device_id=device,
            dispatch_mode=int(dispatch),
            request_timeout_ms=timeout_ms,
        )
        out = ctypes.c_void_p()
        _callbacks.check(lib.beckon_client_new(ctypes.byref(config), ctypes.byref(out)))
        if not out.value:
            raise InternalError("beckon_client_new: returned OK without a client")

        self._server_url = server_url
        self._device_id = device_id or ""  # the library's, read below
        self._dispatch = DispatchMode(dispatch)
        self._token = _callbacks.new_token()
        self._handle = _Handle(out.value)
        self._router = _Router()
        if on_event is not None:
            self._router.add_handler(on_event)
        # Before the handler is set, so that no event can miss its router.
        _callbacks.register_router(self._token, self._router)
        self._finalizer = weakref.finalize(self, _close_unreferenced, self._handle, self._token)
        try:
            with self._handle.use() as ptr:
                _callbacks.check(
                    lib.beckon_client_set_event_handler(ptr, _callbacks.EVENT_CALLBACK, self._token)
                )
            # Fixed for the client's life: kept, so it is known after close().
            self._device_id = self.info().device_id
        except BaseException:
            self._finalizer()
            raise

    # ------------------------------------------------------------------
    # Properties and lifetime
    # ------------------------------------------------------------------

    @property
    def server_url(self) -> str:
        """The URL this client was created with."""
        return self._server_url

    @property
    def device_id(self) -> str:
        """This client's device id: the one given at creation, or the random one the library made.

        A random id is new for every client: an app that should stay the same
        device across restarts passes its own ``device_id`` and keeps it.
        Readable after :meth:`close` too.
        """
        return self._device_id

    @property
    def user_id(self) -> str | None:
        """The logged-in user, or None (see :meth:`info`).

        Raises :class:`~beckon.ShutdownError` once the client is closed.
        """
        return self.info().user_id

    @property
    def connection_state(self) -> ConnectionState:
        """The state of the last ``ConnectionStateChanged`` dispatched (see :meth:`info`).

        Raises :class:`~beckon.ShutdownError` once the client is closed.
        """
        return self.info().connection_state

    def info(self) -> ClientInfo:
        """The client's connection state, logged-in user and device id, read together now.

        ``connection_state`` is the state of the last
        :class:`~beckon.ConnectionStateChanged` this client dispatched
        (``DISCONNECTED`` before any), i.e. what its handlers have been told;
        ``user_id`` is None unless a login has succeeded and no logout (or end
        of session) has happened since. Callable from any thread, callbacks
        included. Raises :class:`~beckon.ShutdownError` once the client is closed.
        """
        lib = _native.library()
        raw = _native.ClientInfo(struct_size=ctypes.sizeof(_native.ClientInfo))
        with self._handle.use() as ptr:
            _callbacks.check(lib.beckon_client_get_info(ptr, ctypes.byref(raw)))
        user = _callbacks.decode(raw.user_id)
        return ClientInfo(
            connection_state=ConnectionState.of(raw.connection_state),
            user_id=user or None,
            device_id=_callbacks.decode(raw.device_id),
        )

    @property
    def dispatch(self) -> DispatchMode:
        """Where this client's callbacks run."""
        return self._dispatch

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._handle.closed

    def close(self) -> None:
        """Logs out and frees the client; idempotent.

        Every operation still pending completes with :class:`~beckon.ShutdownError`
        (even one the hub already carried out: its outcome is not delivered),
        queued events are dropped and the event streams end. When this returns,
        none of this client's callbacks is running or will run, unless it was
        called from inside one of them: then the current callback finishes after
        it, as in the C ABI.

        Raises :class:`~beckon.WouldDeadlockError` when called from another
        client's callback while a callback of this client is itself closing
        that other client (each close would wait for the other): then nothing
        was done and this client stays open and usable; close it later,
        outside the callbacks. (A call made on another thread at the very
        moment of that refused close may fail with ``ShutdownError``.)
        """
        try:
            self._handle.close(wait=not _callbacks.in_callback_of(self._token))
        finally:
            # Unless the free was refused (WOULD_DEADLOCK: still open) or is
            # still under way on another thread (which finishes this then).
            if self._handle.freed:
                self._finalizer.detach()
                _callbacks.unregister_router(self._token)
                self._router.end()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else self._dispatch.name.lower()
        return f"<beckon.Client {self._server_url!r} {state}>"

    # ------------------------------------------------------------------
    # Events
    # ------------------------------------------------------------------

    def add_event_handler(self, handler: EventHandler) -> EventHandler:
        """Adds a function called with every event, on the dispatcher thread.

        Handlers run in the order they were added, one event at a time, in
        order with the operations' callbacks. An exception from a handler is
        logged on the ``beckon`` logger and does not stop the others. Returns
        ``handler``, so this works as a decorator.
        """
        if not callable(handler):
            raise ArgumentTypeError(f"handler: expected a callable, got {type(handler).__name__}")
        self._router.add_handler(handler)
        return handler

    def remove_event_handler(self, handler: EventHandler) -> bool:
        """Removes a handler added before; False if it was not there."""
        return self._router.remove_handler(handler)

    def events(self, *kinds: EventKind | type[Event]) -> EventStream:
        """An async iterator over this client's events from now on::

            async for event in client.events():
                match event:
                    case beckon.InvitationReceived(invitation_id=id):
                        await client.accept_invitation_async(id)

        Must be called with an event loop running (events are queued on it).
        ``kinds`` (:class:`EventKind` values or event classes) keeps only those.
        """
        wanted: set[EventKind] = set()
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, Event) and kind is not Event:
                wanted.add(kind.kind)
            elif isinstance(kind, EventKind):
                wanted.add(kind)
            else:
                raise ArgumentTypeError(
                    f"kinds: expected beckon.EventKind or an event class, got {kind!r}"
                )
        loop = asyncio.get_running_loop()
        if self.closed:
            raise ShutdownError("client: is closed")
        return EventStream(self._router, loop, frozenset(wanted) if wanted else None)

    # ------------------------------------------------------------------
    # Running operations
    # ------------------------------------------------------------------

    def _start(self, call: _Call[Any], sink: Sink[Any]) -> None:
        token = _callbacks.new_token()
        # Registered before the call: the callback may run before it returns.
        _callbacks.register(token, PendingOperation(self._token, sink))
        try:
            with self._handle.use() as ptr:
                code = call.start(ptr, token)
                message = _callbacks.last_error_message() if code else ""
        except BaseException:
            _callbacks.discard(token)
            raise
        if code != 0:
            # The library will never call back: nothing of this call stays.
            _callbacks.discard(token)
            raise error_for(code, message)

    def _future(self, call: _Call[_T]) -> OperationFuture[_T]:
        future: OperationFuture[_T] = OperationFuture(self._token)
        self._start(call, FutureSink[_T](future))
        return future

    async def _await(self, call: _Call[_T]) -> _T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._start(call, LoopSink(loop, future))
        return await future

    # ------------------------------------------------------------------
    # Checked calls (shared by the future and async variants)
    # ------------------------------------------------------------------

    def _login(self, user_id: str, token: str | None) -> _Call[None]:
        user = _checks.user_id(user_id, "user_id")
        secret = _checks.optional_text(token, "token")
        if secret is not None and len(secret) > _checks.MAX_TOKEN:
            raise InvalidArgumentError(f"token: longer than {_checks.MAX_TOKEN} bytes")
        lib = _native.library()
        return _Call(
            lambda ptr, ud: lib.beckon_client_login(
                ptr, user, secret, _callbacks.RESULT_CALLBACK, ud
            )
        )

    def _logout(self) -> _Call[None]:
        lib = _native.library()
        return _Call(lambda ptr, ud: lib.beckon_client_logout(ptr, _callbacks.RESULT_CALLBACK, ud))

    def _renew_token(self, token: str) -> _Call[None]:
        secret = _checks.nonempty_text(token, "token")
        if len(secret) > _checks.MAX_TOKEN:
            raise InvalidArgumentError(f"token: longer than {_checks.MAX_TOKEN} bytes")
        lib = _native.library()
        return _Call(
            lambda ptr, ud: lib.beckon_client_renew_token(
                ptr, secret, _callbacks.RESULT_CALLBACK, ud
            )
        )

    def _send_invitation(
        self,
        invitees: Iterable[str],
        timeout: int,
        extended_data: str,
        notification: Notification | None,
        online_only: bool,
        request_timeout_ms: int | None,
    ) -> _Call[SendResult]:
        names = _checks.user_ids(invitees, "invitees")
        seconds = _checks.integer(
            timeout, "timeout", _checks.MIN_TIMEOUT_SECONDS, _checks.MAX_TIMEOUT_SECONDS
        )
        data = _checks.text(extended_data, "extended_data", limit=_checks.MAX_EXTENDED_DATA)
        note = None if notification is None else _checks.notification(notification)
        flags = _native.INVITATION_ONLINE_ONLY if _checks.boolean(online_only, "online_only") else 0
        within_ms = _checks.request_timeout_ms(request_timeout_ms)
        lib = _native.library()

        def start(ptr: int, ud: int) -> int:
            # Every buffer below lives until this function returns, after the
            # C call, which copies them all.
            array = (ctypes.c_char_p * len(names))(*names)
            note_struct = None
            if note is not None:
                note_struct = _native.NotificationConfig(
                    ctypes.sizeof(_native.NotificationConfig), *note
                )
            config = _native.InvitationConfig(
                struct_size=ctypes.sizeof(_native.InvitationConfig),
                timeout_seconds=seconds,
                extended_data=data,
                notification=ctypes.pointer(note_struct) if note_struct is not None else None,
                flags=flags,
                request_timeout_ms=within_ms,
            )
            code: int = lib.beckon_send_invitation(
                ptr, array, len(names), ctypes.byref(config), _callbacks.SEND_CALLBACK, ud
            )
            return code

        return _Call(start)

    def _cancel_invitation(
        self,
        invitation_id: str,
        invitees: Iterable[str] | None,
        extended_data: str,
        request_timeout_ms: int | None,
    ) -> _Call[CancelResult]:
        id_bytes = _checks.invitation_id(invitation_id)
        names = None if invitees is None else _checks.user_ids(invitees, "invitees")
        data = _checks.text(extended_data, "extended_data", limit=_checks.MAX_EXTENDED_DATA)
        within_ms = _checks.request_timeout_ms(request_timeout_ms)
        lib = _native.library()

        def start(ptr: int, ud: int) -> int:
            # The array and the config live until this function returns, after
            # the C call, which copies them.
            array = None if names is None else (ctypes.c_char_p * len(names))(*names)
            config = _native.CancelConfig(
                struct_size=ctypes.sizeof(_native.CancelConfig),
                request_timeout_ms=within_ms,
                invitees=array,  # NULL (with a count of 0): every invitee
                invitee_count=0 if names is None else len(names),
                extended_data=data,
            )
            code: int = lib.beckon_cancel_invitation_ex(
                ptr, id_bytes, ctypes.byref(config), _callbacks.CANCEL_CALLBACK, ud
            )
            return code

        return _Call(start)

    def _answer(
        self,
        accept: bool,
        invitation_id: str,
        extended_data: str,
        request_timeout_ms: int | None,
    ) -> _Call[None]:
        id_bytes = _checks.invitation_id(invitation_id)
        data = _checks.text(extended_data, "extended_data", limit=_checks.MAX_EXTENDED_DATA)
        within_ms = _checks.request_timeout_ms(request_timeout_ms)
        lib = _native.library()
        function = lib.beckon_accept_invitation_ex if accept else lib.beckon_refuse_invitation_ex

        def start(ptr: int, ud: int) -> int:
            config = _native.AnswerConfig(
                struct_size=ctypes.sizeof(_native.AnswerConfig),
                request_timeout_ms=within_ms,
                extended_data=data,
            )
            code: int = function(
                ptr, id_bytes, ctypes.byref(config), _callbacks.RESULT_CALLBACK, ud
            )
            return code

        return _Call(start)

    def _set_push_target(self, target: PushTarget) -> _Call[None]:
        provider, token, topic, environment, alert_token = _checks.push_target(target)
        lib = _native.library()

        def start(ptr: int, ud: int) -> int:
            c_target = _native.PushTarget(
                struct_size=ctypes.sizeof(_native.PushTarget),
                provider=provider,
                token=token,
                topic=topic,
                environment=environment,
                alert_token=alert_token,
            )
            code: int = lib.beckon_client_set_push_target(
                ptr, ctypes.byref(c_target), _callbacks.RESULT_CALLBACK, ud
            )
            return code

        return _Call(start)

    def _clear_push_target(self) -> _Call[None]:
        lib = _native.library()
        return _Call(
            lambda ptr, ud: lib.beckon_client_clear_push_target(
                ptr, _callbacks.RESULT_CALLBACK, ud
            )
        )

    def _query_invitations(
        self,
        role: HistoryRole,
        since_ms: int,
        until_ms: int,
        limit: int,
        cursor: str | None,
    ) -> _Call[InvitationPage]:
        fields = _checks.history_query(role, since_ms, until_ms, limit, cursor)
        role_value, since, until, page_size, cursor_bytes = fields
        lib = _native.library()

        def start(ptr: int, ud: int) -> int:
            # The query (and the cursor's bytes) live until this function
            # returns, after the C call, which copies them.
            query = _native.InvitationQuery(
                struct_size=ctypes.sizeof(_native.InvitationQuery),
                role=role_value,
                since_ms=since,
                until_ms=until,
                limit=page_size,
                cursor=cursor_bytes,  # NULL or "": the first page
            )
            code: int = lib.beckon_query_invitations(
                ptr, ctypes.byref(query), _callbacks.PAGE_CALLBACK, ud
            )
            return code

        return _Call(start)

    # ------------------------------------------------------------------
    # Operations returning concurrent.futures.Future
    # ------------------------------------------------------------------

    def login(self, user_id: str, token: str | None = None) -> OperationFuture[None]:
        """Logs in as ``user_id``; ``token`` may be omitted on hubs without a secret.

        Events: ``ConnectionStateChanged`` to CONNECTING then CONNECTED (or
        DISCONNECTED) before the future completes; invitations still ringing
        for the user arrive after it.
        """
        return self._future(self._login(user_id, token))

    def logout(self) -> OperationFuture[None]:
        """Logs out; if this was the user's last device, its pending invitations are cancelled."""
        return self._future(self._logout())

    def renew_token(self, token: str) -> OperationFuture[None]:
        """Replaces the session's token before it expires."""
        return self._future(self._renew_token(token))

    def send_invitation(
        self,
        invitees: Iterable[str],
        *,
        timeout: int,
        extended_data: str = "",
        notification: Notification | None = None,
        online_only: bool = False,
        request_timeout_ms: int | None = None,
    ) -> OperationFuture[SendResult]:
        """Invites ``invitees`` (1 to 32 distinct user ids): every online device rings.

        Args:
            invitees: user ids; duplicates are folded; not the inviter itself.
            timeout: seconds until unanswered invitees time out, 1 to 600.
            extended_data: text for the invitees, at most 8 KiB of UTF-8.
            notification: what an offline device's push notification shows.
            online_only: close at once for invitees with no device online,
                instead of ringing them if they log in before the deadline.
            request_timeout_ms: how long this send may wait for the server,
                in milliseconds (1 to 2**32-1); None for the client's
                ``request_timeout``. Past it the future fails with
                :class:`~beckon.RequestTimeoutError`.

        Returns:
            A future of the :class:`~beckon.SendResult`: the invitation id and
            the invitees that were offline.
        """
        return self._future(
            self._send_invitation(
                invitees, timeout, extended_data, notification, online_only, request_timeout_ms
            )
        )

    def cancel_invitation(
        self,
        invitation_id: str,
        invitees: Iterable[str] | None = None,
        *,
        extended_data: str = "",
        request_timeout_ms: int | None = None,
    ) -> OperationFuture[CancelResult]:
        """Cancels an invitation this user sent: for everyone, or for ``invitees``.

        Invitees already in a terminal state come back in the result's
        ``error_invitees``, with their state. ``request_timeout_ms`` as in
        :meth:`send_invitation`.
        """
        return self._future(
            self._cancel_invitation(invitation_id, invitees, extended_data, request_timeout_ms)
        )

    def accept_invitation(
        self,
        invitation_id: str,
        *,
        extended_data: str = "",
        request_timeout_ms: int | None = None,
    ) -> OperationFuture[None]:
        """Accepts an invitation this user received.

        The first answer from any of the user's devices wins; the others are
        told by ``InvitationUserStateChanged``. ``extended_data`` (at most
        8 KiB of UTF-8) goes to the inviter; ``request_timeout_ms`` as in
        :meth:`send_invitation`.
        """
        return self._future(self._answer(True, invitation_id, extended_data, request_timeout_ms))

    def refuse_invitation(
        self,
        invitation_id: str,
        *,
        extended_data: str = "",
        request_timeout_ms: int | None = None,
    ) -> OperationFuture[None]:
        """Refuses an invitation this user received (as :meth:`accept_invitation`)."""
        return self._future(self._answer(False, invitation_id, extended_data, request_timeout_ms))

    def set_push_target(self, target: PushTarget) -> OperationFuture[None]:
        """Rings this device by push (APNs, FCM, a webhook) while it is not connected.

        Replaces the target the device had. The server keeps it past this
        connection: after a dropped connection, a reconnect or a new login of
        the same device it is still there. An explicit :meth:`logout` (and
        :meth:`close`, which logs out) forgets it, as does the provider saying
        the token is no longer valid: set it again after logging in anew, and
        whenever the platform gives the app a new token. Pass a stable
        ``device_id`` to the client: the target belongs to that device.

        Bad targets raise at once (:class:`~beckon.InvalidArgumentError` or
        :class:`~beckon.PayloadTooLargeError`, naming ``target.<field>``); a
        server that does not push through the provider fails the future with
        :class:`~beckon.InvalidArgumentError` (a ``memory://`` hub pushes
        through none).
        """
        return self._future(self._set_push_target(target))

    def clear_push_target(self) -> OperationFuture[None]:
        """Forgets this device's push target, if it has one."""
        return self._future(self._clear_push_target())

    def query_invitations(
        self,
        role: HistoryRole = HistoryRole.ANY,
        *,
        since_ms: int = 0,
        until_ms: int = 0,
        limit: int = 0,
        cursor: str | None = None,
    ) -> OperationFuture[InvitationPage]:
        """A page of this user's ended invitations, newest sent first (ABI 2.3).

        The server's history keeps each user's most recent ended invitations
        for a configured period (by default 100, for 7 days; a ``memory://``
        hub the same). Invitations still ringing are not listed.

        Args:
            role: :attr:`HistoryRole.ANY` (the default), ``SENT`` (those this
                user sent, from a device or through the server API) or
                ``RECEIVED`` (those it was invited to).
            since_ms: only invitations sent at or after this, in Unix
                milliseconds; 0 for no bound.
            until_ms: only invitations sent before this, in Unix milliseconds;
                0 for no bound, else it must be after ``since_ms``.
            limit: invitations per page, 1 to 100; 0 (the default) for 20.
            cursor: None or "" for the first page, else the
                :attr:`InvitationPage.next_cursor` of the page before (with
                the same other arguments).

        Returns:
            A future of the :class:`~beckon.InvitationPage`: its
            ``invitations`` and the ``next_cursor`` (None on the last page).

        Bad arguments raise :class:`~beckon.InvalidArgumentError` at once,
        naming ``query.<field>`` (``query.limit``, ``query.until_ms``,
        ``query.cursor``, ...; a wrong type: :class:`~beckon.ArgumentTypeError`),
        and :class:`~beckon.NotLoggedInError` before a login; then nothing is
        started. There is no per-operation request timeout: the client's
        ``request_timeout`` applies.
        """
        return self._future(self._query_invitations(role, since_ms, until_ms, limit, cursor))

    # ------------------------------------------------------------------
    # The same operations for asyncio
    # ------------------------------------------------------------------

    async def login_async(self, user_id: str, token: str | None = None) -> None:
        """:meth:`login` as a coroutine (the outcome hops to this event loop).

        Cancelling the awaiting task does not undo the operation; its outcome is dropped.
        """
        return await self._await(self._login(user_id, token))

    async def logout_async(self) -> None:
        """:meth:`logout` as a coroutine."""
        return await self._await(self._logout())

    async def renew_token_async(self, token: str) -> None:
        """:meth:`renew_token` as a coroutine."""
        return await self._await(self._renew_token(token))

    async def set_push_target_async(self, target: PushTarget) -> None:
        """:meth:`set_push_target` as a coroutine."""
        return await self._await(self._set_push_target(target))

    async def clear_push_target_async(self) -> None:
        """:meth:`clear_push_target` as a coroutine."""
        return await self._await(self._clear_push_target())

    async def query_invitations_async(
        self,
        role: HistoryRole = HistoryRole.ANY,
        *,
        since_ms: int = 0,
        until_ms: int = 0,
        limit: int = 0,
        cursor: str | None = None,
    ) -> InvitationPage:
        """:meth:`query_invitations` as a coroutine."""
        return await self._await(
            self._query_invitations(role, since_ms, until_ms, limit, cursor)
        )

    async def send_invitation_async(
        self,
        invitees: Iterable[str],
        *,
        timeout: int,
        extended_data: str = "",
        notification: Notification | None = None,
        online_only: bool = False,
        request_timeout_ms: int | None = None,
    ) -> SendResult:
        """:meth:`send_invitation` as a coroutine."""
        return await self._await(
            self._send_invitation(
                invitees, timeout, extended_data, notification, online_only, request_timeout_ms
            )
        )

    async def cancel_invitation_async(
        self,
        invitation_id: str,
        invitees: Iterable[str] | None = None,
        *,
        extended_data: str = "",
        request_timeout_ms: int | None = None,
    ) -> CancelResult:
        """:meth:`cancel_invitation` as a coroutine."""
        return await self._await(
            self._cancel_invitation(invitation_id, invitees, extended_data, request_timeout_ms)
        )

    async def accept_invitation_async(
        self,
        invitation_id: str,
        *,
        extended_data: str = "",
        request_timeout_ms: int | None = None,
    ) -> None:
        """:meth:`accept_invitation` as a coroutine."""
        return await self._await(
            self._answer(True, invitation_id, extended_data, request_timeout_ms)
        )

    async def refuse_invitation_async(
        self,
        invitation_id: str,
        *,
        extended_data: str = "",
        request_timeout_ms: int | None = None,
    ) -> None:
        """:meth:`refuse_invitation` as a coroutine."""
        return await self._await(
            self._answer(False, invitation_id, extended_data, request_timeout_ms)
        )

    # ------------------------------------------------------------------
    # Poll mode
    # ------------------------------------------------------------------

    def poll(self, timeout: float = 0.0) -> int:
        """Poll mode only: runs this client's queued callbacks on this thread.

        Waits up to ``timeout`` seconds (0 to 3600) for a callback to be due,
        then runs the callbacks queued at that moment. Returns how many ran.
        Raises :class:`~beckon.InvalidArgumentError` for a client in thread
        or pool mode or a call from inside one of this client's own callbacks, and
        :class:`~beckon.ShutdownError` if the client is closed.
        """
        total_ms = _checks.milliseconds(timeout, "timeout", low_ms=0, high_ms=_MAX_POLL_MS)
        lib = _native.library()
        deadline = time.monotonic() + total_ms / 1000
        first = True
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            slice_ms = min(left_ms, _POLL_SLICE_MS)
            try:
                with self._handle.use() as ptr:
                    count = ctypes.c_uint32(0)
                    code: int = lib.beckon_client_poll(ptr, slice_ms, ctypes.byref(count))
                    message = _callbacks.last_error_message() if code != 0 else ""
                    ran = count.value
            except ShutdownError:
                if first:
                    raise
                return 0  # closed by another thread while waiting
            if code != 0:
                raise error_for(code, message)
            if ran > 0 or left_ms <= slice_ms:
                return ran
            first = False

    def poll_until(self, future: concurrent.futures.Future[Any], timeout: float) -> bool:
        """Poll mode: polls until ``future`` is done or ``timeout`` seconds pass.

        Returns whether the future is done. Handy for waiting on an operation's
        future on the thread that polls (where ``future.result()`` alone would
        wait forever, since nothing would run the callback).
        """
        if not isinstance(future, concurrent.futures.Future):
            raise ArgumentTypeError(
                f"future: expected concurrent.futures.Future, got {type(future).__name__}"
            )
        _checks.milliseconds(timeout, "timeout", low_ms=0, high_ms=_MAX_POLL_MS)
        deadline = time.monotonic() + timeout
        while not future.done():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.poll(left)
        return future.done()
