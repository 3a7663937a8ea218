#!/usr/bin/env bash
# Fuzzes beckon-server's frame decoding and handling (fuzz/README.md):
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# runs each target (default: frame and session) for SECONDS (default 600),
# growing fuzz/corpus/TARGET from the seeds in fuzz/seeds/TARGET. A crash
# leaves its input in fuzz/artifacts/TARGET/ and makes the script fail.
#
# Stable Rust is enough: with `--sanitizer none` (AddressSanitizer needs
# nightly; the code under test is safe Rust) cargo-fuzz 0.13.2 passes rustc
# only stable flags (the coverage instrumentation, -Cpasses=sancov-module).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds=${1:-600}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame session)
case $seconds in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  start=$SECONDS
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
  echo "fuzz: cargo-fuzz installed in $((SECONDS - start)) s"
fi

# Release code with debug assertions (overflow checks): what is fuzzed is what
# ships, plus the checks that turn silent wrap-arounds into crashes.
flags=(--sanitizer none --release --debug-assertions)

start=$SECONDS
# `cargo fuzz build` takes one target, or builds them all.
if [ ${#targets[@]} -eq 1 ]; then
  cargo fuzz build "${flags[@]}" "${targets[0]}"
else
  cargo fuzz build "${flags[@]}"
fi
echo "fuzz: built in $((SECONDS - start)) s"

passed=0
failed=0
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  echo "fuzz: $target for $seconds s"
  if cargo fuzz run "${flags[@]}" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -dict=fuzz/frames.dict -max_len=8192 \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>"fuzz/$target.log"; then
    passed=$((passed + 1))
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "fuzz/$target.log" || true
    grep -E '^#[0-9]+[[:space:]]+DONE' "fuzz/$target.log" | tail -n 1 || true
  else
    failed=$((failed + 1))
    tail -n 40 "fuzz/$target.log"
    echo "fuzz: $target CRASHED; inputs in fuzz/artifacts/$target/:"
    ls -1 "fuzz/artifacts/$target/" 2>/dev/null || true
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
