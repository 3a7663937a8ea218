#!/usr/bin/env bash
# The short fuzzing run for CI: both targets, 25 s each (50 s of fuzzing, plus
# installing cargo-fuzz when missing and the build). Fails on any crash; the
# crashing input is left in fuzz/artifacts/TARGET/. Long runs: scripts/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/fuzz.sh "${FUZZ_CI_SECONDS:-25}" frame session
