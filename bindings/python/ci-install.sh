#!/usr/bin/env bash
# Installs what bindings/python/test.sh needs, on Debian 12 with Python 3.10+:
# - python3-venv (apt) if `python3 -m venv` cannot make an environment;
# - gcc and libc6-dev (apt) if missing: two tests compile C (a stub library for
#   the ABI check, and a program printing the header's struct layout);
# - a virtual environment in bindings/python/.venv with the pinned packages of
#   requirements-test.txt (pytest, pytest-timeout, mypy, setuptools).
# Idempotent: when the environment already matches requirements-test.txt it
# does nothing but check. PYTHON overrides the interpreter (default python3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
requirements="$here/requirements-test.txt"
python="${PYTHON:-python3}"

apt_updated=0
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" -eq 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  apt-get install -y -qq --no-install-recommends "$@"
}

if ! command -v "$python" >/dev/null; then
  apt_install python3
  python=python3
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "bindings/python needs Python 3.10 or newer; $python is $("$python" --version 2>&1)" >&2
  exit 1
fi

missing=()
command -v cc >/dev/null || missing+=(gcc)
if ! printf '#include <stdint.h>\n#include <stdio.h>\n' | cc -E -x c - >/dev/null 2>&1; then
  missing+=(libc6-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

if [ ! -x "$venv/bin/python" ]; then
  if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
    # Debian splits venv and ensurepip out of python3 into python3-venv.
    rm -rf "$venv"
    apt_install python3-venv
    "$python" -m venv "$venv"
  fi
fi

stamp="$venv/.beckon-requirements"
want="$("$venv/bin/python" --version 2>&1) $(sha256sum "$requirements" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$requirements"
  printf '%s\n' "$want" >"$stamp"
fi
echo "bindings/python: $("$venv/bin/python" --version 2>&1) in $venv, $("$venv/bin/python" -m pytest --version 2>&1)"
