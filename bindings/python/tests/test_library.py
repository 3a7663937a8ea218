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


def compile_stub(tmp_path: Path, abi: int, skip: str = "") -> Path:
    """A shared library exporting every beckon_* name of the binding, with the given ABI."""
    lines = ["#include <stdint.h>"]
    for name in _native._SIGNATURES:
        if name == skip:
            continue
        if name == "beckon_abi_version":
            lines.append(f"uint32_t beckon_abi_version(void) {{ return {abi}; }}")
        else:
            lines.append(f"int {name}(void) {{ return 0; }}")
    source = tmp_path / "stub.c"
    source.write_text("\n".join(lines) + "\n")
    library = tmp_path / f"libstub{abi}{skip}.so"
    subprocess.run(
        [CC, "-shared", "-fPIC", "-o", str(library), str(source)],
        check=True,
        timeout=60,
    )
    return library


def test_versions() -> None:
    assert beckon.abi_version() == beckon.ABI_VERSION == 1
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


@needs_cc
def test_wrong_abi_version_is_refused(tmp_path: Path) -> None:
    stub = compile_stub(tmp_path, abi=99)
    result = run_python(
        "import beckon\n"
        "try:\n"
        "    beckon.load_library()\n"
        "except beckon.AbiVersionError as e:\n"
        "    print(e.found, e.expected, isinstance(e, ImportError)); print(e)\n",
        BECKON_LIBRARY=str(stub),
    )
    assert result.returncode == 0, result.stderr
    first, message = result.stdout.splitlines()[:2]
    assert first == "99 1 True"
    assert "ABI version 99" in message and str(stub) in message


@needs_cc
def test_a_library_missing_a_function_is_refused(tmp_path: Path) -> None:
    stub = compile_stub(tmp_path, abi=1, skip="beckon_token_create")
    result = run_python("import beckon; beckon.version()", BECKON_LIBRARY=str(stub))
    assert result.returncode != 0
    assert "does not export beckon_token_create" in result.stderr


@needs_cc
def test_ctypes_structs_match_the_header(tmp_path: Path) -> None:
    """Sizes and field offsets of every struct, as the C compiler sees include/beckon.h."""
    structs = {
        "beckon_client_config": _native.ClientConfig,
        "beckon_invitee_state": _native.InviteeState,
        "beckon_notification_config": _native.NotificationConfig,
        "beckon_event": _native.Event,
        "beckon_result": _native.Result,
        "beckon_hub_config": _native.HubConfig,
        "beckon_invitation_config": _native.InvitationConfig,
        "beckon_send_result": _native.SendResult,
        "beckon_cancel_result": _native.CancelResult,
    }
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "beckon.h"', "int main(void) {"]
    lines.append('  printf("{");')
    for c_name, struct in structs.items():
        lines.append(f'  printf("\\"{c_name}\\": [%zu", sizeof({c_name}));')
        for field, *_ in struct._fields_:
            lines.append(f'  printf(", %zu", offsetof({c_name}, {field}));')
        lines.append('  printf("],");')
    lines.append(
        '  printf("\\"BECKON_ABI_VERSION\\": [%d, %d]}", BECKON_ABI_VERSION, BECKON_TOKEN_MAX_LEN);'
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
    assert from_c.pop("BECKON_ABI_VERSION") == [_native.ABI_VERSION, _native.TOKEN_MAX_LEN]
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

    assert value("BECKON_ABI_VERSION") == beckon.ABI_VERSION
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
    for mode in beckon.DispatchMode:
        assert value(f"BECKON_DISPATCH_{mode.name}") == mode
    for level in beckon.LogLevel:
        assert value(f"BECKON_LOG_{level.name}") == level
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
