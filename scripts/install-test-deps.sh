#!/usr/bin/env bash
# Installs what scripts/test.sh needs on a fresh Debian 12 machine that has Rust,
# gcc, Python 3.11, Java 17 and Node 20: Debian packages (valgrind, binutils,
# cmake, Kotlin/JNA/JUnit, Redis, Chromium), cargo-c, the Python test venv and the Node
# modules (the Node binding's, and the web client's with playwright-core),
# each pinned by its own script. Idempotent: with everything present it takes a
# few seconds. The first run builds cargo-c (about 15 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v cc >/dev/null || missing+=(gcc)
command -v c++ >/dev/null || missing+=(g++)
command -v nm >/dev/null || missing+=(binutils)
command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

# cargo-fuzz for scripts/fuzz-ci.sh (it runs on stable Rust; see fuzz/README.md).
CARGO_FUZZ_VERSION=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

bash scripts/install-redis.sh
bash packaging/ci-install.sh
bash bindings/python/ci-install.sh
bash bindings/kotlin/ci-install.sh
bash bindings/node/ci-install.sh
bash bindings/web/ci-install.sh
