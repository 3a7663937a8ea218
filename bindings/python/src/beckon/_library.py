"""Process-wide functions: versions, error names, memory hubs, tokens, logging."""

from __future__ import annotations

import ctypes
import datetime
import logging
import os
from typing import Literal

from . import _callbacks, _checks, _native
from ._errors import ArgumentTypeError, InvalidArgumentError
from ._types import LogDelivery, LogLevel


def load_library(path: str | os.PathLike[str] | None = None) -> str:
    """Loads libbeckon now (it is otherwise loaded on first use) and returns its path.

    ``path`` names the file to load instead of searching (``$BECKON_LIBRARY``,
    then the copy bundled in the package, then the system loader). Raises
    :class:`LibraryLoadError`, or :class:`AbiVersionError` if the library does
    not serve the ABI this package was written for (another major version, or
    an older minor version).
    """
    return _native.load(path).path


def library_path() -> str:
    """The file libbeckon was loaded from (loading it if needed)."""
    return _native.library().path


def version() -> str:
    """The library's version (``beckon_version()``), e.g. ``"0.1.0"``."""
    return _callbacks.decode(_native.library().beckon_version())


def abi_version() -> int:
    """The library's ABI version, ``(major << 16) | minor``.

    Once loaded it has :data:`ABI_VERSION_MAJOR` and a minor version of at
    least :data:`ABI_VERSION_MINOR` (it may be newer than :data:`ABI_VERSION`).
    """
    return int(_native.library().beckon_abi_version())


def error_name(code: int) -> str:
    """The library's name of an error code (``"NOT_PERMITTED"``; ``"UNKNOWN"`` otherwise)."""
    value = _checks.integer(code, "code", -(2**31), 2**31 - 1)
    return _callbacks.decode(_native.library().beckon_error_name(value))


def error_description(code: int) -> str:
    """One sentence describing an error code, from the library."""
    value = _checks.integer(code, "code", -(2**31), 2**31 - 1)
    return _callbacks.decode(_native.library().beckon_error_description(value))


def event_kind_name(kind: int) -> str:
    """The library's name of an event kind (``"INVITATION_RECEIVED"``)."""
    value = _checks.integer(kind, "kind", -(2**31), 2**31 - 1)
    return _callbacks.decode(_native.library().beckon_event_kind_name(value))


def invitee_state_name(state: int) -> str:
    """The library's name of a per-invitee state (``"ACCEPTED"``)."""
    value = _checks.integer(state, "state", -(2**31), 2**31 - 1)
    return _callbacks.decode(_native.library().beckon_invitee_state_name(value))


def memory_hub_create(
    name: str,
    *,
    secret: str | None = None,
    max_invitees: int | None = None,
    retention: float | None = None,
) -> str:
    """Creates the in-process hub ``name`` with a non-default configuration.

    Without this, ``memory://NAME`` hubs are made with defaults on first use.
    It must run before any client uses the name: a hub that already exists is
    :class:`InvalidArgumentError`.

    Args:
        name: 1 to 64 bytes of ``[A-Za-z0-9_.-]``.
        secret: when set, logins need a token from :func:`token_create` with it.
        max_invitees: distinct invitees per invitation, 1 to 1000 (default 32).
        retention: seconds an ended invitation is remembered (default 600).

    Returns:
        The URL to give clients: ``"memory://" + name``.
    """
    name_bytes = _checks.hub_name(name)
    secret_bytes = None if secret is None else _checks.nonempty_text(secret, "secret")
    invitees = 0 if max_invitees is None else _checks.integer(max_invitees, "max_invitees", 1, 1000)
    retention_ms = (
        0
        if retention is None
        else _checks.milliseconds(retention, "retention", low_ms=1, high_ms=_checks.U32_MAX)
    )
    config = _native.HubConfig(
        struct_size=ctypes.sizeof(_native.HubConfig),
        secret=secret_bytes,
        max_invitees=invitees,
        retention_ms=retention_ms,
    )
    _callbacks.check(_native.library().beckon_memory_hub_create(name_bytes, ctypes.byref(config)))
    return f"memory://{name}"


def token_create(secret: str, user_id: str, expires: int | datetime.datetime) -> str:
    """A login token for ``user_id``, valid until ``expires``, made with ``secret``.

    ``expires`` is Unix time in seconds, or a timezone-aware ``datetime``. Any
    backend can make the same tokens (the recipe is in docs/C_API.md).
    """
    secret_bytes = _checks.nonempty_text(secret, "secret")
    user = _checks.user_id(user_id, "user_id")
    if isinstance(expires, datetime.datetime):
        if expires.tzinfo is None or expires.utcoffset() is None:
            raise InvalidArgumentError("expires: a naive datetime is ambiguous; give it a tzinfo")
        expiry = int(expires.timestamp())
        if expiry < 0:
            raise InvalidArgumentError(f"expires: {expires.isoformat()} is before 1970")
    else:
        expiry = _checks.integer(expires, "expires", 0, _checks.U64_MAX)
    buffer = ctypes.create_string_buffer(_native.TOKEN_MAX_LEN)
    _callbacks.check(
        _native.library().beckon_token_create(secret_bytes, user, expiry, buffer, len(buffer))
    )
    return buffer.value.decode("ascii")


#: A log handler: ``(level, tag, sub_tag, message)``.
LogHandler = _callbacks.LogHandler

#: What ``delivery`` accepts besides :class:`LogDelivery` members.
LogDeliveryName = Literal["queued", "direct"]


def _log_delivery(delivery: object) -> LogDelivery:
    if isinstance(delivery, LogDelivery):
        return delivery
    if isinstance(delivery, str):
        try:
            return LogDelivery[delivery.upper()]
        except KeyError:
            raise InvalidArgumentError(
                f"delivery: {delivery!r} is not 'queued' or 'direct'"
            ) from None
    if isinstance(delivery, bool) or not isinstance(delivery, int):
        raise ArgumentTypeError(
            f"delivery: expected beckon.LogDelivery or 'queued'/'direct', "
            f"got {type(delivery).__name__}"
        )
    if delivery not in LogDelivery._value2member_map_:
        raise InvalidArgumentError(f"delivery: {delivery} is not a beckon.LogDelivery value")
    return LogDelivery(delivery)


def _log_level(max_level: object) -> LogLevel:
    if isinstance(max_level, LogLevel):
        return max_level
    if isinstance(max_level, bool) or not isinstance(max_level, int):
        raise ArgumentTypeError(
            f"max_level: expected beckon.LogLevel, got {type(max_level).__name__}"
        )
    if max_level not in LogLevel._value2member_map_:
        raise InvalidArgumentError(f"max_level: {max_level} is not a beckon.LogLevel value")
    return LogLevel(max_level)


def set_log_handler(
    handler: LogHandler | None,
    max_level: LogLevel = LogLevel.INFO,
    delivery: LogDelivery | LogDeliveryName = "queued",
) -> None:
    """Installs the process-wide log handler for levels up to ``max_level``.

    ``handler(level, tag, sub_tag, message)``: ``tag`` is always
    ``"signaling"``, ``sub_tag`` the layer (``"api"``, ``"room"``,
    ``"client"``, ``"hub"``, ``"log"``). ``None`` (or ``LogLevel.OFF``) stops
    logging. Without a handler the library prints nothing. See also
    :func:`log_to_logging`.

    ``delivery``:

    - ``"queued"`` (:attr:`LogDelivery.QUEUED`, the default): records are
      queued and the handler runs on one library thread (``beckon-log``), one
      record at a time, in order, outside every lock of the library: it may
      take its time and call beckon (create or close clients, start
      operations, even replace itself). At most 10,000 records wait; extra
      ones are dropped and a ``WARN`` record with sub-tag ``"log"`` says how
      many.
    - ``"direct"`` (:attr:`LogDelivery.DIRECT`): the handler runs at once on the
      thread that logs, possibly concurrently and while the library holds
      internal locks: keep it quick and thread-safe, and never call beckon
      from it.

    Returns once the handler it replaces is not running and will never be
    called again (records still queued for it are dropped), so whatever it
    uses may be released. An exception raised by the handler is logged on the
    ``beckon`` logger and does not stop the next records.
    """
    if handler is not None and not callable(handler):
        raise ArgumentTypeError(f"handler: expected a callable, got {type(handler).__name__}")
    level = _log_level(max_level)
    mode = _log_delivery(delivery)
    _callbacks.set_log_handler(handler, level, mode)


_TO_LOGGING = {
    LogLevel.ERROR: logging.ERROR,
    LogLevel.WARN: logging.WARNING,
    LogLevel.INFO: logging.INFO,
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.TRACE: 5,  # below DEBUG, as some libraries' TRACE
}


def log_to_logging(
    logger: logging.Logger | None = None,
    max_level: LogLevel = LogLevel.INFO,
    delivery: LogDelivery | LogDeliveryName = "queued",
) -> None:
    """Sends the library's log to Python's ``logging`` (see :func:`set_log_handler`).

    Records go to ``logger`` (default: ``logging.getLogger("beckon.signaling")``
    with a child per sub-tag, e.g. ``beckon.signaling.room``). ``TRACE`` maps to
    level 5, below ``DEBUG``.
    """
    base = logger if logger is not None else logging.getLogger("beckon.signaling")
    if not isinstance(base, logging.Logger):
        raise ArgumentTypeError(f"logger: expected logging.Logger, got {type(base).__name__}")

    def forward(level: LogLevel, _tag: str, sub_tag: str, message: str) -> None:
        target = base.getChild(sub_tag) if sub_tag else base
        target.log(_TO_LOGGING.get(level, logging.DEBUG), "%s", message)

    set_log_handler(forward, max_level, delivery)
