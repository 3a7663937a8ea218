"""Loading the library, the ABI check, versions, names, and the ctypes mirror of the header."""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import beckon
from beckon import _native

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
REPO = HERE.parent.parent.parent
HEADER_DIR = REPO / "include"
CC = shutil.which("cc") or shutil.which("gcc") or ""
needs_cc = pytest.mark.skipif(not CC, reason="needs a C compiler")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` in a fresh interpreter (the library loads once per process)."""
    environment = {k: v for k, v in os.environ.items() if k != "BECKON_LIBRARY"}
    environment["PYTHONPATH"] = str(SRC)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# What ABI 2.2 added: a 2.1 library does not export these.
ADDED_IN_2_2 = (
    "beckon_client_set_push_target",
    "beckon_client_clear_push_target",
    "beckon_push_provider_name",
    "beckon_push_outcome_name",
)

# What ABI 2.3 added: a 2.2 library does not export it.
ADDED_IN_2_3 = ("beckon_query_invitations",)


def compile_stub(tmp_path: Path, abi: int, skip: str | tuple[str, ...] = "") -> Path:
    """A shared library exporting the binding's beckon_* names but ``skip``, with the given ABI."""
    skipped = (skip,) if isinstance(skip, str) else skip
    lines = ["#include <stdint.h>"]
    for name in _native._SIGNATURES:
        if name in skipped:
            continue
        if name == "beckon_abi_version":
            lines.append(f"uint32_t beckon_abi_version(void) {{ return {abi}; }}")
        else:
            lines.append(f"int {name}(void) {{ return 0; }}")
    source = tmp_path / "stub.c"
    source.write_text("\n".join(lines) + "\n")
    library = tmp_path / f"libstub{abi}{len(skipped)}.so"
    subprocess.run(
        [CC, "-shared", "-fPIC", "-o", str(library), str(source)],
        check=True,
        timeout=60,
    )
    return library


def test_versions() -> None:
    assert beckon.ABI_VERSION_MAJOR == 2 and beckon.ABI_VERSION_MINOR == 3
    assert beckon.abi_version() == beckon.ABI_VERSION == (2 << 16) | 3
    assert beckon.version() == beckon.__version__
    assert Path(beckon.library_path()).is_file()
    # Asking again for the loaded file is fine; another file is refused.
    assert beckon.load_library(beckon.library_path()) == beckon.library_path()
    with pytest.raises(beckon.LibraryLoadError, match="already loaded"):
        beckon.load_library("/elsewhere/libbeckon.so")


def test_enumerations_match_the_library_names() -> None:
    for state in beckon.InviteeState:
        assert beckon.invitee_state_name(state) == state.name
    for kind in beckon.EventKind:
        assert beckon.event_kind_name(kind) == kind.name
    assert beckon.invitee_state_name(42) == "UNKNOWN"
    assert beckon.InviteeState.of(9).name == "UNKNOWN_9"  # reserved values still convert
    assert beckon.InviteeState.TIMEOUT.is_terminal and not beckon.InviteeState.RECEIVED.is_terminal


def test_missing_library_is_a_clear_error() -> None:
    result = run_python(
        "import beckon; beckon.version()", BECKON_LIBRARY="/nonexistent/libbeckon.so"
    )
    assert result.returncode != 0
    assert "LibraryLoadError" in result.stderr
    assert "/nonexistent/libbeckon.so ($BECKON_LIBRARY)" in result.stderr


def test_importing_does_not_load_the_library() -> None:
    result = run_python(
        "import beckon, beckon._native as n; print(n._library is None)",
        BECKON_LIBRARY="/nonexistent/libbeckon.so",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_system_loader_is_the_last_resort() -> None:
    directory = Path(beckon.library_path()).parent
    result = run_python(
        "import beckon; print(beckon.library_path()); print(beckon.version())",
        LD_LIBRARY_PATH=str(directory),
    )
    assert result.returncode == 0, result.stderr
    path, version = result.stdout.split()
    assert Path(path).resolve() == Path(beckon.library_path()).resolve()
    assert version == beckon.version()


def test_the_abi_rule_same_major_equal_or_newer_minor() -> None:
    def v(major: int, minor: int) -> int:
        return (major << 16) | minor

    assert _native.abi_version_text(v(2, 0)) == "2.0"
    assert _native.abi_version_text(v(3, 17)) == "3.17"
    assert _native.abi_compatible(beckon.ABI_VERSION)
    assert _native.abi_compatible(v(2, 3)) and _native.abi_compatible(v(2, 7))
    assert not _native.abi_compatible(v(2, 2)), "this binding uses 2.3's functions"
    assert not _native.abi_compatible(v(2, 1))
    assert not _native.abi_compatible(v(2, 0))
    assert _native.abi_compatible(v(2, 0), v(2, 0))
    assert _native.abi_compatible(v(2, 1), v(2, 0)), "a newer minor library"
    assert _native.abi_compatible(v(2, 3), v(2, 1)), "a newer minor library"
    assert not _native.abi_compatible(v(2, 1), v(2, 3)), "an older minor library"
    assert not _native.abi_compatible(v(3, 0), v(2, 0)), "another major"
    assert not _native.abi_compatible(v(1, 9), v(2, 0)), "an older major"
    assert not _native.abi_compatible(1, v(2, 0)), "the unversioned ABI 1"


# Prints "found expected is-an-ImportError", then the message, or "loaded ABI".
_LOAD = (
    "import beckon\n"
    "try:\n"
    "    beckon.load_library()\n"
    "except beckon.AbiVersionError as e:\n"
    "    print(e.found, e.expected, isinstance(e, ImportError)); print(e)\n"
    "else:\n"
    "    print('loaded', beckon.abi_version())\n"
)


@needs_cc
@pytest.mark.parametrize(
    ("abi", "text"),
    [((3 << 16) | 0, "3.0"), ((1 << 16) | 5, "1.5"), (1, "0.1"), (99, "0.99")],
    ids=["next-major", "older-major", "unversioned-1", "unversioned-99"],
)
def test_another_major_abi_version_is_refused(tmp_path: Path, abi: int, text: str) -> None:
    stub = compile_stub(tmp_path, abi=abi)
    result = run_python(_LOAD, BECKON_LIBRARY=str(stub))
    assert result.returncode == 0, result.stderr
    first, message = result.stdout.splitlines()[:2]
    assert first == f"{abi} {beckon.ABI_VERSION} True"
    assert f"has ABI version {text}," in message and str(stub) in message
    assert "needs ABI 2.3 (the same major, an equal or newer minor)" in message


@needs_cc
def test_another_major_is_refused_for_its_version_before_its_symbols(tmp_path: Path) -> None:
    # A library of another ABI may lack functions: the version is what is wrong.
    stub = compile_stub(tmp_path, abi=3 << 16, skip="beckon_client_get_info")
    result = run_python(_LOAD, BECKON_LIBRARY=str(stub))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{3 << 16} {beckon.ABI_VERSION} True"


@needs_cc
@pytest.mark.parametrize(
    ("minor", "skip"),
    [
        (2, ()),
        (2, ADDED_IN_2_3),
        (1, ADDED_IN_2_2 + ADDED_IN_2_3),
    ],
    ids=["2.2-all-symbols", "2.2-without-2.3-functions", "2.1-without-2.2-functions"],
)
def test_an_older_minor_abi_version_is_refused(
    tmp_path: Path, minor: int, skip: tuple[str, ...]
) -> None:
    # This binding uses ABI 2.3's functions: a 2.2 (or 2.1) library is refused
    # for its version (not for the newer functions it lacks).
    older = (2 << 16) | minor
    stub = compile_stub(tmp_path, abi=older, skip=skip)
    result = run_python(_LOAD, BECKON_LIBRARY=str(stub))
    assert result.returncode == 0, result.stderr
    first, message = result.stdout.splitlines()[:2]
    assert first == f"{older} {(2 << 16) | 3} True"
    assert f"{stub} has ABI version 2.{minor}, this beckon package needs ABI 2.3" in message


@needs_cc
def test_a_newer_minor_abi_version_is_accepted(tmp_path: Path) -> None:
    newer = (2 << 16) | 4
    stub = compile_stub(tmp_path, abi=newer)
    result = run_python(_LOAD, BECKON_LIBRARY=str(stub))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"loaded {newer}"]


@needs_cc
def test_a_newer_minor_library_missing_a_function_is_refused_for_that(tmp_path: Path) -> None:
    stub = compile_stub(tmp_path, abi=(2 << 16) | 4, skip="beckon_query_invitations")
    result = run_python(_LOAD, BECKON_LIBRARY=str(stub))
    assert result.returncode != 0
    assert "AbiVersionError" not in result.stderr
    assert "LibraryLoadError" in result.stderr
    assert "does not export beckon_query_invitations" in result.stderr


@needs_cc
def test_a_library_missing_a_function_is_refused(tmp_path: Path) -> None:
    stub = compile_stub(tmp_path, abi=_native.ABI_VERSION, skip="beckon_token_create")
    result = run_python("import beckon; beckon.version()", BECKON_LIBRARY=str(stub))
    assert result.returncode != 0
    assert "does not export beckon_token_create" in result.stderr


@needs_cc
def test_ctypes_structs_match_the_header(tmp_path: Path) -> None:
    """Sizes and field offsets of every struct, as the C compiler sees include/beckon.h."""
    structs = {
        "beckon_client_config": _native.ClientConfig,
        "beckon_invitee": _native.InviteeState,
        "beckon_notification_config": _native.NotificationConfig,
        "beckon_event_notification": _native.EventNotification,
        "beckon_event": _native.Event,
        "beckon_result": _native.Result,
        "beckon_hub_config": _native.HubConfig,
        "beckon_invitation_config": _native.InvitationConfig,
        "beckon_send_result": _native.SendResult,
        "beckon_cancel_result": _native.CancelResult,
        "beckon_client_info": _native.ClientInfo,
        "beckon_answer_config": _native.AnswerConfig,
        "beckon_cancel_config": _native.CancelConfig,
        "beckon_log_config": _native.LogConfig,
        "beckon_push_target": _native.PushTarget,
        "beckon_invitation_query": _native.InvitationQuery,
        "beckon_invitation_summary": _native.InvitationSummary,
        "beckon_invitation_page_result": _native.InvitationPageResult,
    }
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "beckon.h"', "int main(void) {"]
    lines.append('  printf("{");')
    for c_name, struct in structs.items():
        lines.append(f'  printf("\\"{c_name}\\": [%zu", sizeof({c_name}));')
        for field, *_ in struct._fields_:
            lines.append(f'  printf(", %zu", offsetof({c_name}, {field}));')
        lines.append('  printf("],");')
    lines.append(
        '  printf("\\"BECKON_ABI_VERSION\\": [%d, %d, %d, %d, %d]}", BECKON_ABI_VERSION,'
        " BECKON_ABI_VERSION_MAJOR, BECKON_ABI_VERSION_MINOR, BECKON_TOKEN_MAX_LEN,"
        " BECKON_ID_CAPACITY);"
    )
    lines.append("  return 0;\n}")
    source = tmp_path / "layout.c"
    source.write_text("\n".join(lines) + "\n")
    program = tmp_path / "layout"
    subprocess.run(
        [CC, "-std=c11", f"-I{HEADER_DIR}", "-o", str(program), str(source)],
        check=True,
        timeout=60,
    )
    from_c = json.loads(
        subprocess.run(
            [str(program)], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    )
    assert from_c.pop("BECKON_ABI_VERSION") == [
        _native.ABI_VERSION,
        _native.ABI_VERSION_MAJOR,
        _native.ABI_VERSION_MINOR,
        _native.TOKEN_MAX_LEN,
        _native.ID_CAPACITY,
    ]
    for c_name, struct in structs.items():
        from_ctypes = [ctypes.sizeof(struct)] + [
            getattr(struct, field).offset for field, *_ in struct._fields_
        ]
        assert from_c[c_name] == from_ctypes, c_name


def test_header_constants_match_the_enumerations() -> None:
    text = (HEADER_DIR / "beckon.h").read_text()
    defines = dict(
        (parts[1], parts[2])
        for line in text.splitlines()
        if line.startswith("#define BECKON_") and len(parts := line.split()) == 3
    )

    def value(name: str) -> int:
        return int(defines[name])

    assert value("BECKON_ABI_VERSION_MAJOR") == beckon.ABI_VERSION_MAJOR
    assert value("BECKON_ABI_VERSION_MINOR") == beckon.ABI_VERSION_MINOR
    assert value("BECKON_ID_CAPACITY") == _native.ID_CAPACITY
    for code in beckon.ErrorCode:
        name = "BECKON_OK" if code == 0 else f"BECKON_ERROR_{code.name}"
        assert value(name) == code
    for state in beckon.InviteeState:
        assert value(f"BECKON_INVITEE_{state.name}") == state
    for kind in beckon.EventKind:
        assert value(f"BECKON_EVENT_{kind.name}") == kind
    for connection in beckon.ConnectionState:
        assert value(f"BECKON_CONNECTION_{connection.name}") == connection
    for reason in beckon.ConnectionReason:
        assert value(f"BECKON_REASON_{reason.name}") == reason
    for provider in beckon.PushProvider:
        assert value(f"BECKON_PUSH_PROVIDER_{provider.name}") == provider
    for environment in beckon.ApnsEnvironment:
        assert value(f"BECKON_APNS_{environment.name}") == environment
    for outcome in beckon.PushOutcome:
        assert value(f"BECKON_PUSH_{outcome.name}") == outcome
    for role in beckon.HistoryRole:
        assert value(f"BECKON_HISTORY_{role.name}") == role
    assert {n for n in defines if n.startswith("BECKON_HISTORY_")} == {
        f"BECKON_HISTORY_{role.name}" for role in beckon.HistoryRole
    }
    for mode in beckon.DispatchMode:
        assert value(f"BECKON_DISPATCH_{mode.name}") == mode
    for level in beckon.LogLevel:
        assert value(f"BECKON_LOG_{level.name}") == level
    for delivery in beckon.LogDelivery:
        assert value(f"BECKON_LOG_{delivery.name}") == delivery
    assert (_native.LOG_DIRECT, _native.LOG_QUEUED) == tuple(beckon.LogDelivery)
    assert value("BECKON_INVITATION_ONLINE_ONLY") == _native.INVITATION_ONLINE_ONLY
    # Every exported function the header declares is declared for ctypes too
    # (test hooks excepted: release libraries do not have them).
    declared = {
        match
        for line in text.splitlines()
        if not line.lstrip().startswith(("//", "*", "/*"))
        for match in re.findall(r"\b(beckon_[a-z_]+)\(", line)
    }
    declared = {name for name in declared if not name.startswith("beckon_test_")}
    assert declared == set(_native._SIGNATURES)
