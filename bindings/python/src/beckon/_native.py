"""The C ABI of libbeckon as ctypes sees it, and how the library is found.

Everything in this module mirrors ``include/beckon.h`` one to one: the structs,
the callback types and the signature of every exported function. Nothing here
is public; the rest of the package turns it into Python objects.

Loading order (the first that applies wins):

1. the ``BECKON_LIBRARY`` environment variable, a full path to the library;
2. the copy bundled inside the installed package (``beckon/_lib/``);
3. the system loader (``ctypes.util.find_library("beckon")``, then the plain
   file name, so ``LD_LIBRARY_PATH`` and ``ldconfig`` are honoured).

Whatever is loaded must serve this binding's ABI: ``beckon_abi_version()`` must
have the major version :data:`ABI_VERSION_MAJOR` and a minor version at least
:data:`ABI_VERSION_MINOR` (a newer minor only adds things). See
:func:`abi_compatible`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int32,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Final

#: ``BECKON_ABI_VERSION_MAJOR`` of the header this binding was written against.
ABI_VERSION_MAJOR: Final = 2

#: ``BECKON_ABI_VERSION_MINOR`` of the header this binding was written against.
ABI_VERSION_MINOR: Final = 3

#: ``BECKON_ABI_VERSION``: ``(ABI_VERSION_MAJOR << 16) | ABI_VERSION_MINOR``.
ABI_VERSION: Final = (ABI_VERSION_MAJOR << 16) | ABI_VERSION_MINOR

#: ``BECKON_ID_CAPACITY``: bytes of ``beckon_client_info.user_id`` and ``.device_id``.
ID_CAPACITY: Final = 68

#: ``BECKON_TOKEN_MAX_LEN``: the longest token ``beckon_token_create`` writes, with its NUL.
TOKEN_MAX_LEN: Final = 96

#: ``BECKON_INVITATION_ONLINE_ONLY``.
INVITATION_ONLINE_ONLY: Final = 1

#: ``BECKON_LOG_DIRECT``: the log handler runs on the logging thread, under library locks.
LOG_DIRECT: Final = 0

#: ``BECKON_LOG_QUEUED``: records are queued and delivered on the library's log thread.
LOG_QUEUED: Final = 1

#: The environment variable naming the library file to load.
LIBRARY_ENV: Final = "BECKON_LIBRARY"


class LibraryLoadError(ImportError):
    """libbeckon could not be found or loaded, or is not the ABI this binding knows."""


def abi_version_text(version: int) -> str:
    """``"major.minor"`` of an ABI version number (``(major << 16) | minor``)."""
    return f"{version >> 16}.{version & 0xFFFF}"


def abi_compatible(found: int, expected: int | None = None) -> bool:
    """Whether a library of ABI version ``found`` serves a binding written for ``expected``.

    The rule of ``BECKON_ABI_COMPATIBLE``: the same major version, and a minor
    version at least the binding's. ``expected`` defaults to :data:`ABI_VERSION`.
    """
    wanted = ABI_VERSION if expected is None else expected
    return found >> 16 == wanted >> 16 and found & 0xFFFF >= wanted & 0xFFFF


class AbiVersionError(LibraryLoadError):
    """The loaded libbeckon's ABI version does not serve this binding.

    It has another major version, or an older minor version, than
    :data:`ABI_VERSION` (see :func:`abi_compatible`).

    Attributes:
        path: where the library was loaded from.
        found: the ABI version the library reports (``(major << 16) | minor``).
        expected: the ABI version this binding was written for.
    """

    def __init__(self, path: str, found: int, expected: int) -> None:
        super().__init__(
            f"{path} has ABI version {abi_version_text(found)}, this beckon package needs "
            f"ABI {abi_version_text(expected)} (the same major, an equal or newer minor): "
            f"install a matching library, or point {LIBRARY_ENV} at one"
        )
        self.path = path
        self.found = found
        self.expected = expected


# --------------------------------------------------------------------------
# Structs (field order and types exactly as in include/beckon.h)
# --------------------------------------------------------------------------


class ClientConfig(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("server_url", c_char_p),
        ("device_id", c_char_p),
        ("dispatch_mode", c_int32),
        ("request_timeout_ms", c_uint32),
    ]


class InviteeState(Structure):
    _fields_ = [("user_id", c_char_p), ("state", c_int32)]


class NotificationConfig(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("title", c_char_p),
        ("message", c_char_p),
        ("resource_id", c_char_p),
        ("payload", c_char_p),
    ]


class EventNotification(Structure):
    """``beckon_event_notification``: the notification an event shows (ABI 2.1's name)."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("title", c_char_p),
        ("message", c_char_p),
        ("resource_id", c_char_p),
        ("payload", c_char_p),
    ]


class Event(Structure):
    _fields_ = [
        ("kind", c_int32),
        ("invitation_id", c_char_p),
        ("inviter", c_char_p),
        ("user_id", c_char_p),
        ("state", c_int32),
        ("extended_data", c_char_p),
        ("invitees", POINTER(InviteeState)),
        ("invitee_count", c_size_t),
        ("notification", POINTER(EventNotification)),
        ("seconds_left", c_uint32),
        ("connection_state", c_int32),
        ("connection_reason", c_int32),
        # ABI 2.2: INVITATION_PUSH_RESULT's fields.
        ("push_provider", c_int32),
        ("push_outcome", c_int32),
        ("device_id", c_char_p),
        ("push_reason", c_char_p),
    ]


class Result(Structure):
    _fields_ = [("error", c_int32), ("error_message", c_char_p)]


class HubConfig(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("secret", c_char_p),
        ("max_invitees", c_uint32),
        ("retention_ms", c_uint32),
    ]


class InvitationConfig(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("timeout_seconds", c_uint32),
        ("extended_data", c_char_p),
        ("notification", POINTER(NotificationConfig)),
        ("flags", c_uint32),
        ("request_timeout_ms", c_uint32),  # 0: the client's (ABI 2.0's `reserved`)
    ]


class AnswerConfig(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("request_timeout_ms", c_uint32),
        ("extended_data", c_char_p),
    ]


class CancelConfig(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("request_timeout_ms", c_uint32),
        ("invitees", POINTER(c_char_p)),
        ("invitee_count", c_size_t),
        ("extended_data", c_char_p),
    ]


class PushTarget(Structure):
    """``beckon_push_target`` (ABI 2.2)."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("provider", c_int32),
        ("token", c_char_p),
        ("topic", c_char_p),
        ("environment", c_int32),
        ("alert_token", c_char_p),
    ]


class InvitationQuery(Structure):
    """``beckon_invitation_query`` (ABI 2.3)."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("role", c_int32),
        ("since_ms", c_uint64),
        ("until_ms", c_uint64),
        ("limit", c_uint32),
        ("cursor", c_char_p),
    ]


class InvitationSummary(Structure):
    """``beckon_invitation_summary`` (ABI 2.3)."""

    _fields_ = [
        ("invitation_id", c_char_p),
        ("inviter", c_char_p),
        ("invitees", POINTER(InviteeState)),
        ("invitee_count", c_size_t),
        ("created_ms", c_uint64),
        ("ended_ms", c_uint64),
        ("sent_by_server", c_int32),
    ]


class InvitationPageResult(Structure):
    """``beckon_invitation_page_result`` (ABI 2.3)."""

    _fields_ = [
        ("error", c_int32),
        ("error_message", c_char_p),
        ("invitations", POINTER(InvitationSummary)),
        ("invitation_count", c_size_t),
        ("next_cursor", c_char_p),
    ]


class ClientInfo(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("connection_state", c_int32),
        ("user_id", ctypes.c_char * ID_CAPACITY),
        ("device_id", ctypes.c_char * ID_CAPACITY),
    ]


class SendResult(Structure):
    _fields_ = [
        ("error", c_int32),
        ("error_message", c_char_p),
        ("invitation_id", c_char_p),
        ("error_invitees", POINTER(InviteeState)),
        ("error_invitee_count", c_size_t),
    ]


class CancelResult(Structure):
    _fields_ = [
        ("error", c_int32),
        ("error_message", c_char_p),
        ("error_invitees", POINTER(InviteeState)),
        ("error_invitee_count", c_size_t),
    ]


# --------------------------------------------------------------------------
# Callback types
# --------------------------------------------------------------------------

EventCallback = CFUNCTYPE(None, c_void_p, POINTER(Event))
ResultCallback = CFUNCTYPE(None, c_void_p, POINTER(Result))
SendCallback = CFUNCTYPE(None, c_void_p, POINTER(SendResult))
CancelCallback = CFUNCTYPE(None, c_void_p, POINTER(CancelResult))
InvitationPageCallback = CFUNCTYPE(None, c_void_p, POINTER(InvitationPageResult))
LogCallback = CFUNCTYPE(None, c_void_p, c_int32, c_char_p, c_char_p, c_char_p)


class LogConfig(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("max_level", c_int32),
        ("delivery", c_uint32),
        ("reserved", c_uint32),  # always 0
        ("handler", LogCallback),
        ("user_data", c_void_p),
    ]


_client_p = c_void_p
_strings_p = POINTER(c_char_p)

# name: (restype, argtypes)
_SIGNATURES: Final[dict[str, tuple[object, list[object]]]] = {
    "beckon_version": (c_char_p, []),
    "beckon_abi_version": (c_uint32, []),
    "beckon_error_name": (c_char_p, [c_int32]),
    "beckon_error_description": (c_char_p, [c_int32]),
    "beckon_last_error_message": (c_char_p, []),
    "beckon_event_kind_name": (c_char_p, [c_int32]),
    "beckon_invitee_state_name": (c_char_p, [c_int32]),
    "beckon_set_log_handler": (c_int32, [LogCallback, c_void_p, c_int32]),
    "beckon_set_log_config": (c_int32, [POINTER(LogConfig)]),
    "beckon_client_new": (c_int32, [POINTER(ClientConfig), POINTER(_client_p)]),
    "beckon_client_set_event_handler": (c_int32, [_client_p, EventCallback, c_void_p]),
    "beckon_client_login": (
        c_int32,
        [_client_p, c_char_p, c_char_p, ResultCallback, c_void_p],
    ),
    "beckon_client_logout": (c_int32, [_client_p, ResultCallback, c_void_p]),
    "beckon_client_renew_token": (c_int32, [_client_p, c_char_p, ResultCallback, c_void_p]),
    "beckon_client_poll": (c_int32, [_client_p, c_int32, POINTER(c_uint32)]),
    "beckon_client_free": (c_int32, [_client_p]),
    "beckon_client_get_info": (c_int32, [_client_p, POINTER(ClientInfo)]),
    "beckon_memory_hub_create": (c_int32, [c_char_p, POINTER(HubConfig)]),
    "beckon_token_create": (c_int32, [c_char_p, c_char_p, c_uint64, c_char_p, c_size_t]),
    "beckon_send_invitation": (
        c_int32,
        [_client_p, _strings_p, c_size_t, POINTER(InvitationConfig), SendCallback, c_void_p],
    ),
    "beckon_cancel_invitation": (
        c_int32,
        [_client_p, c_char_p, _strings_p, c_size_t, c_char_p, CancelCallback, c_void_p],
    ),
    "beckon_accept_invitation": (
        c_int32,
        [_client_p, c_char_p, c_char_p, ResultCallback, c_void_p],
    ),
    "beckon_refuse_invitation": (
        c_int32,
        [_client_p, c_char_p, c_char_p, ResultCallback, c_void_p],
    ),
    "beckon_cancel_invitation_ex": (
        c_int32,
        [_client_p, c_char_p, POINTER(CancelConfig), CancelCallback, c_void_p],
    ),
    "beckon_accept_invitation_ex": (
        c_int32,
        [_client_p, c_char_p, POINTER(AnswerConfig), ResultCallback, c_void_p],
    ),
    "beckon_refuse_invitation_ex": (
        c_int32,
        [_client_p, c_char_p, POINTER(AnswerConfig), ResultCallback, c_void_p],
    ),
    "beckon_client_set_push_target": (
        c_int32,
        [_client_p, POINTER(PushTarget), ResultCallback, c_void_p],
    ),
    "beckon_client_clear_push_target": (c_int32, [_client_p, ResultCallback, c_void_p]),
    "beckon_push_provider_name": (c_char_p, [c_int32]),
    "beckon_push_outcome_name": (c_char_p, [c_int32]),
    "beckon_query_invitations": (
        c_int32,
        [_client_p, POINTER(InvitationQuery), InvitationPageCallback, c_void_p],
    ),
}

# The test hooks of a library built with the `test-hooks` feature (never in a
# release): declared when present, for the tests of push results.
_TEST_HOOK_SIGNATURES: Final[dict[str, tuple[object, list[object]]]] = {
    "beckon_test_memory_hub_create_with_push": (c_int32, [c_char_p]),
    "beckon_test_offline_push_target": (
        c_int32,
        [c_char_p, c_char_p, c_char_p, POINTER(PushTarget)],
    ),
}


def _library_file_name() -> str:
    if sys.platform == "darwin":
        return "libbeckon.dylib"
    if sys.platform == "win32":
        return "beckon.dll"
    return "libbeckon.so"


def bundled_library_path() -> Path:
    """Where a wheel puts its copy of the library (it may not exist)."""
    return Path(__file__).resolve().parent / "_lib" / _library_file_name()


def _candidates() -> list[tuple[str, str]]:
    """(how it was chosen, what to hand to the loader), in order of preference."""
    explicit = os.environ.get(LIBRARY_ENV)
    if explicit:
        # An explicit choice is final: never fall back to another copy silently.
        return [(f"${LIBRARY_ENV}", explicit)]
    found: list[tuple[str, str]] = []
    bundled = bundled_library_path()
    if bundled.is_file():
        found.append(("the copy bundled in the package", str(bundled)))
    system = ctypes.util.find_library("beckon")
    if system:
        found.append(("the system loader", system))
    found.append(("the system loader", _library_file_name()))
    return found


class Library:
    """A loaded, checked libbeckon with every function's signature declared."""

    def __init__(self, handle: ctypes.CDLL, path: str) -> None:
        self.handle = handle
        self.path = path
        # The version first: a library of another ABI is refused as such, not
        # for a function it lacks.
        try:
            abi_version = handle.beckon_abi_version
        except AttributeError as missing:
            raise LibraryLoadError(f"{path} does not export beckon_abi_version") from missing
        abi_version.restype = c_uint32
        abi_version.argtypes = []
        found = int(abi_version())
        if not abi_compatible(found, ABI_VERSION):
            raise AbiVersionError(path, found, ABI_VERSION)
        for name, (restype, argtypes) in _SIGNATURES.items():
            try:
                function = getattr(handle, name)
            except AttributeError as missing:
                raise LibraryLoadError(f"{path} does not export {name}") from missing
            function.restype = restype
            function.argtypes = argtypes
        for name, (restype, argtypes) in _TEST_HOOK_SIGNATURES.items():
            hook = getattr(handle, name, None)
            if hook is not None:
                hook.restype = restype
                hook.argtypes = argtypes

    def has_test_hooks(self) -> bool:
        """Whether the library was built with the ``test-hooks`` feature."""
        return all(hasattr(self.handle, name) for name in _TEST_HOOK_SIGNATURES)

    def __getattr__(self, name: str) -> Any:
        # Only reached for the exported functions (declared above).
        return getattr(self.handle, name)


_lock = threading.Lock()
_library: Library | None = None


def load(path: str | os.PathLike[str] | None = None) -> Library:
    """Loads libbeckon once per process (later calls return the same library).

    ``path`` overrides the search; it may only be given before the library is
    first loaded, or name the file already loaded.
    """
    global _library
    with _lock:
        if _library is not None:
            if path is not None and os.path.realpath(path) != os.path.realpath(_library.path):
                raise LibraryLoadError(
                    f"libbeckon is already loaded from {_library.path}; "
                    f"it cannot be replaced by {os.fspath(path)}"
                )
            return _library
        candidates = (
            [("the path given to load_library", os.fspath(path))]
            if path is not None
            else _candidates()
        )
        failures: list[str] = []
        for how, where in candidates:
            try:
                handle = ctypes.CDLL(where)
            except OSError as error:
                failures.append(f"{where} ({how}): {error}")
                continue
            # A wrong ABI is an error at once, not a reason to try the next copy.
            _library = Library(handle, _loaded_path(handle, where))
            return _library
        raise LibraryLoadError(
            "libbeckon could not be loaded; tried:\n  "
            + "\n  ".join(failures)
            + f"\nInstall a beckon wheel (it bundles the library) or set {LIBRARY_ENV} "
            "to the full path of libbeckon."
        )


def _loaded_path(handle: ctypes.CDLL, fallback: str) -> str:
    """The file the dynamic loader actually opened, where the platform tells."""
    if sys.platform.startswith("linux"):
        try:
            libdl = ctypes.CDLL(None)
            dlinfo = libdl.dlinfo
        except (OSError, AttributeError):
            return fallback

        class LinkMap(Structure):
            _fields_ = [("l_addr", c_void_p), ("l_name", c_char_p)]

        RTLD_DI_LINKMAP = 2
        link_map = POINTER(LinkMap)()
        dlinfo.argtypes = [c_void_p, ctypes.c_int, c_void_p]
        if dlinfo(c_void_p(handle._handle), RTLD_DI_LINKMAP, ctypes.byref(link_map)) == 0:
            name = link_map.contents.l_name
            if name:
                return os.fsdecode(name)
    return fallback


def library() -> Library:
    """The loaded library, loading it on first use."""
    current = _library
    return current if current is not None else load()
