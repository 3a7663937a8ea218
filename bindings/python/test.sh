#!/usr/bin/env bash
# Runs every test of the Python binding against an already-built libbeckon from
# ${BECKON_LIB_DIR:-<repo>/target/debug} (run ci-install.sh first):
#   1. mypy --strict over the package, the tests and the example;
#   2. the pytest suite (against the library via BECKON_LIBRARY);
#   3. the example, examples/demo.py;
#   4. a wheel built with the library bundled, installed into a fresh venv and
#      used from there without BECKON_LIBRARY (tests/check_wheel.py, then the
#      example again).
# The last line is "python: N passed, M failed" (N counts each pytest test and
# each other step); the exit status is non-zero if anything failed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
lib_dir="$(cd "${BECKON_LIB_DIR:-$root/target/debug}" 2>/dev/null && pwd)" || lib_dir="${BECKON_LIB_DIR:-$root/target/debug}"
library="$lib_dir/libbeckon.so"
py="$here/.venv/bin/python"

if [ ! -f "$library" ]; then
  echo "no $library: build it first (cargo build --lib), or set BECKON_LIB_DIR" >&2
  echo "python: 0 passed, 1 failed"
  exit 1
fi
if [ ! -x "$py" ]; then
  echo "no $py: run bindings/python/ci-install.sh first" >&2
  echo "python: 0 passed, 1 failed"
  exit 1
fi

export BECKON_LIBRARY="$library"
export PYTHONDONTWRITEBYTECODE=1
work="$(mktemp -d)"
trap 'rm -rf "$work" "$here/build" "$here/src/beckon.egg-info"' EXIT

passed=0
failed=0
failures=()
step() {
  local name=$1
  shift
  echo
  echo "== $name"
  local start=$SECONDS
  if "$@"; then
    echo "PASS $name ($((SECONDS - start))s)"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

cd "$here"
echo "== libbeckon: $library"

step "mypy --strict" timeout 300 "$py" -m mypy src/beckon tests examples

echo
echo "== pytest"
start=$SECONDS
timeout --kill-after=10 150 "$py" -m pytest -q -p no:cacheprovider --junitxml="$work/junit.xml"
pytest_status=$?
read -r tests_passed tests_failed < <("$py" - "$work/junit.xml" <<'PY' 2>/dev/null || echo "0 1"
import sys
import xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print(0, 1)
    raise SystemExit
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
total = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(total - bad - skipped, bad)
PY
)
if [ "$pytest_status" -ne 0 ] && [ "$tests_failed" -eq 0 ]; then
  tests_failed=1 # it failed outside any test (collection, timeout, crash)
fi
passed=$((passed + tests_passed))
failed=$((failed + tests_failed))
if [ "$tests_failed" -gt 0 ]; then failures+=("pytest (status $pytest_status)"); fi
echo "pytest: $tests_passed passed, $tests_failed failed ($((SECONDS - start))s)"

step "example demo.py" env PYTHONPATH="$here/src" timeout 60 "$py" examples/demo.py

build_wheel() {
  env BECKON_LIB_DIR="$lib_dir" timeout 120 "$py" -m pip wheel --disable-pip-version-check \
    --no-deps --no-build-isolation --no-index -q -w "$work/dist" "$here" || return 1
  ls "$work"/dist/beckon-*.whl >/dev/null
}
install_wheel() {
  "$py" -m venv --without-pip "$work/venv" &&
    "$py" -m pip --python "$work/venv/bin/python" install --disable-pip-version-check \
      --no-deps --no-index -q "$work"/dist/beckon-*.whl
}
# From a neutral directory, without BECKON_LIBRARY or the sources on the path.
from_wheel() {
  (cd "$work" && env -u BECKON_LIBRARY -u PYTHONPATH timeout 60 "$work/venv/bin/python" "$@")
}
step "wheel build (library bundled)" build_wheel
step "wheel install into a fresh venv" install_wheel
step "wheel import and round trip" from_wheel "$here/tests/check_wheel.py" "$work"/dist/beckon-*.whl
step "example demo.py from the wheel" from_wheel "$here/examples/demo.py"

echo
if [ "$failed" -gt 0 ]; then
  echo "failed:"
  for f in "${failures[@]}"; do echo "  $f"; done
fi
echo "python: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
