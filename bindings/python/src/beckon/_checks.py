"""Checks of Python arguments before they reach the C ABI.

Each function takes a value and the name of the field it came from, and
returns what the C call needs (``bytes`` for strings, ``int`` for numbers) or
raises the exception of the matching error code, with a message in the
library's own form (``field: what is wrong``). The library checks everything
again; these checks exist so that a wrong type never reaches ctypes (where it
would be a confusing ``ctypes.ArgumentError``, or worse, silently truncated
text) and so that the common mistakes fail before any work starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NoReturn

from ._errors import ArgumentTypeError, InvalidArgumentError, PayloadTooLargeError
from ._types import ApnsEnvironment, HistoryRole, Notification, PushProvider, PushTarget

#: User and device ids are 1 to 64 bytes of ``[A-Za-z0-9_.@:+-]``
#: (docs/SEMANTICS.md).
MAX_ID_BYTES = 64
_ID_BYTE = re.compile(rb"[A-Za-z0-9_.@:+\-]")
_ID = re.compile(rb"[A-Za-z0-9_.@:+\-]{1,64}")
#: Memory hub names: 1 to 64 bytes of ``[A-Za-z0-9_.-]``.
_HUB_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

MIN_TIMEOUT_SECONDS = 1
MAX_TIMEOUT_SECONDS = 600
MAX_EXTENDED_DATA = 8 * 1024
MAX_TOKEN = 4096
MAX_TITLE = 256
MAX_MESSAGE = 1024
MAX_RESOURCE_ID = 64
MAX_PAYLOAD = 4 * 1024
MAX_HISTORY_LIMIT = 100
U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1


def _type_error(field: str, expected: str, value: object) -> NoReturn:
    raise ArgumentTypeError(f"{field}: expected {expected}, got {type(value).__name__}")


def text(value: object, field: str, *, limit: int | None = None) -> bytes:
    """A ``str`` as NUL-free UTF-8; over ``limit`` bytes is PAYLOAD_TOO_LARGE."""
    if not isinstance(value, str):
        _type_error(field, "str", value)
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidArgumentError(
            f"{field}: not valid UTF-8 (a lone surrogate at character {error.start})"
        ) from None
    if b"\0" in encoded:
        raise InvalidArgumentError(f"{field}: contains a NUL character at byte {encoded.index(0)}")
    if limit is not None and len(encoded) > limit:
        raise PayloadTooLargeError(f"{field}: {len(encoded)} bytes, the limit is {limit}")
    return encoded


def optional_text(value: object, field: str, *, limit: int | None = None) -> bytes | None:
    """Like :func:`text`, with ``None`` passed on as NULL."""
    return None if value is None else text(value, field, limit=limit)


def nonempty_text(value: object, field: str) -> bytes:
    """A required ``str`` that must not be empty."""
    encoded = text(value, field)
    if not encoded:
        raise InvalidArgumentError(f"{field}: must not be empty")
    return encoded


def user_id(value: object, field: str) -> bytes:
    """A user or device id: 1 to 64 bytes of ``[A-Za-z0-9_.@:+-]``."""
    encoded = nonempty_text(value, field)
    if len(encoded) > MAX_ID_BYTES:
        raise InvalidArgumentError(f"{field}: {len(encoded)} bytes, the limit is {MAX_ID_BYTES}")
    if not _ID.fullmatch(encoded):
        bad = next(i for i in range(len(encoded)) if not _ID_BYTE.fullmatch(encoded[i : i + 1]))
        raise InvalidArgumentError(f"{field}: byte {bad} is outside [A-Za-z0-9_.@:+-]")
    return encoded


def user_ids(values: object, field: str) -> list[bytes]:
    """A non-empty collection of user ids (a lone ``str`` is refused, not split)."""
    if isinstance(values, (str, bytes, bytearray, memoryview)):
        _type_error(field, "a list of str (not a single string)", values)
    if not isinstance(values, Iterable):
        _type_error(field, "a list of str", values)
    encoded = [user_id(value, f"{field}[{index}]") for index, value in enumerate(values)]
    if not encoded:
        raise InvalidArgumentError(f"{field}: the list is empty")
    return encoded


def integer(value: object, field: str, low: int, high: int) -> int:
    """An ``int`` (not a ``bool``) within ``low..=high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        _type_error(field, "int", value)
    if not low <= value <= high:
        raise InvalidArgumentError(f"{field}: {value} is outside {low}..={high}")
    return value


def boolean(value: object, field: str) -> bool:
    """A ``bool`` (other truthy values are refused, so that typos surface)."""
    if not isinstance(value, bool):
        _type_error(field, "bool", value)
    return value


def milliseconds(value: object, field: str, *, low_ms: int, high_ms: int) -> int:
    """Seconds as ``int`` or ``float`` (not ``bool``), as whole milliseconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _type_error(field, "a number of seconds (int or float)", value)
    if value != value:  # NaN
        raise InvalidArgumentError(f"{field}: is NaN")
    ms = value * 1000
    if not low_ms <= ms <= high_ms:
        raise InvalidArgumentError(
            f"{field}: {value} s is outside {low_ms / 1000:g}..={high_ms / 1000:g} s"
        )
    return int(round(ms))


def request_timeout_ms(value: object, field: str = "request_timeout_ms") -> int:
    """A per-operation request timeout: whole milliseconds, 1 to 2**32-1 (None: 0, the client's)."""
    return 0 if value is None else integer(value, field, 1, U32_MAX)


def invitation_id(value: object, field: str = "invitation_id") -> bytes:
    """An invitation id as the hub returned it (its format is checked by the library)."""
    return nonempty_text(value, field)


def hub_name(value: object, field: str = "name") -> bytes:
    """A memory hub name: 1 to 64 bytes of ``[A-Za-z0-9_.-]``."""
    if not isinstance(value, str):
        _type_error(field, "str", value)
    if not _HUB_NAME.fullmatch(value):
        raise InvalidArgumentError(
            f"{field}: memory hub name {value!r} must be 1 to 64 bytes of [A-Za-z0-9_.-]"
        )
    return value.encode("ascii")


def notification(value: object, field: str = "notification") -> tuple[bytes, bytes, bytes, bytes]:
    """A :class:`Notification`'s four fields, each checked against its limit."""
    if not isinstance(value, Notification):
        _type_error(field, "beckon.Notification", value)
    return (
        text(value.title, f"{field}.title", limit=MAX_TITLE),
        text(value.message, f"{field}.message", limit=MAX_MESSAGE),
        text(value.resource_id, f"{field}.resource_id", limit=MAX_RESOURCE_ID),
        text(value.payload, f"{field}.payload", limit=MAX_PAYLOAD),
    )


def push_target(
    value: object, field: str = "target"
) -> tuple[int, bytes, bytes | None, int, bytes | None]:
    """A :class:`PushTarget` as the fields of ``beckon_push_target``.

    Types and encodings only: the library judges the rules (hex tokens, bundle
    ids, which provider has which field) and names ``target.<field>``.
    """
    if not isinstance(value, PushTarget):
        _type_error(field, "beckon.PushTarget", value)
    provider = value.provider
    if not isinstance(provider, int) or isinstance(provider, bool):
        _type_error(f"{field}.provider", "beckon.PushProvider", provider)
    if not isinstance(provider, PushProvider) and provider not in iter(PushProvider):
        raise InvalidArgumentError(
            f"{field}.provider: {provider} is not a BECKON_PUSH_PROVIDER_* value"
        )
    environment = value.environment
    if not isinstance(environment, int) or isinstance(environment, bool):
        _type_error(f"{field}.environment", "beckon.ApnsEnvironment", environment)
    if environment not in (ApnsEnvironment.PRODUCTION, ApnsEnvironment.SANDBOX):
        raise InvalidArgumentError(f"{field}.environment: {environment} is not a BECKON_APNS_* value")
    return (
        int(provider),
        text(value.token, f"{field}.token", limit=MAX_TOKEN),
        optional_text(value.topic, f"{field}.topic"),
        int(environment),
        optional_text(value.alert_token, f"{field}.alert_token"),
    )


def history_query(
    role: object, since_ms: object, until_ms: object, limit: object, cursor: object
) -> tuple[int, int, int, int, bytes | None]:
    """The fields of ``beckon_invitation_query``; errors name ``query.<field>``, as the library's.

    Types, the role, the ranges of the C fields and the page size are checked
    here; the library judges the rest (``until_ms`` after ``since_ms``, a
    cursor it did not give) with the same naming.
    """
    if isinstance(role, bool) or not isinstance(role, int):
        _type_error("query.role", "beckon.HistoryRole", role)
    if role not in HistoryRole._value2member_map_:
        raise InvalidArgumentError(f"query.role: {role} is not a BECKON_HISTORY_* value")
    return (
        int(role),
        integer(since_ms, "query.since_ms", 0, U64_MAX),
        integer(until_ms, "query.until_ms", 0, U64_MAX),
        integer(limit, "query.limit", 0, MAX_HISTORY_LIMIT),
        optional_text(cursor, "query.cursor"),
    )
