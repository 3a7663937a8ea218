"""Wheel build of the beckon package, with libbeckon bundled inside it.

`pyproject.toml` holds the metadata; this file only adds two commands:

- `build_py` also copies the shared library into `beckon/_lib/`, from
  `$BECKON_LIBRARY` (a file), else `$BECKON_LIB_DIR` (a folder), else the
  repository's `target/release`, then `target/debug`.
- `bdist_wheel` tags the wheel `py3-none-<platform>`: pure Python (ctypes, so
  any CPython 3.10+), but tied to the platform of the bundled library.

Build with `pip wheel --no-deps -w dist bindings/python` (add
`--no-build-isolation` to use the setuptools already installed).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def library_file_name() -> str:
    if sys.platform == "darwin":
        return "libbeckon.dylib"
    if sys.platform == "win32":
        return "beckon.dll"
    return "libbeckon.so"


def find_library() -> Path:
    explicit = os.environ.get("BECKON_LIBRARY")
    if explicit:
        candidates = [Path(explicit)]
    elif os.environ.get("BECKON_LIB_DIR"):
        candidates = [Path(os.environ["BECKON_LIB_DIR"]) / library_file_name()]
    else:
        candidates = [
            REPO / "target" / profile / library_file_name() for profile in ("release", "debug")
        ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise SystemExit(
        "beckon: no libbeckon to bundle; looked at "
        + ", ".join(str(c) for c in candidates)
        + ". Build it (cargo build --release) or set BECKON_LIB_DIR / BECKON_LIBRARY."
    )


class BuildPyWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        library = find_library()
        target = Path(self.build_lib) / "beckon" / "_lib"
        target.mkdir(parents=True, exist_ok=True)
        destination = target / library_file_name()
        self.announce(f"bundling {library} as {destination}", level=2)
        shutil.copyfile(library, destination)
        os.chmod(destination, 0o755)


class NativeDistribution(Distribution):
    """A distribution that carries a native library (so files go to platlib)."""

    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):
    def get_tag(self) -> tuple[str, str, str]:
        # Not tied to one CPython ABI (ctypes only), but to the library's platform.
        _python, _abi, platform = super().get_tag()
        return "py3", "none", platform


setup(
    distclass=NativeDistribution,
    cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel},
)
