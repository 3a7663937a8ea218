#!/usr/bin/env bash
# Every test of the project: formatting, lints, the header's freshness, Rust
# unit and integration tests (library and beckon-server: the scenario suite on
# both transports, faults, raw-protocol security), the C/C++ ABI tests (plain,
# ASan, valgrind) on memory:// and against a server, the exported-symbol check
# and the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

echo "== dependencies (scripts/install-test-deps.sh; quick when present)"
bash scripts/install-test-deps.sh

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy (all targets, -D warnings)"
cargo clippy --locked --workspace --all-targets --features beckon/test-hooks -- -D warnings

echo "== cargo test: library, server, scenario suite on memory:// and beckon-server, faults"
echo "   (includes the header freshness check)"
cargo test --locked --workspace --features beckon/test-hooks

echo "== the fuzz targets' seeds, through the real connection code (feature fuzzing)"
# (clippy also sees the `experiments` knobs, which only bench/store-floor.sh builds)
cargo clippy --locked -p beckon-server --lib --features fuzzing,experiments -- -D warnings
cargo test --locked -p beckon-server --lib --features fuzzing fuzzing

echo "== exported symbols: only beckon_*"
cargo build --locked --release --quiet
stray=$(nm -D --defined-only target/release/libbeckon.so | awk '{print $3}' | grep -v '^beckon_' || true)
if [ -n "$stray" ]; then
  echo "libbeckon.so exports symbols outside the beckon_ prefix:"
  echo "$stray"
  exit 1
fi

echo "== demo"
mkdir -p build
bash scripts/demo.sh > build/demo.out
grep -q -- "--- done ---" build/demo.out

echo "== C and C++ tests (plain, AddressSanitizer, valgrind)"
bash scripts/c-tests.sh

echo "== C tests against a beckon-server process (plain, AddressSanitizer, valgrind)"
bash scripts/c-tests-server.sh

echo "== load tool smoke run (memory:// and a spawned server; figures: bench/measure.sh)"
bash bench/smoke.sh

echo "== fuzzing: a short run of both targets (long runs: scripts/fuzz.sh)"
bash scripts/fuzz-ci.sh

echo "== packaging: beckon.hpp, cargo cinstall into a temporary prefix, pkg-config and CMake consumers"
cargo build --locked --lib --quiet # target/debug/libbeckon.so, used from here on
bash packaging/test.sh

echo "== bindings (against target/debug/libbeckon.so, built with the test hooks)"
# The hooks' tests (a memory hub with a scripted push outlet) skip when the
# library lacks them; here they must run, so BECKON_EXPECT_TEST_HOOKS turns a
# skip into a failure.
cargo build --locked --lib --features test-hooks --quiet
export BECKON_EXPECT_TEST_HOOKS=1
bash bindings/python/test.sh
bash bindings/kotlin/test.sh
bash bindings/node/test.sh

echo "== the web client (Node and headless Chromium, against beckon-server) and the web phone page"
# target/debug/beckon-server is the one cargo test built above.
bash bindings/web/test.sh
BECKON_SERVER=target/debug/beckon-server bash examples/web/test.sh

echo "== all tests passed in $((SECONDS - started)) s"
