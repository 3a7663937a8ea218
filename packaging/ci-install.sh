#!/usr/bin/env bash
# Installs what packaging/test.sh needs on Debian 12 (Rust, gcc, Python, Java
# and Node already there), and nothing else. Idempotent: each item is checked
# first, so a second run installs nothing and takes about a second.
#
#   Debian 12 packages, from the distribution's own stable versions:
#     cmake (3.25), pkg-config, g++, binutils (readelf, nm)
#   crates.io, pinned and --locked:
#     cargo-c 0.10.24+cargo-0.98.0 (cargo cinstall); building it needs
#     libssl-dev and pkg-config, and takes about 15 minutes on 2 cores.
#
# Debian packages are not pinned to exact revisions: bookworm's point releases
# replace them (security fixes), and an old revision then no longer installs.
# The script checks the versions the tests rely on instead (cmake >= 3.16).
set -euo pipefail

CARGO_C_VERSION=0.10.24
CARGO_C_BUILD=0.10.24+cargo-0.98.0
CMAKE_MIN=3.16

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v c++ >/dev/null || need+=(g++)
{ command -v readelf && command -v nm; } >/dev/null || need+=(binutils)

cargo_c_ok=false
if [ "$(cargo cinstall --version 2>/dev/null | head -n 1)" = "cargo-c $CARGO_C_BUILD" ]; then
  cargo_c_ok=true
else
  # to build cargo-c (openssl-sys finds OpenSSL through pkg-config)
  installed libssl-dev || need+=(libssl-dev)
  command -v pkg-config >/dev/null || need+=(pkg-config)
fi

if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "packaging/ci-install.sh: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cmake_version=$(cmake --version | sed -n 's/^cmake version \([0-9.]*\).*/\1/p')
if [ "$(printf '%s\n%s\n' "$CMAKE_MIN" "$cmake_version" | sort -V | head -n 1)" != "$CMAKE_MIN" ]; then
  echo "packaging/ci-install.sh: cmake $cmake_version is older than $CMAKE_MIN" >&2
  exit 1
fi

if ! $cargo_c_ok; then
  echo "packaging/ci-install.sh: cargo install cargo-c $CARGO_C_BUILD (about 15 minutes on 2 cores)"
  start=$SECONDS
  cargo install cargo-c --locked --version "=$CARGO_C_VERSION"
  echo "packaging/ci-install.sh: cargo-c built in $((SECONDS - start)) s"
fi
cargo cinstall --version | head -n 1
