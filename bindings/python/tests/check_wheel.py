"""Checks an installed beckon wheel: run by test.sh with the wheel's own venv.

Usage: python check_wheel.py WHEEL_FILE. Runs without BECKON_LIBRARY and
without the source tree on sys.path, so everything comes from the wheel.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import zipfile
from pathlib import Path


def main() -> None:
    wheel = Path(sys.argv[1])
    assert "BECKON_LIBRARY" not in os.environ, "must run without BECKON_LIBRARY"
    # A platform wheel for any Python 3 (ctypes: no compiled Python code).
    assert wheel.name.startswith("beckon-0.1.0-py3-none-"), wheel.name
    assert not wheel.name.endswith("-any.whl"), wheel.name
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("beckon/__init__.py", "beckon/py.typed", "beckon/_lib/libbeckon.so"):
        assert needed in names, f"{needed} is missing from {wheel.name}"

    import beckon

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    package = Path(beckon.__file__).resolve().parent
    assert package == site / "beckon", f"beckon was imported from {package}, not {site}"
    library = Path(beckon.library_path()).resolve()
    assert library == package / "_lib" / "libbeckon.so", library
    assert beckon.abi_version() == beckon.ABI_VERSION
    assert beckon.version() == beckon.__version__

    # A real round trip through the bundled library.
    hub = f"memory://wheel-check-{os.getpid()}"
    with beckon.Client(hub) as alice, beckon.Client(hub) as bob:
        rings: list[beckon.InvitationReceived] = []
        bob.add_event_handler(
            lambda e: rings.append(e) if isinstance(e, beckon.InvitationReceived) else None
        )
        alice.login("alice").result(10)
        bob.login("bob").result(10)
        sent = alice.send_invitation(["bob"], timeout=30).result(10)
        assert len(sent.invitation_id) == 32
        bob.accept_invitation(sent.invitation_id).result(10)  # the ring came first
        assert [r.invitation_id for r in rings] == [sent.invitation_id]
        # ABI 2.3: the ended invitation is in the history.
        page = alice.query_invitations(role=beckon.HistoryRole.SENT).result(10)
        assert [s.invitation_id for s in page.invitations] == [sent.invitation_id]
        assert page.invitations[0].invitees == (
            beckon.InviteeStatus("bob", beckon.InviteeState.ACCEPTED),
        )
    print(f"wheel ok: {wheel.name}, library {library}")


if __name__ == "__main__":
    main()
